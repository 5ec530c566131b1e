"""The three record shapes of our earlier system, and their conversion to the canonical job.

Each old processing engine wrote its own shape:

* ``v0-sync`` (sync engine): ``{jobId, state, url, output, errorMessage, created}``,
  ``state`` in ``queued|running|done|error``, ``created`` in epoch milliseconds;
* ``v0-ai`` (AI processor): ``{id, status, prompt, urls, result_json, usage, createdAt}``,
  ``status`` in ``PENDING|IN_PROGRESS|SUCCEEDED|FAILED``, ``result_json`` a JSON string,
  ``usage`` ``{prompt_tokens, completion_tokens, model}``, ``createdAt`` ISO 8601;
* ``v0-navigation`` (navigation engine): ``{job_id, job_status, start_url, max_pages,
  pages: [{url, data}], timestamps: {created, finished}, err}``, ``job_status`` in
  ``new|crawling|finished|crashed``.

Conversion is pure and deterministic: the same record always gives the same job. Every
field that could not be carried over is reported in :attr:`Conversion.unmapped`, with why;
a record that cannot become a valid job raises :class:`LegacyConversionError` with every
reason found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from atlas_codex.extraction.request import CrawlOptions, JobRequest
from atlas_codex.ground import limits
from atlas_codex.jobs.record import (
    Attempt,
    Job,
    JobError,
    JobResult,
    LegacyFormat,
    MigratedFrom,
    PageOutcome,
    StatusChange,
)
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES, JobId, JobStatus, JobType

_JOB_ID: Final = TypeAdapter(JobId)

LEGACY_OWNER: Final = "legacy"
"""Owner given to converted records: the old engines kept no owner."""

SYNC_STATES: Final[Mapping[str, JobStatus]] = {
    "queued": "pending",
    "running": "processing",
    "done": "completed",
    "error": "failed",
}
AI_STATES: Final[Mapping[str, JobStatus]] = {
    "PENDING": "pending",
    "IN_PROGRESS": "processing",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
}
NAVIGATION_STATES: Final[Mapping[str, JobStatus]] = {
    "new": "pending",
    "crawling": "processing",
    "finished": "completed",
    "crashed": "failed",
}

# Keys that tell the formats apart; each set is what only that engine wrote.
_SIGNATURES: Final[Mapping[LegacyFormat, frozenset[str]]] = {
    "v0-sync": frozenset({"jobId", "state"}),
    "v0-ai": frozenset({"id", "status"}),
    "v0-navigation": frozenset({"job_id", "job_status"}),
}


class LegacyConversionError(ValueError):
    """The record cannot become a canonical job; ``reasons`` lists every problem found."""

    def __init__(self, fmt: str | None, reasons: list[str]) -> None:
        self.format = fmt
        self.reasons = reasons
        super().__init__(f"cannot convert {fmt or 'unknown'} record: " + "; ".join(reasons))


class UnmappedField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    value: JsonValue
    reason: str


class Conversion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: LegacyFormat
    job: Job
    unmapped: list[UnmappedField] = Field(default_factory=list)


def detect_format(record: Mapping[str, Any]) -> LegacyFormat | None:
    """Which legacy shape ``record`` is, or ``None`` (canonical or unknown)."""
    if "schema_version" in record:
        return None
    found = [fmt for fmt, keys in _SIGNATURES.items() if keys <= record.keys()]
    return found[0] if len(found) == 1 else None


def is_canonical(record: Mapping[str, Any]) -> bool:
    return "schema_version" in record


def convert(record: Mapping[str, Any]) -> Conversion:
    """Convert any legacy record, detecting its format."""
    fmt = detect_format(record)
    if fmt is None:
        raise LegacyConversionError(
            None,
            [
                "the record matches no legacy format (expected the keys of exactly one of: "
                + ", ".join(f"{f} {sorted(k)}" for f, k in _SIGNATURES.items())
                + ")"
            ],
        )
    return CONVERTERS[fmt](record)


# --------------------------------------------------------------------------- helpers


class _Collector:
    """Gathers fatal problems and unmapped fields while one record is converted."""

    def __init__(self, fmt: LegacyFormat, record: Mapping[str, Any], known: set[str]) -> None:
        self.fmt = fmt
        self.record = record
        self.problems: list[str] = []
        self.unmapped: list[UnmappedField] = [
            UnmappedField(path=k, value=_jsonable(v), reason="not a field of this legacy format")
            for k, v in record.items()
            if k not in known
        ]

    def skip(self, path: str, value: Any, reason: str) -> None:
        self.unmapped.append(UnmappedField(path=path, value=_jsonable(value), reason=reason))

    def require(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.record or self.record[key] is None:
            self.problems.append(f"'{key}' is missing")
            return None
        value = self.record[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            self.problems.append(f"'{key}' must be {_kind_name(kind)}, got {type(value).__name__}")
            return None
        return value

    def optional(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.record.get(key)
        if value is None:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            self.skip(key, value, f"expected {_kind_name(kind)}, got {type(value).__name__}")
            return None
        return value

    def report(self, required: bool, key: str, value: Any, message: str) -> None:
        """A bad required value makes the record unconvertible; a bad optional one is skipped."""
        if required:
            self.problems.append(message)
        else:
            self.skip(key, value, message)

    def status(self, key: str, table: Mapping[str, JobStatus]) -> JobStatus | None:
        raw = self.require(key, str)
        if raw is None:
            return None
        if raw not in table:
            self.problems.append(f"'{key}' is {raw!r}; expected one of {', '.join(table)}")
            return None
        return table[raw]

    def finish(
        self,
        *,
        source_id: str | None,
        job_type: JobType,
        status: JobStatus | None,
        created: datetime | None,
        finished: datetime | None,
        request: dict[str, Any] | None,
        result: JobResult | None,
        result_field: str,
        error_message: str | None,
        error_field: str,
        attempts: list[Attempt] | None = None,
        model: str | None = None,
    ) -> Conversion:
        if (
            self.problems
            or source_id is None
            or status is None
            or created is None
            or request is None
        ):
            raise LegacyConversionError(self.fmt, self.problems or ["required fields are missing"])
        try:
            job_request = JobRequest.model_validate(request, strict=True)
        except ValidationError as exc:
            raise LegacyConversionError(self.fmt, _pydantic_reasons(exc, "request")) from exc

        if finished is not None and (status not in TERMINAL_STATUSES or finished < created):
            why = (
                "the job is not finished"
                if status not in TERMINAL_STATUSES
                else "it is before creation"
            )
            self.skip("timestamps.finished", finished.isoformat(), f"finish time ignored: {why}")
            finished = None
        updated = finished or created

        error: JobError | None = None
        if status == "failed":
            error = JobError(
                code="legacy_failure",
                message=(error_message or "the legacy engine recorded no reason")[
                    : limits.MAX_ERROR_MESSAGE_CHARS
                ],
            )
        elif error_message:
            self.skip(
                error_field, error_message, f"an error message on a {status} job has no place"
            )
        if result is not None and status != "completed":
            self.skip(
                result_field,
                result.model_dump(mode="json")["data"],
                f"a {status} job cannot keep a result",
            )
            result = None

        timeline = [StatusChange(status="pending", at=created, reason="migrated")]
        if status != "pending":
            timeline.append(StatusChange(status=status, at=updated, reason="migrated"))
        try:
            job = Job(
                job_id=source_id,
                type=job_type,
                status=status,
                owner_id=LEGACY_OWNER,
                correlation_id=_correlation_id(self.fmt, source_id),
                request=job_request,
                result=result,
                error=error,
                attempts=attempts or [],
                model=model,
                created_at=created,
                updated_at=updated,
                timeline=timeline,
                migrated_from=MigratedFrom(format=self.fmt, source_id=source_id),
            )
        except ValidationError as exc:
            raise LegacyConversionError(self.fmt, _pydantic_reasons(exc, "job")) from exc
        return Conversion(format=self.fmt, job=job, unmapped=self.unmapped)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _jsonable(value: Any) -> JsonValue:
    try:
        return json.loads(json.dumps(value, default=str))  # type: ignore[no-any-return]
    except (TypeError, ValueError):
        return repr(value)


def _pydantic_reasons(exc: ValidationError, root: str) -> list[str]:
    return [
        f"{root}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        if err["loc"]
        else f"{root}: {err['msg']}"
        for err in exc.errors()
    ]


def _correlation_id(fmt: str, source_id: str) -> str:
    digest = hashlib.sha256(f"{fmt}:{source_id}".encode()).hexdigest()[:24]
    return f"legacy-{digest}"


def _source_id(c: _Collector, key: str) -> str | None:
    value = c.require(key, (str, int))
    if value is None:
        return None
    text = str(value)
    try:
        return _JOB_ID.validate_python(text)
    except ValidationError as exc:
        c.problems.append(f"'{key}' {text!r} cannot be a job id: {exc.errors()[0]['msg']}")
        return None


def _epoch_ms(c: _Collector, key: str, value: Any, *, required: bool) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        c.report(required, key, value, f"'{key}' must be epoch milliseconds (a number)")
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        c.report(required, key, value, f"'{key}' {value!r} is not a representable time")
        return None


def _iso(c: _Collector, key: str, value: Any, *, required: bool) -> datetime | None:
    if not isinstance(value, str):
        c.report(required, key, value, f"'{key}' must be an ISO 8601 string")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        c.report(required, key, value, f"'{key}' {value!r} is not ISO 8601")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # the old engines wrote UTC without an offset
    return parsed.astimezone(UTC)


def _any_time(c: _Collector, key: str, value: Any, *, required: bool) -> datetime | None:
    """The navigation engine wrote epoch milliseconds, epoch seconds or ISO strings."""
    if isinstance(value, str):
        return _iso(c, key, value, required=required)
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e11:
        value = value * 1000  # epoch seconds
    return _epoch_ms(c, key, value, required=required)


# --------------------------------------------------------------------------- converters


def convert_sync(record: Mapping[str, Any]) -> Conversion:
    c = _Collector(
        "v0-sync", record, {"jobId", "state", "url", "output", "errorMessage", "created"}
    )
    source_id = _source_id(c, "jobId")
    status = c.status("state", SYNC_STATES)
    url = c.require("url", str)
    created = _epoch_ms(c, "created", record.get("created"), required=True)
    output = record.get("output")
    result = JobResult(data=_jsonable(output)) if output is not None else None
    if status == "completed" and result is None:
        result = JobResult(data=None)
    return c.finish(
        source_id=source_id,
        job_type="sync",
        status=status,
        created=created,
        finished=None,
        request={"urls": [url]} if url is not None else None,
        result=result,
        result_field="output",
        error_message=c.optional("errorMessage", str),
        error_field="errorMessage",
    )


def convert_ai(record: Mapping[str, Any]) -> Conversion:
    c = _Collector(
        "v0-ai", record, {"id", "status", "prompt", "urls", "result_json", "usage", "createdAt"}
    )
    source_id = _source_id(c, "id")
    status = c.status("status", AI_STATES)
    urls = c.require("urls", list)
    if urls is not None and not all(isinstance(u, str) for u in urls):
        c.problems.append("'urls' must be a list of strings")
        urls = None
    created = _iso(c, "createdAt", record.get("createdAt"), required=True)
    prompt = c.optional("prompt", str)
    request: dict[str, Any] | None = None
    if urls is not None:
        request = {"urls": urls}
        if prompt:
            request["instruction"] = prompt
        elif prompt == "":
            c.skip("prompt", prompt, "an empty prompt is no instruction")

    result: JobResult | None = None
    raw = c.optional("result_json", str)
    if raw is not None:
        try:
            result = JobResult(data=_jsonable(json.loads(raw)))
        except ValueError as exc:
            c.skip("result_json", raw, f"not valid JSON: {exc}")
    if status == "completed" and result is None:
        result = JobResult(data=None)

    attempts: list[Attempt] = []
    model: str | None = None
    usage = c.optional("usage", dict)
    if usage is not None and created is not None:
        tokens: dict[str, int] = {}
        for src, dst in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
            v = usage.get(src)
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                tokens[dst] = v
            elif v is not None:
                c.skip(f"usage.{src}", v, "expected a non-negative integer")
        m = usage.get("model")
        if isinstance(m, str) and m:
            model = m
        elif m is not None:
            c.skip("usage.model", m, "expected a model name")
        for extra in sorted(set(usage) - {"prompt_tokens", "completion_tokens", "model"}):
            c.skip(f"usage.{extra}", usage[extra], "not a field of the legacy usage record")
        attempts.append(
            Attempt(
                strategy="legacy-ai",
                model=model,
                started_at=created,
                input_tokens=tokens.get("input_tokens", 0),
                output_tokens=tokens.get("output_tokens", 0),
            )
        )
    return c.finish(
        source_id=source_id,
        job_type="ai-process",
        status=status,
        created=created,
        finished=None,
        request=request,
        result=result,
        result_field="result_json",
        error_message=None,
        error_field="",
        attempts=attempts,
        model=model,
    )


def convert_navigation(record: Mapping[str, Any]) -> Conversion:
    c = _Collector(
        "v0-navigation",
        record,
        {"job_id", "job_status", "start_url", "max_pages", "pages", "timestamps", "err"},
    )
    source_id = _source_id(c, "job_id")
    status = c.status("job_status", NAVIGATION_STATES)
    start_url = c.require("start_url", str)
    timestamps = c.require("timestamps", dict)
    created = finished = None
    if timestamps is not None:
        if "created" in timestamps and timestamps["created"] is not None:
            created = _any_time(c, "timestamps.created", timestamps["created"], required=True)
        else:
            c.problems.append("'timestamps.created' is missing")
        if timestamps.get("finished") is not None:
            finished = _any_time(c, "timestamps.finished", timestamps["finished"], required=False)
        for extra in sorted(set(timestamps) - {"created", "finished"}):
            c.skip(f"timestamps.{extra}", timestamps[extra], "not a field of the legacy timestamps")

    request: dict[str, Any] | None = None
    if start_url is not None:
        request = {"urls": [start_url]}
        max_pages = record.get("max_pages")
        if isinstance(max_pages, int) and not isinstance(max_pages, bool):
            try:
                request["crawl"] = CrawlOptions(max_pages=max_pages).model_dump()
            except ValidationError:
                c.skip("max_pages", max_pages, f"outside 1..{limits.MAX_CRAWL_PAGES}")
                request["crawl"] = CrawlOptions().model_dump()
        else:
            if max_pages is not None:
                c.skip("max_pages", max_pages, "expected an integer")
            request["crawl"] = CrawlOptions().model_dump()

    pages: list[PageOutcome] = []
    raw_pages = c.optional("pages", list) or []
    for i, page in enumerate(raw_pages):
        if not isinstance(page, dict) or not isinstance(page.get("url"), str):
            c.skip(f"pages[{i}]", page, "a page needs a 'url' string")
            continue
        for extra in sorted(set(page) - {"url", "data"}):
            c.skip(f"pages[{i}].{extra}", page[extra], "not a field of a legacy page")
        pages.append(PageOutcome(url=page["url"], status="ok", data=_jsonable(page.get("data"))))
    result: JobResult | None = None
    if pages or status == "completed":
        result = JobResult(data=[p.data for p in pages], pages=pages)

    err = record.get("err")
    error_message: str | None
    error_message = err if err is None or isinstance(err, str) else json.dumps(_jsonable(err))
    return c.finish(
        source_id=source_id,
        job_type="async",
        status=status,
        created=created,
        finished=finished,
        request=request,
        result=result,
        result_field="pages",
        error_message=error_message,
        error_field="err",
    )


CONVERTERS: Final[Mapping[LegacyFormat, Callable[[Mapping[str, Any]], Conversion]]] = {
    "v0-sync": convert_sync,
    "v0-ai": convert_ai,
    "v0-navigation": convert_navigation,
}

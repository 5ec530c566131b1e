"""The canonical job schema: the job record and the API's request bodies. The words they
are built from (types, statuses, the transition table, the ids) are
:mod:`atlas_codex.jobs.vocabulary`.

The request the engine executes (``JobRequest``) is the extraction contract's
(:mod:`atlas_codex.extraction.request`); the record keeps it whole. What the engine returns
becomes record fields in one place, :mod:`atlas_codex.jobs.recorded`, which cuts it to the
limits set here. Everything that reads or writes a job goes through these models. They are strict:
unknown fields are rejected (no phantom fields) and values are never coerced
(``"1"`` is not ``1``). The DynamoDB item form round-trips exactly
(:meth:`Job.to_item` / :meth:`Job.from_item`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, JsonValue, model_validator

from atlas_codex.extraction.request import (
    Instruction,
    JobRequest,
    JsonSchemaDoc,
    MaxCostUsd,
    SelectorSchema,
)
from atlas_codex.ground import limits
from atlas_codex.ground.policy import ModelTier
from atlas_codex.ground.values import (
    DYNAMODB_MAX_DIGITS,
    ErrorCode,
    FieldError,
    HttpUrlStr,
    NonNegativeUsd,
    StrictModel,
    Timestamp,
    TokenCount,
    significant,
    storable,
)
from atlas_codex.jobs.vocabulary import (
    TERMINAL_STATUSES,
    CorrelationId,
    IdempotencyKey,
    JobId,
    JobStatus,
    JobType,
    OwnerId,
)

SCHEMA_VERSION: Final = 1


class CreateJobRequest(JobRequest):
    """The body of ``POST /jobs`` and ``POST /extract``."""

    type: JobType = "async"

    @model_validator(mode="after")
    def _type_needs(self) -> Self:
        if self.type == "webhook" and self.webhook_url is None:
            raise FieldError("webhook_url", "a webhook job needs 'webhook_url'")
        if self.type == "ai-process" and self.instruction is None and self.json_schema is None:
            raise FieldError(
                "instruction", "an ai-process job needs 'instruction' or 'json_schema'"
            )
        if self.type == "batch" and self.crawl is not None:
            raise FieldError("crawl", "a batch job takes a list of URLs, not 'crawl' options")
        return self

    def job_request(self) -> JobRequest:
        return JobRequest.model_validate(self.model_dump(exclude={"type"}), strict=True)


class ReextractRequest(StrictModel):
    """The body of ``POST /jobs/{job_id}/reextract``: a new extraction over stored pages."""

    json_schema: JsonSchemaDoc | None = None
    selectors: SelectorSchema | None = None
    instruction: Instruction | None = None
    model_tier: ModelTier | None = None
    max_cost_usd: MaxCostUsd | None = None
    include_evidence: bool = False
    webhook_url: HttpUrlStr | None = None
    diff: bool = True
    """Compare the new result with the earlier one, field by field."""

    @model_validator(mode="after")
    def _asks_something(self) -> Self:
        if not self.changes_what and self.model_tier is None:
            raise FieldError(
                "json_schema",
                "give 'json_schema', 'selectors', 'instruction' or 'model_tier' to extract anew",
            )
        return self

    @property
    def changes_what(self) -> bool:
        return any(v is not None for v in (self.json_schema, self.selectors, self.instruction))

    def job_request(self, earlier: JobRequest) -> CreateJobRequest:
        """The new job: the earlier job's pages (URLs, crawl), this extraction. Given only a
        tier, the earlier schema, selectors and instruction run again on that tier."""
        what = ("json_schema", "selectors", "instruction")
        kept = {} if self.changes_what else earlier.model_dump(include=set(what))
        asked = self.model_dump(exclude={"diff"}, exclude_none=True)
        return CreateJobRequest.model_validate(
            {
                "urls": list(earlier.urls),
                "crawl": earlier.crawl.model_dump() if earlier.crawl else None,
                "respect_robots_txt": earlier.respect_robots_txt,
                **kept,
                **asked,
                "type": "webhook" if self.webhook_url is not None else "async",
            }
        )


# --------------------------------------------------------------------------- record parts


class JobError(StrictModel):
    code: ErrorCode
    message: Annotated[str, Field(min_length=1, max_length=limits.MAX_ERROR_MESSAGE_CHARS)]
    retryable: bool = False


class Attempt(StrictModel):
    """One try of one strategy (and model, where one was called)."""

    strategy: Annotated[str, Field(min_length=1, max_length=64)]
    model: str | None = None
    started_at: Timestamp
    ended_at: Timestamp | None = None
    input_tokens: TokenCount = 0
    cached_input_tokens: TokenCount = 0
    output_tokens: TokenCount = 0
    estimated_cost_usd: NonNegativeUsd | None = None
    cost_usd: NonNegativeUsd | None = None
    error: JobError | None = None


Note = Annotated[str, Field(min_length=1, max_length=limits.MAX_NOTE_CHARS)]
MAX_NOTES: Final = limits.MAX_NOTES


class JobCost(StrictModel):
    estimated_usd: NonNegativeUsd = 0.0
    actual_usd: NonNegativeUsd = 0.0
    """Model spend: estimated before the calls, billed after them."""
    aws_usd: NonNegativeUsd | None = None
    """What running the job cost in AWS, estimated from its function's measured run time and
    the measured use of the rest (``aws_cost``; docs/COST.md). None: not estimated (a job
    recorded before the estimate existed, or one that never ran)."""


class StatusChange(StrictModel):
    status: JobStatus
    at: Timestamp
    reason: Annotated[str, Field(max_length=limits.MAX_NOTE_CHARS)] | None = None


class ChildCounters(StrictModel):
    """Atomic counters of a batch parent; the child that makes ``done == total`` closes it."""

    total: Annotated[int, Field(ge=0)]
    completed: Annotated[int, Field(ge=0)] = 0
    failed: Annotated[int, Field(ge=0)] = 0
    cancelled: Annotated[int, Field(ge=0)] = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled

    @model_validator(mode="after")
    def _not_more_than_total(self) -> Self:
        if self.done > self.total:
            raise ValueError(f"{self.done} children finished but the batch has only {self.total}")
        return self


EvidenceKind = Literal["selector", "structured-data", "quote"]


class FieldEvidence(StrictModel):
    """Where one extracted value came from."""

    kind: EvidenceKind
    url: str | None = None
    """The page the value came from."""
    source: Annotated[str, Field(max_length=limits.MAX_EVIDENCE_QUOTE_CHARS)]
    """The CSS selector, the structured-data path, or the model's quoted span of the page."""
    verified: bool = True
    """For a quote: whether it occurs in the page's content (False: the value is flagged)."""


def _legacy_evidence(value: Any) -> Any:
    """Records written before evidence had a kind kept a bare selector or path."""
    if isinstance(value, dict) and isinstance(value.get("evidence"), dict):
        upgraded = {}
        for path, source in value["evidence"].items():
            if isinstance(source, str):
                kind = "structured-data" if source.startswith(STRUCTURED_SOURCES) else "selector"
                source = {"kind": kind, "source": source}
            upgraded[path] = source
        value = {**value, "evidence": upgraded}
    return value


STRUCTURED_SOURCES: Final = ("json-ld", "microdata", "opengraph", "meta.")


class PageView(StrictModel):
    """The text a model read of one page: which view and its tokens beside the whole page's
    (``atlas_codex.engine.reading.model_view``)."""

    name: Literal["main", "model", "full"]
    tokens: TokenCount
    full_page_tokens: TokenCount
    widened: bool = False
    """The quality gate read the page again through the full view (the first view missed a
    required field)."""


class PageRender(StrictModel):
    """How a page was rendered in the browser (``atlas_codex.render``)."""

    reason: Annotated[str, Field(max_length=limits.MAX_NOTE_CHARS)]
    ms: Annotated[int, Field(ge=0)]
    waited: Literal["selector", "network-idle", "time-limit"]
    """What ended the wait: the job's selector, an idle network, or the time limit."""
    truncated: bool = False
    """The rendered HTML was longer than the limit and was cut."""


class PageOutcome(StrictModel):
    url: str
    status: Literal["ok", "failed", "skipped"]
    http_status: Annotated[int, Field(ge=100, le=599)] | None = None
    error: JobError | None = None
    data: JsonValue = None
    strategy: str | None = None
    evidence: dict[str, FieldEvidence] = Field(default_factory=dict)
    """Field path -> the evidence for its value (always stored; in responses on request)."""
    missing: list[str] = Field(default_factory=list)
    """Field paths the page does not give ("not found"): distinct from a value found to be
    null."""
    unverified: list[str] = Field(default_factory=list)
    """Field paths whose quoted evidence does not occur in the page: flagged, not trusted."""
    quality_problems: list[str] = Field(default_factory=list)
    """Why this page's extraction is not a full success (empty, all-null, invalid, truncated)."""
    view: PageView | None = None
    """What a model read of the page (None: no model read it)."""
    rendered: PageRender | None = None
    """The page was rendered in a browser (None: its HTML is the server's)."""

    _upgrade = model_validator(mode="before")(_legacy_evidence)


class FieldChange(StrictModel):
    """One difference between a re-extraction and the result it re-extracted."""

    path: str
    change: Literal["added", "removed", "changed"]
    before: JsonValue = None
    after: JsonValue = None


class JobResult(StrictModel):
    data: JsonValue = None
    pages: list[PageOutcome] = Field(default_factory=list)
    expires_at: Timestamp | None = None
    """When the fetched pages this result was made from leave the bucket (no re-extraction
    after that)."""
    diff: list[FieldChange] | None = None
    """A re-extraction asked for a diff: field by field against the earlier result."""


WebhookDeliveryState = Literal["pending", "delivered", "dead"]


class WebhookAttempt(StrictModel):
    attempt: Annotated[int, Field(ge=1)]
    at: Timestamp
    status_code: Annotated[int, Field(ge=100, le=599)] | None = None
    error: Annotated[str, Field(max_length=limits.MAX_NOTE_CHARS)] | None = None


class WebhookState(StrictModel):
    """The job's webhook: one stable id for every retry, each attempt, and where it stands."""

    webhook_id: str
    url: HttpUrlStr
    state: WebhookDeliveryState = "pending"
    attempts: Annotated[list[WebhookAttempt], Field(max_length=limits.MAX_ATTEMPTS_RECORDED)] = (
        Field(default_factory=list)
    )


LegacyFormat = Literal["v0-sync", "v0-ai", "v0-navigation"]


Quality = Literal["complete", "partial"]
PARTIAL_RESULT_ERRORS: Final = frozenset({"cost_ceiling_reached", "empty_extraction"})
"""The failures that keep what was extracted before them (a partial result)."""


class ReextractionOf(StrictModel):
    """A job that re-runs the extraction over another job's stored pages."""

    job_id: JobId
    """The job re-extracted: the diff compares with its result."""
    diff: bool = True
    pages_of: JobId | None = None
    """The job that stored the pages, when not ``job_id`` itself (a re-extraction of a
    re-extraction reads the pages the first job fetched)."""

    @property
    def pages_job_id(self) -> str:
        return self.pages_of or self.job_id


class MigratedFrom(StrictModel):
    format: LegacyFormat
    source_id: str


# --------------------------------------------------------------------------- the record


class Job(StrictModel):
    """The canonical job record, exactly as stored (one DynamoDB item)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: JobId
    type: JobType
    status: JobStatus
    owner_id: OwnerId
    correlation_id: CorrelationId
    idempotency_key: IdempotencyKey | None = None
    request_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    request: JobRequest
    result: JobResult | None = None
    result_location: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    error: JobError | None = None
    attempts: Annotated[list[Attempt], Field(max_length=limits.MAX_ATTEMPTS_RECORDED)] = Field(
        default_factory=list
    )
    fallback_chain: list[str] = Field(default_factory=list)
    model: str | None = None
    cost: JobCost = Field(default_factory=JobCost)
    routing: Annotated[list[Note], Field(max_length=MAX_NOTES)] = Field(default_factory=list)
    """The model router's tier decision and its reasons (empty when no model was asked)."""
    warnings: Annotated[list[Note], Field(max_length=MAX_NOTES)] = Field(default_factory=list)
    """What the client should know about how the result was made (content truncated before a
    model call, with the token counts; a model replaced after its shutdown)."""
    created_at: Timestamp
    updated_at: Timestamp
    deadline_at: Timestamp | None = None
    timeline: Annotated[
        list[StatusChange], Field(min_length=1, max_length=limits.MAX_TIMELINE_ENTRIES)
    ]
    parent_id: JobId | None = None
    children: ChildCounters | None = None
    version: Annotated[int, Field(ge=1)] = 1
    ttl: Annotated[int, Field(ge=0)] | None = None
    migrated_from: MigratedFrom | None = None
    webhook: WebhookState | None = None
    quality: Quality | None = None
    """Set when the job completes: ``partial`` when the quality gate found problems (see
    ``quality_reasons``); a plain success is ``complete``."""
    quality_reasons: Annotated[list[Note], Field(max_length=MAX_NOTES)] = Field(
        default_factory=list
    )
    reextraction_of: ReextractionOf | None = None
    continued_in: JobId | None = None
    """A crawl whose time ran out: the batch job reading the pages it had still to read."""
    continues: JobId | None = None
    """That batch job: the crawl it continues."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.timeline[-1].status != self.status:
            raise ValueError(
                f"the timeline ends in {self.timeline[-1].status!r} but the status is {self.status!r}"
            )
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed job must carry an error")
        if self.result is not None and self.result_location is not None:
            raise ValueError("a job keeps its result inline or in the bucket, not both")
        if self.status not in TERMINAL_STATUSES and (self.result or self.result_location):
            raise ValueError(f"a {self.status} job cannot have a result yet")
        if self.children is not None and self.type != "batch":
            raise ValueError("only a batch job has child counters")
        if self.quality is not None and self.status != "completed":
            raise ValueError("only a completed job has a quality verdict")
        if self.status == "failed" and (self.result or self.result_location):
            assert self.error is not None
            if self.error.code not in PARTIAL_RESULT_ERRORS:
                raise ValueError(f"a job failed with {self.error.code} keeps no result")
        return self

    # ---- DynamoDB item form -------------------------------------------------------

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (boto3 resource form: numbers as ``Decimal``).

        Top-level ``None`` fields are left out, since index key attributes may not be NULL.
        """
        data = self.model_dump(mode="json")
        return {k: to_dynamo(v) for k, v in data.items() if v is not None}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        """Parse an item read from DynamoDB, strictly (a wrong type is an error)."""
        return cls.model_validate_json(json.dumps(_from_dynamo(dict(item))), strict=True)


def to_dynamo(value: Any) -> Any:
    """A JSON-shaped value in boto3's DynamoDB form (floats as Decimal), range-checked."""
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, int | float):
        storable(value)
        if isinstance(value, float):
            return Decimal(repr(value))
        # boto3 refuses an integer with more digits than 38, even trailing zeros: 1E+50 it takes
        return value if abs(value) < 10**DYNAMODB_MAX_DIGITS else significant(value)
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set | frozenset):
        raise ValueError("sets are not part of the job schema")
    return value

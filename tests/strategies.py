"""Hypothesis strategies: canonical jobs and valid records of the three legacy formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from atlas_codex.extraction.request import CrawlOptions, JobRequest, SelectorField, SelectorSchema
from atlas_codex.jobs.record import (
    Attempt,
    ChildCounters,
    Job,
    JobCost,
    JobError,
    JobResult,
    PageOutcome,
    StatusChange,
)
from atlas_codex.jobs.vocabulary import JOB_STATUSES, JOB_TYPES, TERMINAL_STATUSES
from atlas_codex_local.legacy import AI_STATES, NAVIGATION_STATES, SYNC_STATES

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}", fullmatch=True)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}\.(com|org|de|example)", fullmatch=True)
paths = st.from_regex(r"(/[A-Za-z0-9._~%-]{0,12}){0,4}", fullmatch=True)
urls = st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["http", "https"]), hosts, paths)
times = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
money = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
json_floats = st.floats(
    allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15
).filter(
    lambda f: f == 0 or abs(f) > 1e-100  # DynamoDB stores magnitudes from 1e-130 up
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text | json_floats
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
field_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


@st.composite
def requests(draw: st.DrawFn) -> JobRequest:
    schema: dict[str, Any] | None = draw(
        st.none()
        | st.builds(
            lambda props: {"type": "object", "properties": {k: {"type": "string"} for k in props}},
            st.lists(field_names, max_size=5),
        )
    )
    selectors = draw(
        st.none()
        | st.builds(
            lambda names, css: SelectorSchema(
                base_selector=css, fields={n: SelectorField(selector=f".{n}") for n in names}
            ),
            st.lists(field_names, min_size=1, max_size=4, unique=True),
            st.none() | st.just("article"),
        )
    )
    crawl = draw(
        st.none()
        | st.builds(CrawlOptions, max_pages=st.integers(1, 500), max_depth=st.integers(0, 5))
    )
    return JobRequest(
        urls=draw(st.lists(urls, min_size=1, max_size=4)),
        json_schema=schema,
        selectors=selectors,
        instruction=draw(st.none() | text),
        crawl=crawl,
        webhook_url=draw(st.none() | urls),
        respect_robots_txt=draw(st.booleans()),
    )


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    status = draw(st.sampled_from(JOB_STATUSES))
    created = draw(times)
    updated = created + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
    job_type = draw(st.sampled_from(JOB_TYPES))
    result = None
    if status == "completed":
        pages = draw(
            st.lists(
                st.builds(PageOutcome, url=urls, status=st.just("ok"), data=json_values), max_size=3
            )
        )
        result = draw(st.none() | st.just(JobResult(data=draw(json_values), pages=pages)))
    error = None
    if status == "failed" or (status in TERMINAL_STATUSES and draw(st.booleans())):
        error = JobError(
            code=draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)), message=draw(text)
        )
    attempts = draw(
        st.lists(
            st.builds(
                Attempt,
                strategy=st.sampled_from(["direct", "schema", "reasoning", "navigation"]),
                model=st.none() | st.sampled_from(["gpt-5-nano", "gpt-5-mini"]),
                started_at=st.just(created),
                ended_at=st.none() | st.just(updated),
                input_tokens=st.integers(0, 10**6),
                output_tokens=st.integers(0, 10**5),
                cost_usd=st.none() | money,
                estimated_cost_usd=st.none() | money,
            ),
            max_size=3,
        )
    )
    children = None
    if job_type == "batch":
        total = draw(st.integers(0, 50))
        done = draw(st.integers(0, total))
        children = ChildCounters(total=total, completed=done)
    timeline = [StatusChange(status="pending", at=created)]
    if status != "pending":
        timeline.append(StatusChange(status=status, at=updated, reason=draw(st.none() | text)))
    return Job(
        job_id=draw(ids),
        type=job_type,
        status=status,
        owner_id=draw(ids),
        correlation_id=draw(ids),
        idempotency_key=draw(st.none() | st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)),
        request=draw(requests()),
        result=result,
        error=error,
        attempts=attempts,
        fallback_chain=[a.strategy for a in attempts],
        cost=JobCost(estimated_usd=draw(money), actual_usd=draw(money)),
        created_at=created,
        updated_at=updated,
        timeline=timeline,
        parent_id=draw(st.none() | ids),
        children=children,
        version=draw(st.integers(1, 1000)),
        ttl=draw(st.none() | st.integers(0, 2**40)),
    )


def _epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def legacy_sync(extra: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "jobId": ids,
            "state": st.sampled_from(sorted(SYNC_STATES)),
            "url": urls,
            "created": times.map(_epoch_ms),
        },
        optional={"output": json_values, "errorMessage": text}
        if extra
        else {"output": json_values},
    )


def legacy_ai() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": ids,
            "status": st.sampled_from(sorted(AI_STATES)),
            "urls": st.lists(urls, min_size=1, max_size=3),
            "createdAt": times.map(lambda d: d.isoformat().replace("+00:00", "Z")),
        },
        optional={
            "prompt": text,
            "result_json": json_values.map(json.dumps),
            "usage": st.fixed_dictionaries(
                {
                    "prompt_tokens": st.integers(0, 10**6),
                    "completion_tokens": st.integers(0, 10**5),
                    "model": st.sampled_from(["gpt-4", "gpt-4o-mini", "gpt-3.5-turbo"]),
                }
            ),
        },
    )


def legacy_navigation() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "job_id": ids,
            "job_status": st.sampled_from(sorted(NAVIGATION_STATES)),
            "start_url": urls,
            "timestamps": st.fixed_dictionaries(
                {"created": times.map(_epoch_ms)}, optional={"finished": times.map(_epoch_ms)}
            ),
        },
        optional={
            "max_pages": st.integers(1, 1000),
            "pages": st.lists(
                st.fixed_dictionaries({"url": urls, "data": json_values}), max_size=3
            ),
            "err": st.none() | text,
        },
    )

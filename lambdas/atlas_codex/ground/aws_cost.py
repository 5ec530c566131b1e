"""What a job costs in AWS: the resource use ``make bench`` measured, times list prices.

Three inputs, each defined once:

* the price table, ``aws_prices.json`` (on-demand list prices per region, with their date);
* the measured use, ``aws_use.json``, written by ``bench/aws_use.py``: what one job, one more
  page and one model call use, counted on the emulator with botocore hooks (requests per
  service, bytes stored and logged) and timed in the handlers (CPU seconds per function);
* the stage's :class:`CostBasis` (region, architecture, memory, retries, retention), which
  the stage settings give every function in one environment variable.

A function's billed duration is estimated as its CPU time scaled to its memory (Lambda gives a
function one vCPU at :data:`FULL_VCPU_MB` and a proportional share below it) plus the time it
waits: on AWS calls, on pages, on models. The waits cannot be measured on this machine (no
network): they are the stated assumptions below, and docs/COST.md prints them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

PRICES_FILE: Final = Path(__file__).with_name("aws_prices.json")
USE_FILE: Final = Path(__file__).with_name("aws_use.json")

FULL_VCPU_MB: Final = 1769
"""Lambda: a function has the equivalent of one vCPU at 1,769 MB; CPU share is proportional
to memory below it (AWS Lambda developer guide, "Memory and computing power")."""
AWS_CALL_WAIT_S: Final = 0.010
"""Assumed wall time of one in-region DynamoDB, SQS or S3 call (single-digit milliseconds is
what AWS states for DynamoDB; 10 ms covers a TLS request from Lambda)."""
PAGE_FETCH_WAIT_S: Final = 0.5
"""Assumed wall time of fetching one page from the internet (DNS, TLS, first byte, body)."""
MODEL_CALL_WAIT_S: Final = 4.0
"""Assumed wall time of one model call (a few hundred output tokens; reasoning models more)."""
XRAY_SAMPLED_SHARE: Final = 0.05
"""Share of invocations X-Ray records a trace of: the default sampling rule (the first request
each second, then 5%), at volume; the tracing stages record every traced function's share."""
SNAPSTART_RESTORES_PER_INVOCATION: Final = 0.01
"""Assumed: one SnapStart restore per 100 api invocations (a restored environment serves
requests until Lambda recycles it; a steady load restores rarely, bursts more)."""
RENDER_S: Final = 3.0
"""Assumed wall time of one render in the render function (a page and its scripts, then
network idle); docs/PERFORMANCE.md's render benchmark measures it on this machine."""
PLATFORM_LOG_BYTES: Final = 350
"""Lambda's own log lines per invocation (START, END and REPORT, ~350 bytes together)."""
GB: Final = 1024**3
DAYS_PER_MONTH: Final = Decimal("30.4375")

Architecture = Literal["arm64", "x86_64"]
FunctionName = Literal["api", "worker"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionPrices(_Model):
    lambda_gb_s: dict[Architecture, Decimal]
    lambda_request: Decimal
    api_request: Decimal
    websocket_message: Decimal
    sqs_request: Decimal
    dynamodb_write_unit: Decimal
    dynamodb_read_unit: Decimal
    dynamodb_gb_month: Decimal
    s3_put_request: Decimal
    s3_get_request: Decimal
    s3_gb_month: Decimal
    logs_ingest_gb: Decimal
    logs_gb_month: Decimal
    transfer_out_gb: Decimal
    waf_request: Decimal
    waf_web_acl_month: Decimal
    waf_rule_month: Decimal
    """Each rule or managed rule group of a web ACL."""
    xray_trace: Decimal
    """One trace recorded."""
    snapstart_cache_gb_s: Decimal
    """A published version's snapshot, per GB of the function's memory, per second cached."""
    snapstart_restore_gb: Decimal
    """One restore of a snapshot, per GB of the function's memory."""
    dynamodb_pitr_gb_month: Decimal
    """Continuous backups (point-in-time recovery), per GB of table size."""
    kms_key_month: Decimal
    kms_request: Decimal
    metric_month: Decimal
    """A custom metric (one name and dimension set), including API Gateway's detailed ones."""
    alarm_month: Decimal
    """A standard-resolution metric alarm (a metric-math alarm counts its metrics)."""
    dashboard_month: Decimal
    contributor_insights_rule_month: Decimal
    """One Contributor Insights rule (two per table or index with a sort key, one without)."""


class PeerPrice(_Model):
    service: str
    plan: str
    usd_per_1000_pages: Decimal


class Peers(_Model):
    as_of: str
    notes: str
    prices: list[PeerPrice]


class PriceTable(_Model):
    as_of: str
    notes: str
    regions: dict[str, RegionPrices]
    peers: Peers

    def of(self, region: str) -> RegionPrices:
        try:
            return self.regions[region]
        except KeyError:
            raise UnknownRegion(region) from None


class UnknownRegion(KeyError):
    def __str__(self) -> str:
        return f"no AWS prices for region {self.args[0]} in {PRICES_FILE.name}"


class Segment(_Model):
    """One function's share of a piece of work."""

    function: FunctionName
    invocations: Annotated[float, Field(ge=0)]
    cpu_s: Annotated[float, Field(ge=0)]
    aws_calls: Annotated[float, Field(ge=0)]


class Requests(_Model):
    """Billable requests and bytes, per piece of work (fractions: averages over a run)."""

    api_requests: float = 0
    sqs_requests: float = 0
    dynamodb_write_units: float = 0
    dynamodb_read_units: float = 0
    s3_put_requests: float = 0
    s3_get_requests: float = 0
    s3_bytes: float = 0
    """Bytes stored in S3 (kept for the stage's page expiry)."""
    dynamodb_bytes: float = 0
    """Bytes stored in DynamoDB (kept for the stage's job TTL)."""
    log_bytes: float = 0
    """Bytes written to CloudWatch Logs (kept for the log groups' retention)."""


class Measured(_Model):
    segments: list[Segment]
    requests: Requests


class UseProfile(_Model):
    """What ``bench/aws_use.py`` measured (``aws_use.json``)."""

    measured: str
    job: Measured
    """One async job of one page, minus the page: submit, queue, claim, finish, one status
    read, the record and the logs."""
    page: Measured
    """One more page of a job (fetch, extraction, the page stored for re-extraction)."""
    crawled_page: Measured
    """One more page of a crawl (the same, plus its links followed)."""
    model_call: Measured
    """One model call's use besides the model itself (spend reserved and settled)."""
    model_call_tokens: float = 0
    """Tokens one model call takes from the provider's per-minute limit (input and output;
    a product page's call, median over the product-pages dev set)."""


class CostBasis(_Model):
    """A stage's facts the cost depends on (``ATLAS_COST_BASIS``, from the stage settings)."""

    region: str
    architecture: Architecture
    memory_mb: dict[FunctionName, Annotated[int, Field(ge=128, le=10240)]]
    worker_timeout_s: Annotated[int, Field(ge=1, le=900)]
    max_receives: Annotated[int, Field(ge=1)]
    job_ttl_days: Annotated[int, Field(ge=1)]
    pages_expiry_days: Annotated[int, Field(ge=1)]
    log_retention_days: Annotated[int, Field(ge=1)]
    waf: bool = False
    """A web ACL filters the REST API (priced per request)."""
    tracing: bool = False
    """X-Ray active tracing on the functions and the REST stage."""
    point_in_time_recovery: bool = False
    snapstart: bool = False
    """The api function restores from a snapshot (priced per restore)."""
    render_memory_mb: Annotated[int, Field(ge=128, le=10240)] = 2048
    render_timeout_s: Annotated[int, Field(ge=1, le=900)] = 30


class UsdRange(_Model):
    low_usd: float
    """Nothing waited on: CPU and requests only."""
    expected_usd: float
    """With the assumed waits for pages and models."""
    high_usd: float
    """Every page and model call at its timeout, on every try the queue allows."""


@cache
def price_table() -> PriceTable:
    return PriceTable.model_validate(json.loads(PRICES_FILE.read_text()))


@cache
def use_profile() -> UseProfile:
    return UseProfile.model_validate(json.loads(USE_FILE.read_text()))


def _scaled(segment: Segment, memory_mb: int) -> float:
    """A segment's billed seconds at ``memory_mb`` (before the waits only the worker has)."""
    cpu = segment.cpu_s * max(1.0, FULL_VCPU_MB / memory_mb)
    return cpu + segment.aws_calls * AWS_CALL_WAIT_S


class Bill(_Model):
    """A job's AWS cost by service, in USD."""

    by_service: dict[str, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.by_service.values(), Decimal(0))


def bill(
    measured: list[tuple[Measured, float]],
    basis: CostBasis,
    *,
    worker_wait_s: float = 0.0,
    run_s: float | None = None,
    run_on: FunctionName = "worker",
    renders: float = 0.0,
    render_s: float = RENDER_S,
    prices: RegionPrices | None = None,
) -> Bill:
    """The cost of ``count`` x each measured piece of work, plus ``worker_wait_s`` seconds of
    the worker waiting (pages, models). With ``run_s`` (a job that ran: its measured wall
    time on the function ``run_on``) the extraction's duration is that figure instead of the
    worker's estimate. ``renders`` pages rendered in the render function, ``render_s`` each.
    The stage's per-request extras (WAF, X-Ray, SnapStart restores, point-in-time recovery)
    are counted when its basis has them; fixed monthly items are :func:`fixed_monthly`'s."""
    prices = prices or price_table().of(basis.region)
    seconds: dict[FunctionName, Decimal] = {"api": Decimal(0), "worker": Decimal(0)}
    invocations = Decimal(0)
    api_invocations = Decimal(0)
    totals: dict[str, Decimal] = {}
    for piece, count in measured:
        k = Decimal(str(count))
        for segment in piece.segments:
            invocations += Decimal(str(segment.invocations)) * k
            if segment.function == "api":
                api_invocations += Decimal(str(segment.invocations)) * k
            scaled = _scaled(segment, basis.memory_mb[segment.function])
            seconds[segment.function] += Decimal(str(scaled)) * k
        for name, value in piece.requests.model_dump().items():
            totals[name] = totals.get(name, Decimal(0)) + Decimal(str(value)) * k
    seconds["worker"] += Decimal(str(worker_wait_s))
    if run_s is not None:
        seconds["worker"] = Decimal(0)
        seconds[run_on] += Decimal(str(run_s))
    gb_s = sum((s * Decimal(basis.memory_mb[f]) / 1024 for f, s in seconds.items()), Decimal(0))
    months = {
        "s3": Decimal(basis.pages_expiry_days) / DAYS_PER_MONTH,
        "dynamodb": Decimal(basis.job_ttl_days) / DAYS_PER_MONTH,
        "logs": Decimal(basis.log_retention_days) / DAYS_PER_MONTH,
    }
    log_gb = (totals["log_bytes"] + invocations * PLATFORM_LOG_BYTES) / GB
    by_service = {
        "lambda": gb_s * prices.lambda_gb_s[basis.architecture]
        + invocations * prices.lambda_request,
        "api_gateway": totals["api_requests"] * prices.api_request,
        "sqs": totals["sqs_requests"] * prices.sqs_request,
        "dynamodb": totals["dynamodb_write_units"] * prices.dynamodb_write_unit
        + totals["dynamodb_read_units"] * prices.dynamodb_read_unit
        + totals["dynamodb_bytes"] / GB * prices.dynamodb_gb_month * months["dynamodb"],
        "s3": totals["s3_put_requests"] * prices.s3_put_request
        + totals["s3_get_requests"] * prices.s3_get_request
        + totals["s3_bytes"] / GB * prices.s3_gb_month * months["s3"],
        "cloudwatch_logs": log_gb * prices.logs_ingest_gb
        + log_gb * prices.logs_gb_month * months["logs"],
    }
    rendered = Decimal(str(renders))
    if rendered:
        render_gb_s = rendered * Decimal(str(render_s)) * Decimal(basis.render_memory_mb) / 1024
        # the browser has no arm64 build: the render function is x86-64
        by_service["render"] = (
            render_gb_s * prices.lambda_gb_s["x86_64"] + rendered * prices.lambda_request
        )
    if basis.waf:
        by_service["waf"] = totals["api_requests"] * prices.waf_request
    if basis.tracing:
        traced = invocations + rendered
        by_service["xray"] = traced * Decimal(str(XRAY_SAMPLED_SHARE)) * prices.xray_trace
    if basis.point_in_time_recovery:
        by_service["dynamodb"] += (
            totals["dynamodb_bytes"] / GB * prices.dynamodb_pitr_gb_month * months["dynamodb"]
        )
    if basis.snapstart:
        restores = api_invocations * Decimal(str(SNAPSTART_RESTORES_PER_INVOCATION))
        api_gb = Decimal(basis.memory_mb["api"]) / 1024
        by_service["snapstart"] = restores * api_gb * prices.snapstart_restore_gb
    return Bill(by_service=by_service)


class FixedItems(_Model):
    """What a stage pays each month whatever its volume, counted from its template."""

    web_acls: int = 0
    web_acl_rules: int = 0
    snapstart_memory_mb: list[int] = []
    """Memory of each function with SnapStart on (one published version cached each)."""
    kms_keys: int = 0
    custom_metrics: int = 0
    alarm_metrics: int = 0
    """Metrics the stage's alarms evaluate (a metric-math alarm: each of its metrics)."""
    dashboards: int = 0
    contributor_insights_rules: int = 0


SECONDS_PER_MONTH: Final = DAYS_PER_MONTH * 86_400


def fixed_monthly(items: FixedItems, region: str) -> dict[str, Decimal]:
    """The stage's fixed monthly cost, by item, in USD."""
    prices = price_table().of(region)
    cached_gb = sum((Decimal(mb) / 1024 for mb in items.snapstart_memory_mb), Decimal(0))
    return {
        "waf": items.web_acls * prices.waf_web_acl_month
        + items.web_acl_rules * prices.waf_rule_month,
        "snapstart_cache": cached_gb * SECONDS_PER_MONTH * prices.snapstart_cache_gb_s,
        "kms": items.kms_keys * prices.kms_key_month,
        "custom_metrics": items.custom_metrics * prices.metric_month,
        "alarms": items.alarm_metrics * prices.alarm_month,
        "dashboards": items.dashboards * prices.dashboard_month,
        "contributor_insights": items.contributor_insights_rules
        * prices.contributor_insights_rule_month,
    }


def job_pieces(
    profile: UseProfile, *, page_count: int, crawl: bool, model_calls: float
) -> list[tuple[Measured, float]]:
    """What a job of ``page_count`` pages and ``model_calls`` calls is made of."""
    page = profile.crawled_page if crawl else profile.page
    return [(profile.job, 1), (page, max(page_count, 1)), (profile.model_call, model_calls)]


def quote(
    basis: CostBasis,
    *,
    page_count: int,
    crawl: bool,
    model_calls: float,
    worst_model_calls: float,
    page_timeout_s: float,
    model_timeout_s: float,
    concurrency: int = 1,
    renders: float = 0.0,
    worst_renders: float = 0.0,
    profile: UseProfile | None = None,
) -> UsdRange:
    """A job's AWS cost before it runs: low, expected and high (see :class:`UsdRange`).
    ``concurrency``: pages fetched at once (a crawl's), which divides the page waits;
    ``renders``/``worst_renders``: pages expected to be, and that may be, rendered."""
    profile = profile or use_profile()
    waits = max(concurrency, 1)
    low = bill(
        job_pieces(profile, page_count=page_count, crawl=crawl, model_calls=model_calls),
        basis,
        renders=renders,
    )
    expected = bill(
        job_pieces(profile, page_count=page_count, crawl=crawl, model_calls=model_calls),
        basis,
        worker_wait_s=page_count * PAGE_FETCH_WAIT_S / waits
        + model_calls * MODEL_CALL_WAIT_S
        + renders * RENDER_S,
        renders=renders,
    )
    worst_pieces = job_pieces(
        profile, page_count=page_count, crawl=crawl, model_calls=worst_model_calls
    )
    worst_wait = (
        page_count * page_timeout_s / waits
        + worst_model_calls * model_timeout_s
        + worst_renders * basis.render_timeout_s
    )
    # Billed whichever invocations it is split over (a long job continues in others); the
    # queue may run it up to max_receives times.
    worst = bill(
        worst_pieces,
        basis,
        worker_wait_s=worst_wait,
        renders=worst_renders,
        render_s=basis.render_timeout_s,
    )
    return UsdRange(
        low_usd=float(low.total),
        expected_usd=float(expected.total),
        high_usd=float(worst.total * basis.max_receives),
    )


def measured(
    basis: CostBasis,
    *,
    page_count: int,
    crawl: bool,
    model_calls: int,
    run_s: float,
    run_on: FunctionName = "worker",
    render_ms: Sequence[int] = (),
    profile: UseProfile | None = None,
) -> Decimal:
    """A finished job's AWS cost: its extraction's measured wall time on the function that
    ran it, its renders' measured times, and the measured use of the rest (requests,
    storage, logs, the API's share)."""
    profile = profile or use_profile()
    pieces = job_pieces(profile, page_count=page_count, crawl=crawl, model_calls=model_calls)
    renders = len(render_ms)
    mean_s = sum(render_ms) / 1000 / renders if renders else RENDER_S
    return bill(pieces, basis, run_s=run_s, run_on=run_on, renders=renders, render_s=mean_s).total

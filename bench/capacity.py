"""The capacity model: docs/CAPACITY.md, computed from the stage settings and the measured
use per job (``lambdas/atlas_codex/ground/aws_use.json``, written by ``bench/aws_use.py``).

For each daily volume, the peak rate (average x :data:`PEAK_TO_AVERAGE`) is put against every
limit a job meets on its way: API Gateway, Lambda concurrency, SQS, DynamoDB per table and
per partition key (the hottest first), S3 per prefix, CloudWatch Logs, the model provider's
tokens per minute. Concurrency is Little's law: arrivals per second x seconds per job.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
CAPACITY_DOC = ROOT / "docs" / "CAPACITY.md"

STAGE: Final = "prod"
VOLUMES: Final = (100_000, 1_000_000, 10_000_000, 100_000_000)
PEAK_TO_AVERAGE: Final = 5.0
"""Peak rate over the day's average rate: clients submit in business hours and in bursts.
A day that arrives evenly has 1; 5 leaves room for a burst of a fifth of the day in an hour."""

# AWS's published default quotas (per account and region unless said); adjustable ones can
# be raised through Service Quotas.
SQS_EVENT_SOURCE_BATCHES: Final = 1_000
"""Lambda: batches one SQS event source mapping processes at once (standard queue; the
maximum-concurrency setting is 2-1,000 too)."""
SQS_IN_FLIGHT: Final = 120_000
"""SQS standard queue: messages received and not yet deleted."""
DYNAMODB_PARTITION_WRITE_UNITS: Final = 1_000
"""DynamoDB: write units per second one partition (so one partition key) takes."""
DYNAMODB_TABLE_WRITE_UNITS: Final = 40_000
"""DynamoDB on-demand: write request units per second per table (adjustable)."""
S3_PREFIX_PUTS: Final = 3_500
"""S3: PUT requests per second per prefix (S3 splits busy prefixes; one prefix is the floor)."""
LOGS_INGEST_MB_S: Final = 10.0
"""What this model allows per log group before asking AWS (CloudWatch Logs has no fixed
ingestion quota for Lambda's own delivery; 10 MB/s is where AWS advises talking to them)."""
MODEL_TPM: Final = {"gpt-5-nano": 180_000_000, "gpt-5-mini": 180_000_000, "gpt-5": 40_000_000}
"""OpenAI tokens per minute per model at usage tier 5, as OpenAI published them in 2025;
an organisation's own limits page is the authority."""


@dataclass(frozen=True)
class Load:
    limit: str
    load: float
    capacity: float
    unit: str
    note: str = ""
    plan: bool = False
    """A limit of one client's usage plan (per API key), not of the service."""
    fixed: bool = False
    """Not a setting or a quota: lifting it takes a change of design."""

    @property
    def headroom(self) -> float:
        return math.inf if self.load == 0 else self.capacity / self.load


def _seconds(profile: Any, function: str, memory_mb: int, *, waits: float = 0.0) -> float:
    from atlas_codex.ground.aws_cost import AWS_CALL_WAIT_S, FULL_VCPU_MB

    total = waits if function == "worker" else 0.0
    for piece in (profile.job, profile.page):
        for segment in piece.segments:
            if segment.function == function:
                total += segment.cpu_s * max(1.0, FULL_VCPU_MB / memory_mb)
                total += segment.aws_calls * AWS_CALL_WAIT_S
    return total


def loads(profile: Any, settings: Any, jobs_per_day: int, model_calls: float) -> list[Load]:
    """Every limit's load at the peak of ``jobs_per_day`` one-page jobs, each making
    ``model_calls`` model calls, from one client (the worst case for per-key limits)."""
    from atlas_codex.ground import limits
    from atlas_codex.ground.aws_cost import MODEL_CALL_WAIT_S, PAGE_FETCH_WAIT_S
    from atlas_codex.ground.table_specs import INDEX_SHARDS
    from atlas_codex_stage.settings import API_GATEWAY_ACCOUNT_RPS, UNRESERVED_CONCURRENCY

    rate = jobs_per_day / 86_400 * PEAK_TO_AVERAGE
    per_job = profile.job.requests
    per_page = profile.page.requests
    per_call = profile.model_call.requests
    functions = settings.functions
    api_s = _seconds(profile, "api", functions.api.memory_mb)
    worker_s = _seconds(
        profile,
        "worker",
        functions.worker.memory_mb,
        waits=PAGE_FETCH_WAIT_S + model_calls * MODEL_CALL_WAIT_S,
    )
    api_rps = rate * per_job.api_requests
    api_concurrency = rate * api_s
    jobs_running = rate * worker_s
    # At the peak the queue holds a backlog, so batches come full and run their jobs side by
    # side: one invocation, and one of the event source's batches, per JOBS_PER_INVOCATION.
    worker_concurrency = jobs_running / limits.JOBS_PER_INVOCATION
    reserved = sum(
        f.reserved_concurrency or 0
        for f in (functions.api, functions.worker, functions.webhooks, functions.websocket)
    )
    unreserved_need = max(api_concurrency - (functions.api.reserved_concurrency or 0), 0) + max(
        worker_concurrency - (functions.worker.reserved_concurrency or 0), 0
    )
    write_units = rate * (
        per_job.dynamodb_write_units
        + per_page.dynamodb_write_units
        + model_calls * per_call.dynamodb_write_units
    )
    out = [
        Load(
            "API Gateway requests, account",
            api_rps,
            API_GATEWAY_ACCOUNT_RPS,
            "req/s",
            "every API in the account and region (a Service Quotas increase)",
        ),
        Load(
            "API Gateway REST stage throttle, every client",
            api_rps,
            settings.api.stage_rate_limit_rps,
            "req/s",
            "stage setting api.stage_rate_limit_rps, applied by API Gateway to each method; "
            "a job's submission and its reads counted on one method (the cautious reading)",
        ),
        Load(
            "API Gateway usage plan, one client's key (rate)",
            api_rps,
            settings.api.rate_limit_rps,
            "req/s",
            "stage setting api.rate_limit_rps",
            plan=True,
        ),
        Load(
            "API Gateway usage plan, one client's key (daily quota)",
            jobs_per_day * per_job.api_requests,
            settings.api.quota_per_day,
            "req/day",
            "stage setting api.quota_per_day",
            plan=True,
        ),
        Load(
            "Lambda api function concurrency",
            api_concurrency,
            functions.api.reserved_concurrency or settings.account_concurrency_limit,
            "running",
            f"{api_s * 1000:.0f} ms per job at {functions.api.memory_mb} MB; "
            + (
                "reserved concurrency"
                if functions.api.reserved_concurrency
                else "no reservation: the account limit"
            ),
        ),
        Load(
            "Lambda worker function concurrency",
            worker_concurrency,
            functions.worker.reserved_concurrency or settings.account_concurrency_limit,
            "running",
            f"{worker_s:.2f} s per job at {functions.worker.memory_mb} MB, "
            f"{limits.JOBS_PER_INVOCATION} jobs per invocation; "
            + (
                "reserved concurrency (the queue's event source maximum too)"
                if functions.worker.reserved_concurrency
                else "no reservation: the account limit"
            ),
        ),
        Load(
            "Lambda account concurrency",
            reserved + unreserved_need + UNRESERVED_CONCURRENCY,
            settings.account_concurrency_limit,
            "running",
            "the reservations, what runs beyond them, and the 100 AWS keeps unreserved; "
            "stage setting account_concurrency_limit (a Service Quotas increase)",
        ),
        Load("SQS messages in flight", jobs_running, SQS_IN_FLIGHT, "messages"),
        Load(
            "SQS event source mapping, jobs queue (batches at once)",
            worker_concurrency,
            SQS_EVENT_SOURCE_BATCHES,
            "batches",
            f"{limits.JOBS_PER_INVOCATION} jobs per batch, side by side",
            fixed=True,
        ),
        Load(
            "DynamoDB write units, all tables as one",
            write_units,
            DYNAMODB_TABLE_WRITE_UNITS,
            "WRU/s",
            "on-demand table maximum",
        ),
        Load(
            "DynamoDB by-status index, hottest key (`pending#n`)",
            rate * 2 / INDEX_SHARDS,
            DYNAMODB_PARTITION_WRITE_UNITS,
            "WRU/s",
            f"a put at create and a delete at claim per job, over {INDEX_SHARDS} shards "
            f"(unsharded: {rate * 2:,.0f} WRU/s on `pending`); more shards are a code change "
            "(tables.INDEX_SHARDS)",
            fixed=True,
        ),
        Load(
            "DynamoDB by-owner index, one client's hottest key",
            rate * 3 / INDEX_SHARDS,
            DYNAMODB_PARTITION_WRITE_UNITS,
            "WRU/s",
            f"create and two status changes per job, over {INDEX_SHARDS} shards "
            f"(unsharded: {rate * 3:,.0f} WRU/s on the client's key); more shards are a code "
            "change (tables.INDEX_SHARDS)",
            fixed=True,
        ),
        Load(
            "S3 page PUTs, one prefix",
            rate * per_page.s3_put_requests,
            S3_PREFIX_PUTS,
            "PUT/s",
        ),
        Load(
            "CloudWatch Logs ingestion",
            rate * (per_job.log_bytes + per_page.log_bytes + 350 * 3) / 1e6,
            LOGS_INGEST_MB_S,
            "MB/s",
        ),
    ]
    if model_calls:
        from atlas_codex.accounts.usage import SPEND_SHARDS

        calls = rate * model_calls
        out.append(
            Load(
                "DynamoDB usage table, the stage's month spend (hottest key)",
                calls * 2 / SPEND_SHARDS,
                DYNAMODB_PARTITION_WRITE_UNITS,
                "WRU/s",
                f"a reservation and its settlement per call, over {SPEND_SHARDS} partition "
                f"keys (unsharded: {calls * 2:,.0f} WRU/s on one key); more are a code change "
                "(usage.SPEND_SHARDS)",
                fixed=True,
            )
        )
        out.append(
            Load(
                "DynamoDB usage table, one client's spend counter (hottest key)",
                calls,
                DYNAMODB_PARTITION_WRITE_UNITS,
                "WRU/s",
                "its month and its day on a key each, one write each per call with a cost; "
                "one client past this needs its counters sharded (a code change)",
                fixed=True,
            )
        )
        model = settings.models.tier_models["nano"]
        out.append(
            Load(
                f"OpenAI tokens per minute ({model})",
                calls * 60 * profile.model_call_tokens,
                MODEL_TPM.get(model, 0),
                "tokens/min",
                f"{profile.model_call_tokens:,.0f} tokens per call (a product page)",
            )
        )
    return out


def _fmt(value: float) -> str:
    if value == math.inf:
        return "∞"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def document(profile: Any, settings: Any) -> str:

    lines = [
        "# Capacity",
        "",
        "Written by `make bench` (`bench/capacity.py`); do not edit by hand. Computed from the "
        f"`{STAGE}` stage settings (cdk.json) and the use per job measured by `bench/aws_use.py` "
        f"({profile.measured}). Each volume is one-page jobs from one client (the worst case "
        f"for per-key limits), at a peak of {PEAK_TO_AVERAGE:g}x the day's average rate. "
        "Concurrency is arrivals per second x seconds per job (Little's law), with the waits "
        "of docs/COST.md (a page fetch, a model call). Headroom is the limit over the load: "
        "below 1 the limit breaks. The usage plan's rate and quota are per API key: they are "
        "what one client buys, listed but not counted as the service's limit.",
        "",
        *_sized_for(profile, settings),
    ]
    for label, calls in (("Deterministic jobs (no model)", 0.0), ("One model call per job", 1.0)):
        lines += [f"## {label}", ""]
        for volume in VOLUMES:
            found = sorted(loads(profile, settings, volume, calls), key=lambda x: x.headroom)
            service = [x for x in found if not x.plan]
            first = service[0]
            peak = volume / 86_400 * PEAK_TO_AVERAGE
            verdict = (
                f"first to break: **{first.limit}** (headroom {_fmt(first.headroom)})"
                if first.headroom < 1
                else f"nothing breaks; least headroom: {first.limit} ({_fmt(first.headroom)}x)"
            )
            short = [x for x in found if x.plan and x.headroom < 1]
            if short:
                verdict += (
                    "; one client this size needs a bigger usage plan ("
                    + ", ".join(
                        f"{x.limit.rsplit('(', 1)[-1].rstrip(')')} {_fmt(x.load)} {x.unit}"
                        for x in short
                    )
                    + ")"
                )
            lines += [
                f"### {volume:,} jobs a day (peak {peak:,.0f} jobs/s): {verdict}",
                "",
                "| limit | load at peak | limit | unit | headroom | breaks at (jobs a day) | |",
                "|---|---:|---:|---|---:|---:|---|",
                *[
                    f"| {x.limit} | {_fmt(x.load)} | {_fmt(x.capacity)} | {x.unit} "
                    f"| {_fmt(x.headroom)} | {_fmt(x.headroom * volume)} | {x.note} |"
                    for x in found
                ],
                "",
            ]
    lines += [
        "## What the settings must become",
        "",
        "The limits of one partition key are lifted in the code (the job indexes and the "
        "month's spend and owners' counters are written sharded; "
        "`tests/integration/test_index_shards.py` and `tests/integration/test_spend_shards.py` "
        "push bursts through the emulator and count writes per key). What is left are "
        "settings and quotas an operator raises, in cdk.json and Service Quotas, before the "
        "volume arrives:",
        "",
    ]
    for top in SCALE_POINTS:
        lines += [f"### {top:,} jobs a day", "", *_what_it_takes(profile, settings, top), ""]
    lines += _batches()
    lines.append("")
    return "\n".join(lines)


def _sized_for(profile: Any, settings: Any) -> list[str]:
    design = settings.design_jobs_per_day
    first = first_limit(profile, settings, design, 1.0)
    breaks = [
        f"{calls:g} model call{'s' if calls != 1 else ''} per job: **{x.limit}** at "
        f"{_fmt(x.headroom * top)} jobs a day"
        for calls in (0.0, 1.0)
        for top in (SCALE_POINTS[0],)
        for x in (first_limit(profile, settings, top, calls),)
    ]
    return [
        "## Sized for",
        "",
        f"The `{STAGE}` settings are sized for **{design:,} one-page jobs a day with one model "
        f"call each** (stage setting `design_jobs_per_day`): at that volume's peak the tightest "
        f"limit is {first.limit}, headroom {_fmt(first.headroom)}. "
        "`tests/infra/test_capacity.py` reads the synthesized template's throttles, "
        "reservations and event source caps, checks they are the settings computed from here, "
        "and fails when any limit breaks below the design point. The first limit on the way to "
        f"{SCALE_POINTS[0]:,} jobs a day, with these settings: " + "; ".join(breaks) + ".",
        "",
    ]


def counter_item_bytes(children: int) -> int:
    """DynamoDB's size of a batch's counter item once ``children`` are counted: its key and
    attributes, and the number set of indexes (a number is about one byte per two digits,
    plus one)."""
    from atlas_codex.jobs.store.table import CHILD_COUNTS_OF, CHILD_COUNTS_SUFFIX

    key = len("job_id") + len("job_01") + 26 + len(CHILD_COUNTS_SUFFIX)
    marks = len(CHILD_COUNTS_OF) + 32
    counters = sum(len(n) + 3 for n in ("total", "completed", "failed", "cancelled"))
    indexes = len("counted") + sum(len(str(i)) // 2 + 2 for i in range(children))
    return key + marks + counters + indexes


def _batches() -> list[str]:
    from atlas_codex.ground import limits

    most = limits.MAX_URLS_PER_JOB
    units = math.ceil(counter_item_bytes(most) / 1024)
    return [
        "## Batches",
        "",
        "A batch counts each finished child with one conditional update of its counter item "
        f"(`jobs/store/table.py`): at {most:,} children the item is about "
        f"{counter_item_bytes(most) / 1024:.1f} KB, so a count costs at most {units} write "
        f"units, and one batch takes at most {DYNAMODB_PARTITION_WRITE_UNITS // units:,} "
        "counts a second (one partition key). The batch's record, 70-115 KB at that size, is "
        "written once, by the child that closes it; counting on it took about 91 write units "
        "a count and at most 11 counts a second.",
        "",
    ]


SCALE_POINTS: Final = (10_000_000, 100_000_000)
"""The volumes docs/CAPACITY.md says what it would take to reach."""


def first_limit(profile: Any, settings: Any, jobs_per_day: int, model_calls: float) -> Load:
    """The service's limit (not one client's plan) with the least headroom."""
    found = [x for x in loads(profile, settings, jobs_per_day, model_calls) if not x.plan]
    return min(found, key=lambda x: x.headroom)


def _what_it_takes(profile: Any, settings: Any, top: int) -> list[str]:
    from atlas_codex.ground import limits
    from atlas_codex_stage.settings import UNRESERVED_CONCURRENCY

    lines: list[str] = []
    design: list[str] = []
    for calls in (0.0, 1.0):
        what = f"{'one model call' if calls else 'no model'} per job"
        for x in loads(profile, settings, top, calls):
            if x.headroom >= 1:
                continue
            if x.fixed:
                design.append(
                    f"- {what}: {x.limit} carries {_fmt(x.load)} {x.unit} against "
                    f"{_fmt(x.capacity)}; it breaks at {_fmt(x.headroom * top)} jobs a day."
                )
                continue
            lines.append(
                f"- {what}: {x.limit} needs at least {_fmt(math.ceil(x.load * 1.25))} {x.unit} "
                f"(25% above the peak; now {_fmt(x.capacity)}). {x.note}"
            )
        # Reserving what the functions need (with the margin) must still fit the account.
        by_name = {x.limit: x for x in loads(profile, settings, top, calls)}
        functions = settings.functions
        reserved = {
            "api": functions.api.reserved_concurrency or 0,
            "worker": functions.worker.reserved_concurrency or 0,
        }
        for name in reserved:
            need = math.ceil(by_name[f"Lambda {name} function concurrency"].load * 1.25)
            reserved[name] = max(reserved[name], need)
        others = sum(f.reserved_concurrency or 0 for f in (functions.webhooks, functions.websocket))
        account = sum(reserved.values()) + others + UNRESERVED_CONCURRENCY
        if account > settings.account_concurrency_limit:
            lines.append(
                f"- {what}: with those reservations (api {reserved['api']}, worker "
                f"{reserved['worker']}), account_concurrency_limit needs at least {account:,} "
                f"(a Service Quotas increase; now {settings.account_concurrency_limit:,})."
            )
    if design:
        lines += [
            "",
            "Not lifted, and not a setting (a change of design):",
            "",
            *design,
            "",
            "Every running job holds a share of one of the event source's 1,000 batches "
            f"({limits.JOBS_PER_INVOCATION} jobs side by side per batch); the stage setting "
            "`functions.worker.reserved_concurrency` is capped at 1,000 for the same reason. "
            "Past that, the jobs need more than one queue and mapping (jobs sent by id to one "
            "of several queues), or more jobs per batch; a partition key past 1,000 writes a "
            "second needs more shards. Neither is built.",
        ]
    return lines or ["- nothing: the present settings carry it."]


def run() -> str:
    from atlas_codex.ground.aws_cost import use_profile
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = load_stage_settings(STAGE, context[DEFAULTS_KEY], context[STAGES_KEY])
    use_profile.cache_clear()
    text = document(use_profile(), settings)
    CAPACITY_DOC.write_text(text)
    summary = []
    for calls in (0.0, 1.0):
        for volume in VOLUMES:
            first = min(
                (x for x in loads(use_profile(), settings, volume, calls) if not x.plan),
                key=lambda x: x.headroom,
            )
            summary.append(
                f"| {volume:,} | {'1' if calls else '0'} | {first.limit} | {_fmt(first.headroom)} |"
            )
    return "\n".join(
        [
            "## Capacity",
            "",
            f"From `bench/capacity.py` (docs/CAPACITY.md): the least headroom at each volume, "
            f"{STAGE} settings, peak {PEAK_TO_AVERAGE:g}x average.",
            "",
            "| jobs a day | model calls per job | tightest limit | headroom |",
            "|---:|---:|---|---:|",
            *summary,
        ]
    )

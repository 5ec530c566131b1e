"""The health monitor: eight checks, run concurrently, each with its own timeout.

Each check answers ``ok``, ``degraded`` or ``failed`` with its latency and a message a
responder can act on. A check that hangs is reported ``failed`` when its timeout passes and
never holds the others up. The report is stored (one item in the usage table) so ``GET
/health`` can return the latest, and published as metrics the alarms watch.

The checks know nothing of Lambda: the handler (``handlers/health.py``) and local mode wire
them to real clients; the tests wire them to the moto server and to fakes that hang.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atlas_codex.accounts.usage import UsageLedger
from atlas_codex.extraction.contract import ExtractionTask
from atlas_codex.extraction.request import JobRequest
from atlas_codex.ground.config import ConfigError, RuntimeConfig
from atlas_codex.ground.values import format_timestamp, utcnow
from atlas_codex.jobs.store.status_index import StatusIndex
from atlas_codex.jobs.store.table import job_from_wire_item
from atlas_codex.jobs.vocabulary import JOB_STATUSES, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from atlas_codex.extraction.contract import Extractor

Status = Literal["ok", "degraded", "failed"]
_RANK: Final[dict[str, int]] = {"ok": 0, "degraded": 1, "failed": 2}

CHECK_TIMEOUT_S: Final = 5.0
"""Each check's own limit; the whole run takes at most about this long."""
DYNAMODB_SLOW_MS: Final = 500
BUDGET_DEGRADED_PCT: Final = 80.0
BUDGET_FAILED_PCT: Final = 95.0
BACKLOG_DEGRADED_S: Final = 900
"""A job pending longer than this: the worker is not keeping up (the queue-age alarm's value)."""
SCHEMA_SAMPLE: Final = 10
"""Recent jobs read per status for the schema check."""
SENTINEL_JOB_ID: Final = "health-sentinel"
REPORT_KEY: Final = {"pk": {"S": "health#latest"}, "sk": {"S": "report"}}
DEFAULT_MODEL_ENDPOINT: Final = "https://api.openai.com/v1"

CANARY_URL: Final = "http://127.0.0.1/atlas-codex-canary"
CANARY_HTML: Final = """<!doctype html><html><head><title>Atlas Codex canary</title></head>
<body><main><h1 class="name">Canary widget</h1><p class="price">12.50 EUR</p>
<ul><li class="tag">alpha</li><li class="tag">beta</li></ul></main></body></html>"""
CANARY_SELECTORS: Final = {"name": "h1.name", "price": ".price"}
CANARY_EXPECTED: Final = {"name": "Canary widget", "price": "12.50 EUR"}


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    status: Status
    latency_ms: int
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class HealthReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    status: Status
    checked_at: str
    checks: list[CheckResult]

    @property
    def failed(self) -> int:
        return sum(1 for c in self.checks if c.status == "failed")

    @property
    def degraded(self) -> int:
        return sum(1 for c in self.checks if c.status == "degraded")


class CheckEnded(Exception):
    """Raised by a check to end with a status other than ``ok``."""

    def __init__(self, status: Status, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Passed:
    message: str
    details: Mapping[str, Any] | None = None


Check = Callable[[], Passed]
ModelProbe = Callable[[float], list[str]]
"""Lists the model endpoint's models within a timeout (seconds); raises on failure."""


class NetworkProbe(Protocol):
    """Resolves the host and connects (with TLS when asked) within a timeout; the seconds."""

    def __call__(self, host: str, port: int, timeout: float, *, tls: bool) -> float: ...


def connect_probe(host: str, port: int, timeout: float, *, tls: bool) -> float:
    """Seconds to resolve and connect to ``host:port``, and to complete TLS when the
    endpoint's scheme is https (an http:// OpenAI-compatible server speaks no TLS)."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as raw:
        if tls:
            with ssl.create_default_context().wrap_socket(raw, server_hostname=host):
                pass
    return time.monotonic() - started


class HealthMonitor:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        dynamodb: DynamoDBClient,
        sqs: SQSClient,
        extractor: Callable[[], Extractor],
        environ: Mapping[str, str],
        model_probe: ModelProbe | None = None,
        network_probe: NetworkProbe = connect_probe,
        timeout_s: float = CHECK_TIMEOUT_S,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.db = dynamodb
        self.status_index = StatusIndex(dynamodb=dynamodb, table_name=config.jobs_table)
        self.sqs = sqs
        self.extractor = extractor
        self.environ = environ
        self.model_probe = model_probe
        self.network_probe = network_probe
        self.timeout_s = timeout_s
        self.now = now
        self.ledger = UsageLedger(
            dynamodb=dynamodb, table_name=config.usage_table, stage=config.stage
        )

    # ------------------------------------------------------------------ running

    def checks(self) -> dict[str, Check]:
        return {
            "dynamodb": self.check_dynamodb,
            "models": self.check_models,
            "pipeline": self.check_pipeline,
            "schema": self.check_schema,
            "budget": self.check_budget,
            "configuration": self.check_configuration,
            "network": self.check_network,
            "resources": self.check_resources,
        }

    def run(self, only: Mapping[str, Check] | None = None) -> HealthReport:
        """Every check at once; a check past its timeout is failed, not waited for."""
        checks = dict(only) if only is not None else self.checks()
        pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health")
        started = time.monotonic()
        futures: dict[str, tuple[Future[CheckResult], float]] = {
            name: (pool.submit(_timed, name, check), time.monotonic())
            for name, check in checks.items()
        }
        results: list[CheckResult] = []
        for name, (future, submitted) in futures.items():
            remaining = max(0.0, submitted + self.timeout_s - time.monotonic())
            try:
                results.append(future.result(timeout=remaining))
            except FutureTimeout:
                results.append(
                    CheckResult(
                        name=name,
                        status="failed",
                        latency_ms=int((time.monotonic() - started) * 1000),
                        message=f"no answer within {self.timeout_s:g} s; the check was abandoned",
                    )
                )
        pool.shutdown(wait=False, cancel_futures=True)
        worst = max((r.status for r in results), key=_RANK.__getitem__, default="ok")
        return HealthReport(
            stage=self.config.stage,
            status=worst,
            checked_at=format_timestamp(self.now()),
            checks=results,
        )

    # ------------------------------------------------------------------ storing

    def store(self, report: HealthReport) -> None:
        self.db.put_item(
            TableName=self.config.usage_table,
            Item={**REPORT_KEY, "report": {"S": report.model_dump_json()}},
        )

    def latest(self) -> HealthReport | None:
        return latest_report(self.db, self.config.usage_table)

    # ------------------------------------------------------------------ checks

    def check_dynamodb(self) -> Passed:
        started = time.monotonic()
        self.db.get_item(
            TableName=self.config.jobs_table,
            Key={"job_id": {"S": SENTINEL_JOB_ID}},
            ConsistentRead=True,
        )
        ms = int((time.monotonic() - started) * 1000)
        if ms > DYNAMODB_SLOW_MS:
            raise CheckEnded(
                "degraded",
                f"reading {self.config.jobs_table} took {ms} ms (over {DYNAMODB_SLOW_MS} ms)",
                read_ms=ms,
            )
        return Passed(f"read {self.config.jobs_table} in {ms} ms", {"read_ms": ms})

    def check_models(self) -> Passed:
        if not self.config.models_available:
            if self.config.stage == "local":
                return Passed("not configured: deterministic extraction serves every job")
            raise CheckEnded(
                "degraded",
                "not configured: OPENAI_API_KEY is not set, so model strategies are off and "
                "only deterministic extraction serves",
            )
        if self.config.openai_api_key is None and self.config.openai_secret_name is not None:
            secret = self.config.openai_secret_name
            try:
                self.config.openai_key()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise CheckEnded(
                        "failed", f"the OpenAI key secret {secret} cannot be read: {exc}"[:300]
                    ) from None
                # The secret is optional (README): without it deterministic extraction serves.
                raise CheckEnded(
                    "degraded",
                    f"not configured: the secret {secret} does not exist, so model strategies "
                    "are off and only deterministic extraction serves",
                ) from None
        if self.model_probe is None:
            raise CheckEnded("failed", "a key is configured but no model client could be made")
        try:
            models = self.model_probe(min(3.0, self.timeout_s))
        except Exception as exc:
            raise CheckEnded(
                "failed", f"listing models failed: {type(exc).__name__}: {exc}"[:300]
            ) from None
        from atlas_codex.llm.catalog import catalog_for

        policy = self.config.model_policy
        configured = [*policy.tier_models.values(), policy.production_fallback]
        near = catalog_for(policy).near_shutdown(configured, self.now().date())
        if near:
            raise CheckEnded(
                "degraded",
                "; ".join(
                    f"{name} shuts down on {when} ({(when - self.now().date()).days} days): "
                    "configure its tier's successor in the model policy"
                    for name, when in near
                ),
                shutdowns={name: str(when) for name, when in near},
            )
        from atlas_codex.llm.router import COOLDOWNS

        # Not listed by the endpoint, or answered 404 to a call of this process.
        missing = sorted(
            (set(policy.tier_models.values()) - set(models)) | set(COOLDOWNS.unavailable())
        )
        if missing:
            raise CheckEnded(
                "degraded",
                f"the endpoint does not list the configured models {', '.join(missing)}",
                missing=missing,
            )
        return Passed(f"{len(models)} models listed; every configured tier's model is there")

    def check_pipeline(self) -> Passed:
        """A canary extraction through the real engine, of a page served in memory."""
        request = JobRequest.model_validate(
            {
                "urls": [CANARY_URL],
                "selectors": {"fields": {k: {"selector": v} for k, v in CANARY_SELECTORS.items()}},
            }
        )
        outcome = self.extractor().extract(request, ExtractionTask.within(self.timeout_s))
        data = outcome.data[0] if isinstance(outcome.data, list) and outcome.data else outcome.data
        if data != CANARY_EXPECTED:
            raise CheckEnded(
                "failed",
                f"the canary page extracted to {json.dumps(data)[:200]}, expected "
                f"{json.dumps(CANARY_EXPECTED)}",
                strategy=outcome.strategy,
            )
        return Passed(f"canary extracted by {outcome.strategy}", {"strategy": outcome.strategy})

    def check_schema(self) -> Passed:
        """The most recent jobs of every status, read whole and validated as the API would."""
        entries: list[dict[str, Any]] = []
        for status in JOB_STATUSES:
            page = self.status_index.page(status, newest_first=True, limit=SCHEMA_SAMPLE)
            entries.extend(page.items)
        # The index projects keys and the deadline: read the records themselves.
        items = self.status_index.records(entries)
        invalid = []
        for item in items:
            try:
                job_from_wire_item(item)
            except (ValidationError, ValueError, KeyError) as exc:
                job_id = item.get("job_id", {}).get("S", "?")
                invalid.append(f"{job_id}: {str(exc).splitlines()[0][:120]}")
        if invalid:
            raise CheckEnded(
                "failed",
                f"{len(invalid)} of {len(items)} recent jobs do not match the job schema "
                f"(first: {invalid[0]}); run `atlas-codex migrate --dry-run`",
                invalid=invalid[:10],
            )
        return Passed(f"{len(items)} recent jobs match the job schema", {"checked": len(items)})

    def check_budget(self) -> Passed:
        spent = self.ledger.month_spend(when=self.now())
        budget = Decimal(str(self.config.monthly_budget_usd))
        pct = float(spent / budget * 100)
        details = {"spent_usd": float(spent), "budget_usd": float(budget), "percent": pct}
        message = f"${spent:.2f} of ${budget:.2f} this month ({pct:.1f}%)"
        if pct >= BUDGET_FAILED_PCT:
            raise CheckEnded("failed", f"{message}: model calls are about to be refused", **details)
        if pct >= BUDGET_DEGRADED_PCT:
            raise CheckEnded("degraded", f"{message}: past {BUDGET_DEGRADED_PCT:g}%", **details)
        return Passed(message, details)

    def check_configuration(self) -> Passed:
        try:
            RuntimeConfig.from_env(self.environ)
        except ConfigError as exc:
            raise CheckEnded(
                "failed", f"invalid function environment: {exc.problems}", problems=exc.problems
            ) from None
        return Passed("the function environment is valid")

    def check_network(self) -> Passed:
        if not self.config.models_available:
            return Passed("not configured: no model endpoint to reach")
        endpoint = self.config.openai_base_url or DEFAULT_MODEL_ENDPOINT
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        try:
            seconds = self.network_probe(host, port, min(3.0, self.timeout_s), tls=tls)
        except Exception as exc:
            raise CheckEnded(
                "failed", f"{host}:{port} unreachable: {type(exc).__name__}: {exc}"[:300]
            ) from None
        done = "resolved and TLS completed" if tls else "resolved and connected (plain http)"
        return Passed(f"{host}:{port} {done} in {seconds * 1000:.0f} ms")

    def check_resources(self) -> Passed:
        depths = {
            name: self._depth(url)
            for name, url in (
                ("jobs_queue", self.config.jobs_queue_url),
                ("jobs_dlq", self.config.jobs_dlq_url),
                ("webhooks_queue", self.config.webhooks_queue_url),
                ("webhooks_dlq", self.config.webhooks_dlq_url),
            )
        }
        now = self.now()
        oldest_pending_s = self._oldest_age("pending", now)
        stuck = self._stuck(now)
        details = {**depths, "oldest_pending_s": oldest_pending_s, "stuck_jobs": stuck}
        problems = []
        if depths["jobs_dlq"] or depths["webhooks_dlq"]:
            problems.append(
                f"dead-letter queues hold {depths['jobs_dlq']} job and "
                f"{depths['webhooks_dlq']} webhook messages (`atlas-codex ops dlq show`)"
            )
        if oldest_pending_s is not None and oldest_pending_s > BACKLOG_DEGRADED_S:
            problems.append(
                f"the oldest pending job has waited {oldest_pending_s} s "
                f"(jobs queue depth {depths['jobs_queue']})"
            )
        if stuck:
            problems.append(
                f"{stuck} jobs are stuck: processing past their deadline or pending with their "
                "message lost (`atlas-codex ops jobs sweep`)"
            )
        if problems:
            raise CheckEnded("degraded", "; ".join(problems), **details)
        return Passed(f"jobs queue {depths['jobs_queue']}, DLQs empty, no stuck jobs", details)

    # ------------------------------------------------------------------ helpers

    def _depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def _oldest_age(self, status: JobStatus, now: datetime) -> int | None:
        updated = self.status_index.oldest_change(status)
        if updated is None:
            return None
        return max(0, int((now - updated).total_seconds()))

    def _stuck(self, now: datetime) -> int:
        """Jobs the sweeper would act on: processing past their deadline, or pending with
        their message lost (unchanged for the queue's visibility timeout x max receives)."""
        overdue = 0
        for item in self.status_index.all_before("processing", now):
            deadline = item.get("deadline_at", {}).get("S")
            if deadline and datetime.fromisoformat(deadline.replace("Z", "+00:00")) < now:
                overdue += 1
        before = now - self.config.message_lost_after
        lost = sum(1 for _ in self.status_index.all_before("pending", before))
        return overdue + lost


def _timed(name: str, check: Check) -> CheckResult:
    started = time.monotonic()
    try:
        passed = check()
        status: Status = "ok"
        message, details = passed.message, dict(passed.details or {})
    except CheckEnded as outcome:
        status, message, details = outcome.status, outcome.message, outcome.details
    except Exception as exc:  # a check that breaks is a failed check, with why
        status, message, details = "failed", f"{type(exc).__name__}: {exc}"[:500], {}
    return CheckResult(
        name=name,
        status=status,
        latency_ms=int((time.monotonic() - started) * 1000),
        message=message,
        details=details,
    )


def latest_report(dynamodb: DynamoDBClient, usage_table: str) -> HealthReport | None:
    item = dynamodb.get_item(TableName=usage_table, Key=REPORT_KEY).get("Item")
    if not item:
        return None
    return HealthReport.model_validate_json(item["report"]["S"])


def canary_transport() -> httpx.MockTransport:
    """Serves the canary page (and a 404 robots.txt) in memory: the canary never leaves."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == urlsplit(CANARY_URL).path:
            return httpx.Response(
                200, text=CANARY_HTML, headers={"content-type": "text/html; charset=utf-8"}
            )
        return httpx.Response(404, text="not found")

    return httpx.MockTransport(handle)


def canary_extractor() -> Extractor:
    """The real engine, with a fetcher whose only reachable page is the canary."""
    from atlas_codex.engine.engine import Engine
    from atlas_codex.engine.pages.fetch import Fetcher
    from atlas_codex.ground.netguard import NetPolicy

    host, port = urlsplit(CANARY_URL).hostname or "", 80
    fetcher = Fetcher(
        policy=NetPolicy(allowed_private=frozenset({(host, port)})),
        client=httpx.Client(transport=canary_transport(), follow_redirects=False),
    )
    return Engine(fetcher=fetcher, models_available=False)


def openai_model_probe(config: RuntimeConfig) -> ModelProbe | None:
    """Lists models through the openai SDK (imported only here: cold start counts)."""
    if not config.models_available:
        return None

    def probe(timeout: float) -> list[str]:
        from openai import OpenAI

        client = OpenAI(
            api_key=config.openai_key(),
            base_url=config.openai_base_url,
            timeout=timeout,
            max_retries=0,
        )
        return [m.id for m in client.models.list()]

    return probe

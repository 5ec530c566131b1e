"""Stage settings: one pydantic model, validated at synth time.

The values live in ``cdk.json`` (context ``atlas-codex:defaults``, deep-merged with
``atlas-codex:stages.<stage>``); the rules live here. A wrong setting fails ``cdk synth``
with a message naming the field, e.g. ``stages.prod.point_in_time_recovery``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from atlas_codex.ground import limits, naming
from atlas_codex.ground.naming import FunctionResource, Stage
from atlas_codex.ground.policy import HostPort, ModelPolicy, check_cors_origins, check_private_hosts

DEFAULTS_KEY: Final = "atlas-codex:defaults"
STAGES_KEY: Final = "atlas-codex:stages"

# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS: Final = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)
API_GATEWAY_TIMEOUT_S: Final = 29
MIN_EVENT_SOURCE_CONCURRENCY: Final = 2
"""The least maximum concurrency an SQS event source mapping takes (AWS Lambda)."""
LAMBDA_ARCHITECTURE: Final = "arm64"
"""The functions' architecture: the stacks build for it, the cost model prices it."""
DEFAULT_ACCOUNT_CONCURRENCY: Final = 1000
"""AWS Lambda's default concurrent-executions quota per account and region."""
UNRESERVED_CONCURRENCY: Final = 100
TRACING: Final = True
"""X-Ray active tracing on every function and the REST stage, in every stage (the cost model
prices the traces it records)."""
API_GATEWAY_ACCOUNT_RPS: Final = 10_000
"""API Gateway: requests per second per account and region, across all APIs (adjustable)."""
API_GATEWAY_ACCOUNT_BURST: Final = 5_000
"""API Gateway: the account's burst, across all APIs (adjustable)."""
"""AWS Lambda keeps this many of an account's concurrent executions unreserved."""
BUDGET_MAX_NOTIFICATIONS: Final = 10
"""AWS Budgets: at most ten notifications per budget."""

VISIBILITY_TO_TIMEOUT_RATIO: Final = 6
"""AWS's advice: a queue's visibility timeout at least six times its consumer's timeout."""


class SettingsError(ValueError):
    """Invalid stage settings; the message names every offending field."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FunctionSettings(_Settings):
    memory_mb: Annotated[int, Field(ge=128, le=10240)]
    timeout_s: Annotated[int, Field(ge=1, le=900)]
    reserved_concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None


class FunctionsSettings(_Settings):
    api: FunctionSettings
    worker: FunctionSettings
    webhooks: FunctionSettings
    websocket: FunctionSettings
    health: FunctionSettings
    render: FunctionSettings

    def of(self, name: FunctionResource) -> FunctionSettings:
        value: FunctionSettings = getattr(self, name)
        return value

    @field_validator("api")
    @classmethod
    def _api_within_gateway_limit(cls, value: FunctionSettings) -> FunctionSettings:
        if value.timeout_s > API_GATEWAY_TIMEOUT_S:
            raise ValueError(
                f"timeout_s {value.timeout_s} exceeds API Gateway's {API_GATEWAY_TIMEOUT_S} s "
                "integration limit"
            )
        return value

    @field_validator("render")
    @classmethod
    def _render_outlasts_a_render(cls, value: FunctionSettings) -> FunctionSettings:
        least = int(limits.RENDER_TIMEOUT_S) + RENDER_START_S
        if value.timeout_s < least:
            raise ValueError(
                f"timeout_s {value.timeout_s} is shorter than a render's limit "
                f"({limits.RENDER_TIMEOUT_S:.0f} s) and the browser's start ({RENDER_START_S} s)"
            )
        if value.memory_mb < 1024:
            raise ValueError(
                "memory_mb below 1024: Chromium alone takes 200-260 MB and a page more"
            )
        return value


RENDER_START_S: Final = 10
"""What a render function's cold start may take beyond the render itself: unpacking the
browser (1-2 s measured here) and launching it."""


class QueueSettings(_Settings):
    visibility_timeout_s: Annotated[int, Field(ge=0, le=43200)]
    max_receive_count: Annotated[int, Field(ge=1, le=1000)]
    retention_days: Annotated[int, Field(ge=1, le=14)]
    dlq_retention_days: Annotated[int, Field(ge=1, le=14)]


class SlackDestination(_Settings):
    """An AWS Chatbot Slack channel: the workspace is authorised once in the Chatbot console."""

    workspace_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{9,11}$")]
    channel_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{9,11}$")]


class AlarmSettings(_Settings):
    error_rate_pct: Annotated[float, Field(gt=0, le=100)]
    throttles: Annotated[int, Field(ge=0)]
    dlq_depth: Annotated[int, Field(ge=0)]
    api_5xx_rate_pct: Annotated[float, Field(gt=0, le=100)]
    api_p99_latency_ms: Annotated[int, Field(ge=100, le=29000)]
    dynamodb_throttles: Annotated[int, Field(ge=0)]
    health_failed_checks: Annotated[int, Field(ge=0)]
    period_s: Literal[60, 300, 900, 3600]
    evaluation_periods: Annotated[int, Field(ge=1, le=24)]
    emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = ()
    """Addresses subscribed to the stage's alarm topic (each confirms once, by email)."""
    https_endpoints: tuple[Annotated[str, Field(pattern=r"^https://[^\s]+$")], ...] = ()
    """HTTPS endpoints subscribed to the alarm topic (a paging service's SNS integration URL)."""
    slack: SlackDestination | None = None
    """An AWS Chatbot Slack channel subscribed to the alarm topic."""

    @property
    def has_destination(self) -> bool:
        return bool(self.emails or self.https_endpoints or self.slack)


class BudgetSettings(_Settings):
    monthly_usd: Annotated[float, Field(gt=0, le=1_000_000)]
    """The stage's monthly model spend: model calls past it are refused (the usage ledger)."""
    aws_monthly_usd: Annotated[float, Field(gt=0, le=10_000_000)]
    """The stage's monthly AWS bill (resources tagged ``stage=<stage>``): AWS Budgets warns at
    each threshold. A different number from the model spend, and a different meter."""
    notify_at_pct: Annotated[tuple[Annotated[float, Field(gt=0, le=100)], ...], Field(min_length=1)]

    @field_validator("notify_at_pct")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("thresholds must be strictly increasing, e.g. [80, 95]")
        return value


class ApiSettings(_Settings):
    cors_origins: tuple[str, ...]
    rate_limit_rps: Annotated[float, Field(gt=0, le=10000)]
    """One client's (one API key's) steady rate: its usage plan."""
    burst_limit: Annotated[int, Field(ge=1, le=5000)]
    quota_per_day: Annotated[int, Field(ge=1)]
    stage_rate_limit_rps: Annotated[float, Field(gt=0, le=API_GATEWAY_ACCOUNT_RPS)]
    """Every client's together: the REST stage's throttle, which API Gateway applies to each
    method, and the WebSocket stage's default route throttle. The account's own limit
    (10,000 a second, shared by every API in the region) is its ceiling."""
    stage_burst_limit: Annotated[int, Field(ge=1, le=API_GATEWAY_ACCOUNT_BURST)]
    waf_enabled: bool
    snapstart: bool
    """The api function starts from a snapshot of its initialised state (Lambda SnapStart):
    published versions, an alias ``live`` that API Gateway calls, the hooks of
    ``atlas_codex/ground/snapstart.py``. Billed per cached snapshot and per restore."""

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value


class DataSettings(_Settings):
    removal_policy: Literal["retain", "destroy"]
    point_in_time_recovery: bool
    deletion_protection: bool
    job_ttl_days: Annotated[int, Field(ge=1, le=3650)]
    artifact_expiry_days: Annotated[int, Field(ge=1, le=3650)]
    throttled_keys_insights: bool = False
    """CloudWatch Contributor Insights on every table and index in throttled-keys mode: the
    DynamoDB console then names the partition keys that were throttled. It costs its rules
    ($0.50 a month each, two per table or index with a sort key, one without) and $0.03 per
    million events, counted only when a request is throttled (docs/CAPACITY.md)."""


class StageSettings(_Settings):
    """Everything that differs between dev, staging, prod and local."""

    stage: Stage
    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    data: DataSettings
    log_retention_days: int
    functions: FunctionsSettings
    jobs_queue: QueueSettings
    webhooks_queue: QueueSettings
    alarms: AlarmSettings
    budget: BudgetSettings
    account_concurrency_limit: Annotated[int, Field(ge=10)] = DEFAULT_ACCOUNT_CONCURRENCY
    design_jobs_per_day: Annotated[int, Field(ge=1)] = 10_000
    """The daily volume of one-page jobs, each with one model call, that the stage's settings
    are sized to carry at its peak: ``tests/infra/test_capacity.py`` computes every limit on
    the request path from the synthesized template and fails when one breaks below it
    (docs/CAPACITY.md)."""
    """The account's Lambda concurrent-executions quota in the stage's region (AWS's default
    is 1,000; a new account may start lower): reserved concurrency must leave 100 of it."""
    api: ApiSettings
    models: ModelPolicy
    allowed_private_hosts: tuple[HostPort, ...] = ()

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"{value} is not a CloudWatch retention; use one of {sorted(LOG_RETENTION_DAYS)}"
            )
        return value

    @model_validator(mode="after")
    def _stage_rules(self) -> Self:
        problems: list[str] = []
        try:
            check_private_hosts(self.stage, self.allowed_private_hosts)
        except ValueError as exc:
            problems.append(f"allowed_private_hosts: {exc}")
        for consumer in ("worker", "webhooks"):
            reserved = self.functions.of(consumer).reserved_concurrency
            if reserved is not None and reserved < MIN_EVENT_SOURCE_CONCURRENCY:
                problems.append(
                    f"functions.{consumer}.reserved_concurrency: {reserved} is below "
                    f"{MIN_EVENT_SOURCE_CONCURRENCY}, the least an SQS event source's maximum "
                    "concurrency (set to it) may be"
                )
        reserved_total = sum(
            f.reserved_concurrency or 0 for f in (self.functions.of(n) for n in naming.FUNCTIONS)
        )
        if reserved_total > self.account_concurrency_limit - UNRESERVED_CONCURRENCY:
            problems.append(
                f"functions: {reserved_total} reserved concurrent executions need an account "
                f"limit of at least {reserved_total + UNRESERVED_CONCURRENCY} (AWS keeps "
                f"{UNRESERVED_CONCURRENCY} unreserved); account_concurrency_limit is "
                f"{self.account_concurrency_limit}: raise the quota (Service Quotas, Lambda "
                "'Concurrent executions') and the setting, or reserve less"
            )
        notifications = 2 * len(self.budget.notify_at_pct)
        if notifications > BUDGET_MAX_NOTIFICATIONS:
            problems.append(
                f"budget.notify_at_pct: {len(self.budget.notify_at_pct)} thresholds make "
                f"{notifications} notifications (actual and forecasted); AWS Budgets allows "
                f"{BUDGET_MAX_NOTIFICATIONS} per budget"
            )
        if self.stage in ("staging", "prod") and not self.alarms.has_destination:
            problems.append(
                "alarms: staging and prod need an alarm destination, or every alarm and budget "
                "notification reaches nobody: set alarms.emails, alarms.https_endpoints or "
                "alarms.slack"
            )
        for queue, consumer in (("jobs_queue", "worker"), ("webhooks_queue", "webhooks")):
            visibility = getattr(self, queue).visibility_timeout_s
            timeout = self.functions.of(consumer).timeout_s  # type: ignore[arg-type]
            if visibility < VISIBILITY_TO_TIMEOUT_RATIO * timeout:
                problems.append(
                    f"{queue}.visibility_timeout_s: {visibility} s is less than "
                    f"{VISIBILITY_TO_TIMEOUT_RATIO} x functions.{consumer}.timeout_s ({timeout} s)"
                )
        if self.stage == "prod":
            if self.data.removal_policy != "retain":
                problems.append("data.removal_policy: prod must retain its tables and buckets")
            if not self.data.point_in_time_recovery:
                problems.append(
                    "data.point_in_time_recovery: prod must keep point-in-time recovery on"
                )
            if not self.data.deletion_protection:
                problems.append(
                    "data.deletion_protection: prod tables must be protected from deletion"
                )
        try:
            check_cors_origins(self.stage, self.api.cors_origins)
        except ValueError as exc:
            problems.append(f"api.cors_origins: {exc}")
        if self.stage == "prod" and any(o.startswith("http://") for o in self.api.cors_origins):
            problems.append("api.cors_origins: prod origins must use https")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def instance_id(self) -> str:
        return naming.instance_id(self.account, self.region, self.stage)

    @property
    def jobs_backlog_after_s(self) -> int:
        """How old the oldest jobs message may be before it is a backlog: a message retried
        on every receive is at most this old (each retry waits out the visibility timeout,
        the last try runs for up to the worker's timeout)."""
        queue = self.jobs_queue
        return (
            queue.visibility_timeout_s * (queue.max_receive_count - 1)
            + self.functions.worker.timeout_s
        )

    @property
    def retain(self) -> bool:
        return self.data.removal_policy == "retain"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; nested objects merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_stage_settings(
    stage: str, defaults: Mapping[str, Any] | None, stages: Mapping[str, Any] | None
) -> StageSettings:
    """Validate one stage's settings from the two context objects of ``cdk.json``."""
    try:
        naming.check_stage(stage)
    except naming.NamingError as exc:
        raise SettingsError(f"stage: {exc}") from None
    if not isinstance(defaults, Mapping):
        raise SettingsError(f"context {DEFAULTS_KEY!r} is missing from cdk.json")
    if not isinstance(stages, Mapping) or not isinstance(stages.get(stage, {}), Mapping):
        raise SettingsError(f"context {STAGES_KEY!r} must map each stage to an object")
    raw = deep_merge(defaults, {**stages.get(stage, {}), "stage": stage})
    try:
        # cdk.json is JSON: validate it as JSON, so strict mode takes arrays for tuples.
        return StageSettings.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise SettingsError(_describe(stage, exc)) from None


def _describe(stage: str, exc: ValidationError) -> str:
    lines: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = f"stages.{stage}.{loc}" if loc else f"stages.{stage}"
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # cross-field rules already name their fields
            lines.extend(f"stages.{stage}.{part}" for part in msg.splitlines())
        else:
            lines.append(f"{where}: {msg}")
    return "invalid stage settings:\n  " + "\n  ".join(lines)


CDK_JSON_ENV: Final = "ATLAS_CODEX_CDK_JSON"
"""Where the operator tools read the stage settings when not given ``--cdk-json``."""
_CHECKOUT_CDK_JSON: Final = Path(__file__).resolve().parents[2] / "cdk.json"


def find_cdk_json(explicit: str | Path | None = None, *, cwd: Path | None = None) -> Path | None:
    """The ``cdk.json`` holding the stage settings: the one given, else ``$ATLAS_CODEX_CDK_JSON``,
    else the first found in the working directory or a parent, else the checkout this package
    was installed from (an editable install). None when there is none."""
    given = explicit or os.environ.get(CDK_JSON_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise SettingsError(f"{path}: no such file (the stage settings are read from cdk.json)")
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "cdk.json").is_file():
            return folder / "cdk.json"
    return _CHECKOUT_CDK_JSON if _CHECKOUT_CDK_JSON.is_file() else None


def settings_from_file(stage: str, path: Path) -> StageSettings:
    """One stage's settings from a ``cdk.json`` file, with a clear error for a bad file."""
    try:
        context = json.loads(path.read_text())["context"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"{path}: not a cdk.json with a 'context' object ({exc})") from None
    if not isinstance(context, Mapping):
        raise SettingsError(f"{path}: 'context' must be an object")
    return load_stage_settings(stage, context.get(DEFAULTS_KEY), context.get(STAGES_KEY))

"""The environment a function starts with, validated once at cold start.

Every variable is named here (:class:`EnvVar`); the stacks import the same names to set
them, so a renamed variable cannot drift between the template and the code. A missing or
malformed variable fails the cold start with a message naming it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from atlas_codex.ground import naming
from atlas_codex.ground.aws_cost import CostBasis
from atlas_codex.ground.naming import Stage
from atlas_codex.ground.policy import HostPort, ModelPolicy, check_cors_origins, check_private_hosts


class EnvVar(StrEnum):
    STAGE = "ATLAS_STAGE"
    JOBS_TABLE = "ATLAS_JOBS_TABLE"
    CONNECTIONS_TABLE = "ATLAS_CONNECTIONS_TABLE"
    IDEMPOTENCY_TABLE = "ATLAS_IDEMPOTENCY_TABLE"
    USAGE_TABLE = "ATLAS_USAGE_TABLE"
    JOBS_QUEUE_URL = "ATLAS_JOBS_QUEUE_URL"
    JOBS_DLQ_URL = "ATLAS_JOBS_DLQ_URL"
    WEBHOOKS_QUEUE_URL = "ATLAS_WEBHOOKS_QUEUE_URL"
    WEBHOOKS_DLQ_URL = "ATLAS_WEBHOOKS_DLQ_URL"
    ARTIFACTS_BUCKET = "ATLAS_ARTIFACTS_BUCKET"
    MODEL_POLICY = "ATLAS_MODEL_POLICY"
    MONTHLY_BUDGET_USD = "ATLAS_MONTHLY_BUDGET_USD"
    JOB_TTL_DAYS = "ATLAS_JOB_TTL_DAYS"
    PAGES_EXPIRY_DAYS = "ATLAS_PAGES_EXPIRY_DAYS"
    JOBS_MAX_RECEIVES = "ATLAS_JOBS_MAX_RECEIVES"
    JOBS_VISIBILITY_TIMEOUT_S = "ATLAS_JOBS_VISIBILITY_TIMEOUT_S"
    CORS_ORIGINS = "ATLAS_CORS_ORIGINS"
    ALLOWED_PRIVATE_HOSTS = "ATLAS_ALLOWED_PRIVATE_HOSTS"
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
    OPENAI_API_KEY = "OPENAI_API_KEY"
    OPENAI_BASE_URL = "OPENAI_BASE_URL"
    WEBSOCKET_ENDPOINT = "ATLAS_WEBSOCKET_ENDPOINT"
    WEBSOCKET_URL = "ATLAS_WEBSOCKET_URL"
    OPENAI_SECRET_NAME = "ATLAS_OPENAI_SECRET_NAME"  # noqa: S105 - a variable name
    COST_BASIS = "ATLAS_COST_BASIS"
    RENDER_FUNCTION = "ATLAS_RENDER_FUNCTION"
    CHROMIUM_DIR = "ATLAS_CHROMIUM_DIR"


class ConfigError(RuntimeError):
    """The function's environment is wrong; ``problems`` maps each variable to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = "\n".join(f"  {var}: {msg}" for var, msg in self.problems.items())
        super().__init__(f"invalid function environment:\n{lines}")


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _parse_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from exc
    return value


def _queue_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not a queue URL")
    return parts.path.rstrip("/").rsplit("/", 1)[-1]


def message_lost_after(visibility_timeout_s: int, max_receives: int) -> timedelta:
    """A pending job unchanged this long has no message left in the queue: every delivery
    of its last message would have been received and returned by now."""
    return timedelta(seconds=visibility_timeout_s * max_receives)


_FIELD_ENV: Final[dict[str, EnvVar]] = {}


class RuntimeConfig(BaseModel):
    """What a function needs to know about its stage, from its environment."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: Stage = Field(alias=EnvVar.STAGE)
    jobs_table: str = Field(alias=EnvVar.JOBS_TABLE)
    connections_table: str = Field(alias=EnvVar.CONNECTIONS_TABLE)
    idempotency_table: str = Field(alias=EnvVar.IDEMPOTENCY_TABLE)
    usage_table: str = Field(alias=EnvVar.USAGE_TABLE)
    jobs_queue_url: str = Field(alias=EnvVar.JOBS_QUEUE_URL)
    jobs_dlq_url: str = Field(alias=EnvVar.JOBS_DLQ_URL)
    webhooks_queue_url: str = Field(alias=EnvVar.WEBHOOKS_QUEUE_URL)
    webhooks_dlq_url: str = Field(alias=EnvVar.WEBHOOKS_DLQ_URL)
    artifacts_bucket: str = Field(alias=EnvVar.ARTIFACTS_BUCKET)
    model_policy: Annotated[ModelPolicy, BeforeValidator(_parse_json)] = Field(
        default_factory=ModelPolicy, alias=EnvVar.MODEL_POLICY
    )
    monthly_budget_usd: float = Field(gt=0, allow_inf_nan=False, alias=EnvVar.MONTHLY_BUDGET_USD)
    job_ttl_days: int = Field(ge=1, le=3650, alias=EnvVar.JOB_TTL_DAYS)
    pages_expiry_days: int = Field(ge=1, le=3650, alias=EnvVar.PAGES_EXPIRY_DAYS)
    """Fetched pages stay in the artifacts bucket this long (its lifecycle rule deletes them)."""
    jobs_max_receives: int = Field(ge=1, le=1000, alias=EnvVar.JOBS_MAX_RECEIVES)
    jobs_visibility_timeout_s: int = Field(ge=0, le=43200, alias=EnvVar.JOBS_VISIBILITY_TIMEOUT_S)
    cors_origins: Annotated[tuple[str, ...], BeforeValidator(_split_list)] = Field(
        default=(), alias=EnvVar.CORS_ORIGINS
    )
    allowed_private_hosts: Annotated[tuple[HostPort, ...], BeforeValidator(_split_list)] = Field(
        default=(), alias=EnvVar.ALLOWED_PRIVATE_HOSTS
    )
    aws_endpoint_url: str | None = Field(default=None, alias=EnvVar.AWS_ENDPOINT_URL)
    openai_api_key: SecretStr | None = Field(default=None, alias=EnvVar.OPENAI_API_KEY)
    openai_base_url: str | None = Field(default=None, alias=EnvVar.OPENAI_BASE_URL)
    openai_secret_name: str | None = Field(default=None, alias=EnvVar.OPENAI_SECRET_NAME)
    """Deployed stages: the key is read from this secret on the first model call."""
    websocket_endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$", alias=EnvVar.WEBSOCKET_ENDPOINT
    )
    """The WebSocket API's management endpoint; without it, status changes are not pushed."""
    websocket_url: str | None = Field(
        default=None, pattern=r"^wss://[^\s/]+(/[^\s]*)?$", alias=EnvVar.WEBSOCKET_URL
    )
    """The WebSocket API's client URL (the api function: the console subscribes there);
    without it, the console polls."""
    render_function: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", alias=EnvVar.RENDER_FUNCTION
    )
    """The render function's name (deployed): pages built by JavaScript are rendered there.
    Local mode renders in-process; without either, no page is rendered."""
    chromium_dir: str | None = Field(default=None, alias=EnvVar.CHROMIUM_DIR)
    """Where @sparticuz/chromium's files are (default: the asset, or node_modules)."""
    cost_basis: Annotated[CostBasis, BeforeValidator(_parse_json)] = Field(alias=EnvVar.COST_BASIS)
    """The stage's region, architecture, memory sizes, retries and retention: what a job's
    AWS cost is estimated from (``aws_cost``)."""

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _names_follow_the_scheme(self) -> RuntimeConfig:
        problems: dict[str, str] = {}
        expected_tables: dict[str, naming.TableResource] = {
            "jobs_table": "jobs",
            "connections_table": "connections",
            "idempotency_table": "idempotency",
            "usage_table": "usage",
        }
        for field, resource in expected_tables.items():
            want = naming.table_name(resource, self.stage)
            if getattr(self, field) != want:
                problems[field] = f"expected {want!r}, got {getattr(self, field)!r}"
        expected_queues: dict[str, naming.QueueResource] = {
            "jobs_queue_url": "queue",
            "jobs_dlq_url": "dlq",
            "webhooks_queue_url": "webhooks",
            "webhooks_dlq_url": "webhooks-dlq",
        }
        for field, queue in expected_queues.items():
            want = naming.queue_name(queue, self.stage)
            try:
                got = _queue_name(getattr(self, field))
            except ValueError as exc:
                problems[field] = str(exc)
                continue
            if got != want:
                problems[field] = f"the URL names queue {got!r}; expected {want!r}"
        try:
            instance = naming.parse_bucket_name(self.artifacts_bucket)
            if not instance.endswith(f"-{self.stage}"):
                problems["artifacts_bucket"] = (
                    f"bucket {self.artifacts_bucket!r} is not the {self.stage} stage's"
                )
        except naming.NamingError as exc:
            problems["artifacts_bucket"] = str(exc)
        try:
            check_cors_origins(self.stage, self.cors_origins)
        except ValueError as exc:
            problems["cors_origins"] = str(exc)
        try:
            check_private_hosts(self.stage, self.allowed_private_hosts)
        except ValueError as exc:
            problems["allowed_private_hosts"] = str(exc)
        if problems:
            raise ConfigError({_env_of(f): m for f, m in problems.items()})
        return self

    @property
    def message_lost_after(self) -> timedelta:
        return message_lost_after(self.jobs_visibility_timeout_s, self.jobs_max_receives)

    @property
    def models_available(self) -> bool:
        """Model strategies need a key (or the secret holding it); without one deterministic
        extraction serves."""
        return self.openai_api_key is not None or self.openai_secret_name is not None

    def openai_key(self) -> str:
        """The key itself: from the environment, else from the secret (read once per process)."""
        if self.openai_api_key is not None:
            return self.openai_api_key.get_secret_value()
        if self.openai_secret_name is None:
            raise ConfigError({EnvVar.OPENAI_API_KEY.value: "no key and no secret configured"})
        return _read_secret(self.openai_secret_name, self.aws_endpoint_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ConfigError:
            raise
        except ValidationError as exc:
            problems: dict[str, str] = {}
            for err in exc.errors():
                loc = err["loc"]
                var = _env_of(str(loc[0])) if loc else "environment"
                cause = err.get("ctx", {}).get("error")
                if isinstance(cause, ConfigError):
                    problems.update(cause.problems)
                    continue
                detail = ".".join(str(p) for p in loc[1:])
                msg = "is not set" if err["type"] == "missing" else err["msg"]
                text = f"{detail}: {msg}" if detail else msg
                problems[var] = f"{problems[var]}; {text}" if var in problems else text
            raise ConfigError(problems) from None


class RenderConfig(BaseModel):
    """The render function's environment: it renders pages and touches nothing else."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    stage: Stage = Field(alias=EnvVar.STAGE)
    allowed_private_hosts: Annotated[tuple[HostPort, ...], BeforeValidator(_split_list)] = Field(
        default=(), alias=EnvVar.ALLOWED_PRIVATE_HOSTS
    )
    chromium_dir: str | None = Field(default=None, alias=EnvVar.CHROMIUM_DIR)

    @model_validator(mode="after")
    def _private_hosts(self) -> RenderConfig:
        check_private_hosts(self.stage, self.allowed_private_hosts)
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RenderConfig:
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            raise ConfigError(
                {
                    _env_of(str(e["loc"][0])) if e["loc"] else "environment": e["msg"]
                    for e in exc.errors()
                }
            ) from None


def _env_of(field_or_alias: str) -> str:
    if not _FIELD_ENV:
        for name, info in RuntimeConfig.model_fields.items():
            if isinstance(info.alias, str):
                _FIELD_ENV[name] = EnvVar(info.alias)
    if field_or_alias in _FIELD_ENV:
        return _FIELD_ENV[field_or_alias].value
    return field_or_alias


@functools.cache
def get_config() -> RuntimeConfig:
    """The validated configuration of this process, read once (cold start)."""
    return RuntimeConfig.from_env()


@functools.cache
def _read_secret(name: str, endpoint_url: str | None) -> str:
    from atlas_codex.ground import aws

    value = aws.secretsmanager(endpoint_url).get_secret_value(SecretId=name)["SecretString"]
    return str(value).strip()

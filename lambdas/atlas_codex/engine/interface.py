"""The contract between the job lifecycle and the extraction engine.

The worker and the sync API path call an :class:`Extractor`; the engine implements it.
Until an engine module is installed, :func:`load_extractor` says so and jobs fail with
``engine_unavailable`` — no result is ever made up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Final, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from atlas_codex.config import RuntimeConfig
from atlas_codex.jobs.schema import Attempt, JobCost, JobRequest, PageOutcome

ENGINE_MODULE: Final = "atlas_codex.engine.engine"


class ExtractionOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: JsonValue
    pages: list[PageOutcome] = Field(default_factory=list)
    strategy: str
    attempts: list[Attempt] = Field(default_factory=list)
    model: str | None = None
    cost: JobCost = Field(default_factory=JobCost)
    routing: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ExtractionError(Exception):
    """An extraction that did not succeed. ``retryable`` errors send the job back to the queue."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        attempts: list[Attempt] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        self.attempts = attempts or []
        super().__init__(f"{code}: {message}")


class DeadlineExceeded(ExtractionError):
    def __init__(
        self, message: str = "the job's deadline passed before extraction finished"
    ) -> None:
        super().__init__("deadline_exceeded", message, retryable=False)


class Extractor(Protocol):
    def extract(
        self,
        request: JobRequest,
        *,
        deadline: float,
        correlation_id: str,
        cancelled: Callable[[], bool],
        owner_id: str | None = None,
    ) -> ExtractionOutcome:
        """Run the request; model spend is also counted against ``owner_id``. ``deadline`` is a
        ``time.monotonic()`` instant to stop by, and
        ``cancelled()`` says whether the client cancelled the job meanwhile."""
        ...


class EngineUnavailable(ExtractionError):
    def __init__(self) -> None:
        super().__init__(
            "engine_unavailable",
            "the extraction engine is not installed in this deployment; no extraction was run",
        )


class _Unavailable:
    def extract(
        self,
        request: JobRequest,
        *,
        deadline: float,
        correlation_id: str,
        cancelled: Callable[[], bool],
        owner_id: str | None = None,
    ) -> ExtractionOutcome:
        raise EngineUnavailable()


def load_extractor(config: RuntimeConfig) -> Extractor:
    """The installed engine, or one that fails every job with ``engine_unavailable``."""
    try:
        module = importlib.import_module(ENGINE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != ENGINE_MODULE:
            raise
        return _Unavailable()
    factory: Callable[[RuntimeConfig], Extractor] = module.build_extractor
    return factory(config)

"""The extraction contract: what the job lifecycle asks of the engine, and what it gets.

The worker, the sync API path and the health check call an :class:`Extractor` with a
request (:mod:`atlas_codex.extraction.request`) and an :class:`ExtractionTask`; the engine
(:func:`atlas_codex.engine.engine.build_extractor`) implements it and answers with an
:class:`~atlas_codex.extraction.result.ExtractionResult`, an :class:`ExtractionError`, or a
:class:`Quote`. This package is the bottom floor: the engine and the model layer import it,
never the job record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import ExtractionResult, Step
from atlas_codex.ground.aws_cost import UsdRange


def _never() -> bool:
    return False


@dataclass(frozen=True)
class ExtractionTask:
    """How one extraction runs, beside what it extracts: by when, whether the client has
    cancelled meanwhile, whose budget pays for its model calls, and where its pages come
    from and go."""

    deadline: float
    """A ``time.monotonic()`` instant to stop by."""
    cancelled: Callable[[], bool] = field(default=_never)
    """Whether the client cancelled the job meanwhile (checked between steps)."""
    owner_id: str | None = None
    """Model spend is also counted against this client's monthly budget."""
    job_id: str | None = None
    """The pages fetched are stored under this job (None: not stored)."""
    pages_of: str | None = None
    """Nothing is fetched: the pages stored by this job are read instead."""

    @classmethod
    def within(cls, seconds: float) -> ExtractionTask:
        """A task that must end ``seconds`` from now (not cancellable, nothing stored)."""
        return cls(deadline=time.monotonic() + seconds)


class QuotedPages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expected: int
    """Pages the job is expected to read: its URLs, or for a crawl what its start pages'
    links say (at most its ``max_pages``, which ``high_usd`` is priced at)."""
    fetched: int
    """Pages fetched for this quote; the rest are extrapolated from them."""
    failed: list[str] = Field(default_factory=list)
    """Pages that could not be read (no model would be called for them)."""


class Quote(BaseModel):
    """What a job is expected to cost, from its pages fetched now; nothing billable ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy_chain: list[str]
    models_available: bool
    tier: str | None = None
    model: str | None = None
    pages: QuotedPages
    input_tokens: int = 0
    """Exact prompt tokens of the calls for the fetched pages, scaled to the expected pages."""
    low_usd: float = 0.0
    """The input alone at the first model's price: the job cannot cost less with a model."""
    expected_usd: float = 0.0
    """The router's estimate: exact input, and output expected from the schema's size."""
    high_usd: float = 0.0
    """Every model of every chain answering at its output cap, escalations included (or the
    job's ``max_cost_usd``, which stops it first)."""
    max_cost_usd: float | None = None
    model_calls: float = 0
    """Model calls the job is expected to make (scaled to the expected pages)."""
    worst_model_calls: float = 0
    """At most: every extraction escalated as far as the quality gate goes, and a crawl's
    link choice on every page."""
    aws_usd: UsdRange | None = None
    """What running the job will cost in AWS (docs/COST.md); None where this stage's
    region has no prices."""
    notes: list[str] = Field(default_factory=list)


class ExtractionError(Exception):
    """An extraction that did not succeed. ``retryable`` errors send the job back to the queue.
    ``done``, when set, is what was done before it stopped: its spend always reaches the
    record, and its data too for the failures that keep a partial result."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        attempts: list[Step] | None = None,
        done: ExtractionResult | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        self.attempts = attempts or []
        self.done = done
        self.retry_after_s = retry_after_s
        """For a retryable error: when trying again is worth it, in seconds (a site's
        ``Retry-After``, a model's cooldown); None leaves it to the queue's own wait."""
        super().__init__(f"{code}: {message}")


class DeadlineExceeded(ExtractionError):
    def __init__(
        self, message: str = "the job's deadline passed before extraction finished"
    ) -> None:
        super().__init__("deadline_exceeded", message, retryable=False)


@dataclass(frozen=True)
class ModelBudget:
    """The stage's monthly model budget and what this month has spent of it."""

    limit_usd: float
    spent_usd: float

    @property
    def spent(self) -> bool:
        return self.spent_usd >= self.limit_usd


class Extractor(Protocol):
    models_available: bool
    """A model can be called (a key is configured)."""

    def model_budget(self) -> ModelBudget | None:
        """This month's model budget and spend (None: no model, or no budget to read)."""
        ...

    def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
        """Run the request within the task's deadline and budget."""
        ...

    def quote(self, request: JobRequest, *, deadline: float) -> Quote:
        """What running ``request`` would cost; fetches pages, calls no model."""
        ...

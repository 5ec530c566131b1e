"""The contract between the job lifecycle and the extraction engine.

The worker and the sync API path call an :class:`Extractor`; the engine
(:func:`atlas_codex.engine.engine.build_extractor`) implements it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from atlas_codex.aws_cost import UsdRange
from atlas_codex.jobs.schema import Attempt, JobCost, JobRequest, PageOutcome, Quality


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
    quality: Quality = "complete"
    quality_reasons: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    """When the stored pages behind this result expire (None: no pages were stored)."""
    frontier: list[str] = Field(default_factory=list)
    """Pages a crawl stopped at its deadline had still to read (within its page budget):
    the job service hands them on as a batch."""


class QuotedPages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expected: int
    """Pages the job is expected to read (a crawl's ``max_pages``, or its URLs)."""
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
    ``outcome``, when set, is what was done before it stopped: its spend always reaches the
    record, and its data too for the failures that keep a partial result."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        attempts: list[Attempt] | None = None,
        outcome: ExtractionOutcome | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        self.attempts = attempts or []
        self.outcome = outcome
        super().__init__(f"{code}: {message}")


class DeadlineExceeded(ExtractionError):
    def __init__(
        self, message: str = "the job's deadline passed before extraction finished"
    ) -> None:
        super().__init__("deadline_exceeded", message, retryable=False)


class Extractor(Protocol):
    models_available: bool
    """A model can be called (a key is configured)."""

    def extract(
        self,
        request: JobRequest,
        *,
        deadline: float,
        correlation_id: str,
        cancelled: Callable[[], bool],
        owner_id: str | None = None,
        job_id: str | None = None,
        stored_pages_of: str | None = None,
    ) -> ExtractionOutcome:
        """Run the request; model spend is also counted against ``owner_id``. ``deadline`` is a
        ``time.monotonic()`` instant to stop by, and
        ``cancelled()`` says whether the client cancelled the job meanwhile. The pages fetched
        are stored under ``job_id``; with ``stored_pages_of`` nothing is fetched and the pages
        stored by that job are read instead."""
        ...

    def quote(self, request: JobRequest, *, deadline: float) -> Quote:
        """What running ``request`` would cost; fetches pages, calls no model."""
        ...

"""What the engine returns: the data, each page's result, each step it tried (a strategy,
and the model where one was called), what it spent, and how good the result is.

These are the engine's own types. They carry no storage limits: ``atlas_codex.jobs.recorded``
turns them into the job record's fields and owns every cut to ``limits``, so a change here
never changes a stored item by itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Quality = Literal["complete", "partial"]
EvidenceKind = Literal["selector", "structured-data", "quote"]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Failure(_Result):
    """Why a step or a page did not succeed: a stable code, what happened, and whether
    trying again later may succeed."""

    code: str
    message: str
    retryable: bool = False


class Evidence(_Result):
    """Where one extracted value came from."""

    kind: EvidenceKind
    url: str | None = None
    """The page the value came from."""
    source: str
    """The CSS selector, the structured-data path, or the model's quoted span of the page."""
    verified: bool = True
    """For a quote: whether it occurs in the page's content (False: the value is flagged)."""


class ReadView(_Result):
    """The text a model read of one page: which view, and its tokens beside the whole
    page's (``atlas_codex.engine.reading.model_view``)."""

    name: Literal["main", "model", "full"]
    tokens: int
    full_page_tokens: int
    widened: bool = False
    """The quality gate read the page again through the full view (the first view missed a
    required field)."""


class Rendering(_Result):
    """How a page was rendered in the browser (``atlas_codex.render``)."""

    reason: str
    ms: int
    waited: Literal["selector", "network-idle", "time-limit"]
    """What ended the wait: the job's selector, an idle network, or the time limit."""
    truncated: bool = False
    """The rendered HTML was longer than the limit and was cut."""


class PageResult(_Result):
    """One page of the job: read (``ok``), not read (``failed``), or not reached
    (``skipped``, after a cost ceiling)."""

    url: str
    status: Literal["ok", "failed", "skipped"]
    http_status: int | None = None
    error: Failure | None = None
    data: JsonValue = None
    strategy: str | None = None
    evidence: dict[str, Evidence] = Field(default_factory=dict)
    """Field path -> the evidence for its value."""
    missing: list[str] = Field(default_factory=list)
    """Field paths the page does not give ("not found"): distinct from a value found to be
    null."""
    unverified: list[str] = Field(default_factory=list)
    """Field paths whose quoted evidence does not occur in the page: flagged, not trusted."""
    quality_problems: list[str] = Field(default_factory=list)
    """Why this page's extraction is not a full success (empty, all-null, invalid, cut)."""
    view: ReadView | None = None
    """What a model read of the page (None: no model read it)."""
    rendered: Rendering | None = None
    """The page was rendered in a browser (None: its HTML is the server's)."""


class Step(_Result):
    """One step of the fallback chain: a strategy tried once, and the model where one was
    called (each billed model call is its own step)."""

    strategy: str
    model: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float | None = None
    cost_usd: float | None = None
    error: Failure | None = None


class Cost(_Result):
    """Model spend: estimated before the calls, billed after them."""

    estimated_usd: float = 0.0
    actual_usd: float = 0.0


class ExtractionResult(_Result):
    data: JsonValue
    pages: list[PageResult] = Field(default_factory=list)
    strategy: str
    attempts: list[Step] = Field(default_factory=list)
    model: str | None = None
    cost: Cost = Field(default_factory=Cost)
    routing: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    quality: Quality = "complete"
    quality_reasons: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    """When the stored pages behind this result expire (None: no pages were stored)."""
    frontier: list[str] = Field(default_factory=list)
    """Pages a crawl stopped at its deadline had still to read (within its page budget):
    the job service hands them on as a batch."""

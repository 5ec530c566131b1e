"""One extraction as it runs (:class:`ExtractionRun`): what every step of the engine reads
and adds to; and the stop a job's cost ceiling makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import JsonValue

from atlas_codex.engine.pages.fetch import FetchSession
from atlas_codex.engine.strategies import Plan
from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import PageResult, Step

if TYPE_CHECKING:
    from atlas_codex.llm.extraction import Spend


class CeilingReached(ExtractionError):
    """The job's ``max_cost_usd`` would be crossed by the next model call: the job stops."""

    def __init__(self, message: str) -> None:
        super().__init__("cost_ceiling_reached", message, retryable=False)


@dataclass
class ExtractionRun:
    """One extraction as it runs: what was asked, within which task, the plan, and what it
    has spent and tried so far. Every step of the engine reads it and adds to it."""

    request: JobRequest
    task: ExtractionTask
    plan: Plan
    spend: Spend
    fetch: FetchSession
    """This job's own fetch state (the cookies its sites set), gone with the run."""
    attempts: list[Step] = field(default_factory=list)
    pages: list[PageResult] = field(default_factory=list)
    """Each page's result, in the order the pages were gathered."""
    data: list[JsonValue] = field(default_factory=list)
    """The data of each page read."""
    served: set[str] = field(default_factory=set)
    """The strategies that served a page."""
    stopped: CeilingReached | None = None
    """The cost ceiling was reached: every later page is skipped."""
    expires_at: datetime | None = None
    """When the pages stored for re-extraction expire (None: none stored)."""
    frontier: list[str] = field(default_factory=list)
    """What a crawl out of time left unread (within its page budget), to hand on."""

    @property
    def deadline(self) -> float:
        return self.task.deadline

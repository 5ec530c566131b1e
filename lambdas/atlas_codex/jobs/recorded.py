"""The engine's results as job record fields: the one place they are cut to the record's
limits (``atlas_codex.ground.limits``).

The engine answers in its own types (:mod:`atlas_codex.extraction.result`), which carry no
storage limits; the record (:mod:`atlas_codex.jobs.record`) holds every limit. A message,
note or quote longer than its limit is cut here, a list of notes is kept to its first
entries, and attempts past the record's room are summed into one last entry, so no spend
goes unrecorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from atlas_codex.extraction.result import (
    Cost,
    Evidence,
    ExtractionResult,
    Failure,
    PageResult,
    ReadView,
    Rendering,
    Step,
)
from atlas_codex.ground import limits
from atlas_codex.jobs.record import (
    Attempt,
    FieldChange,
    FieldEvidence,
    JobCost,
    JobError,
    JobResult,
    PageOutcome,
    PageRender,
    PageView,
)

TWINS: Final[tuple[tuple[type, type], ...]] = (
    (Failure, JobError),
    (Step, Attempt),
    (Evidence, FieldEvidence),
    (ReadView, PageView),
    (Rendering, PageRender),
    (PageResult, PageOutcome),
)
"""Each engine type and the record type it is kept as: the same fields, the record's with
its limits (and its wire name, which the API's clients know). A test holds each pair to the
same fields and types, so one cannot gain a field the other silently drops."""
MAX_MODEL_NAMES_CHARS: Final = 200
"""The model names of attempts summed into one entry, joined, at most this long."""


def clip(text: str, limit: int) -> str:
    return text[:limit]


def note(text: str) -> str:
    return clip(text, limits.MAX_NOTE_CHARS)


def notes(items: Iterable[str]) -> list[str]:
    """Notes as a record keeps them: each once, each cut to its limit, the first ones only."""
    return [note(n) for n in dict.fromkeys(i for i in items if i)][: limits.MAX_NOTES]


def error(failure: Failure) -> JobError:
    message = clip(failure.message, limits.MAX_ERROR_MESSAGE_CHARS) or failure.code
    return JobError(code=failure.code, message=message, retryable=failure.retryable)


def attempt(step: Step) -> Attempt:
    return Attempt(
        strategy=step.strategy,
        model=step.model,
        started_at=step.started_at,
        ended_at=step.ended_at,
        input_tokens=step.input_tokens,
        cached_input_tokens=step.cached_input_tokens,
        output_tokens=step.output_tokens,
        estimated_cost_usd=step.estimated_cost_usd,
        cost_usd=step.cost_usd,
        error=error(step.error) if step.error is not None else None,
    )


def _billed(step: Step) -> bool:
    return bool(step.cost_usd or step.input_tokens or step.output_tokens)


def attempts(steps: Sequence[Step]) -> list[Attempt]:
    """Every step as an attempt; past the record's room, the billed steps left are summed
    into one last entry (unbilled ones past it are dropped)."""
    room = limits.MAX_ATTEMPTS_RECORDED
    if len(steps) <= room:
        return [attempt(s) for s in steps]
    kept, rest = steps[: room - 1], [s for s in steps[room - 1 :] if _billed(s)]
    if not rest:
        return [attempt(s) for s in steps[:room]]
    summed = Step(
        strategy=rest[0].strategy,
        model=clip("+".join(dict.fromkeys(s.model or "?" for s in rest)), MAX_MODEL_NAMES_CHARS),
        started_at=rest[0].started_at,
        ended_at=rest[-1].ended_at,
        input_tokens=sum(s.input_tokens for s in rest),
        cached_input_tokens=sum(s.cached_input_tokens for s in rest),
        output_tokens=sum(s.output_tokens for s in rest),
        estimated_cost_usd=sum(s.estimated_cost_usd or 0.0 for s in rest),
        cost_usd=sum(s.cost_usd or 0.0 for s in rest),
        error=Failure(code="attempts_summed", message=f"{len(rest)} more calls, summed"),
    )
    return [attempt(s) for s in [*kept, summed]]


def evidence(found: Evidence) -> FieldEvidence:
    return FieldEvidence(
        kind=found.kind,
        url=found.url,
        source=clip(found.source, limits.MAX_EVIDENCE_QUOTE_CHARS),
        verified=found.verified,
    )


def view(read: ReadView) -> PageView:
    return PageView(
        name=read.name,
        tokens=read.tokens,
        full_page_tokens=read.full_page_tokens,
        widened=read.widened,
    )


def render(rendering: Rendering) -> PageRender:
    return PageRender(
        reason=note(rendering.reason),
        ms=rendering.ms,
        waited=rendering.waited,
        truncated=rendering.truncated,
    )


def page(result: PageResult) -> PageOutcome:
    return PageOutcome(
        url=result.url,
        status=result.status,
        http_status=result.http_status,
        error=error(result.error) if result.error is not None else None,
        data=result.data,
        strategy=result.strategy,
        evidence={path: evidence(e) for path, e in result.evidence.items()},
        missing=list(result.missing),
        unverified=list(result.unverified),
        quality_problems=list(result.quality_problems),
        view=view(result.view) if result.view is not None else None,
        rendered=render(result.rendered) if result.rendered is not None else None,
    )


def cost(spent: Cost, *, aws_usd: float | None = None) -> JobCost:
    return JobCost(estimated_usd=spent.estimated_usd, actual_usd=spent.actual_usd, aws_usd=aws_usd)


def result(done: ExtractionResult, *, diff: list[FieldChange] | None = None) -> JobResult:
    """The job's result: the data, each page, when the stored pages expire, and a
    re-extraction's diff."""
    return JobResult(
        data=done.data,
        pages=[page(p) for p in done.pages],
        expires_at=done.expires_at,
        diff=diff,
    )

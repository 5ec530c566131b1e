"""One table from the domain's refusals to what a client is answered: HTTP status, error
code, message and the field to blame. The REST API and the WebSocket API both answer from
it, so one refusal reads the same on either."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from atlas_codex.extraction.pages import PagesUnavailable
from atlas_codex.ground.api_routes import IDEMPOTENCY_HEADER
from atlas_codex.jobs.errors import (
    BudgetSpent,
    IdempotencyConflict,
    InvalidCursor,
    InvalidRequest,
    JobNotFound,
    ModelRequired,
    NotReextractable,
    TransitionRefused,
)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    field: str | None = None


REFUSED: Final[tuple[type[Exception], ...]] = (
    BudgetSpent,
    JobNotFound,
    TransitionRefused,
    IdempotencyConflict,
    NotReextractable,
    PagesUnavailable,
    ModelRequired,
    InvalidRequest,
    InvalidCursor,
)
"""The exceptions :func:`refusal` answers (a handler registers for exactly these)."""


def refusal(exc: Exception) -> Refusal:
    """What the client is told of ``exc`` (one of :data:`REFUSED`)."""
    if isinstance(exc, JobNotFound):
        return Refusal(404, exc.code, "no such job", "job_id")
    if isinstance(exc, TransitionRefused):
        return Refusal(409, exc.code, f"the job is already {exc.current.status}")
    if isinstance(exc, IdempotencyConflict):
        return Refusal(409, exc.code, str(exc), IDEMPOTENCY_HEADER)
    if isinstance(exc, NotReextractable):
        return Refusal(409, exc.code, str(exc), "job_id")
    if isinstance(exc, PagesUnavailable):
        if exc.expired_at is not None:
            return Refusal(410, "pages_expired", str(exc), "job_id")
        return Refusal(409, "pages_unavailable", str(exc), "job_id")
    if isinstance(exc, BudgetSpent):
        return Refusal(409, exc.code, str(exc), exc.field)
    if isinstance(exc, ModelRequired | InvalidRequest):
        status = 409 if isinstance(exc, ModelRequired) else 422
        return Refusal(status, exc.code, str(exc), exc.field)
    if isinstance(exc, InvalidCursor):
        return Refusal(400, exc.code, str(exc), "cursor")
    raise TypeError(f"{type(exc).__name__} is not a refusal the API answers")

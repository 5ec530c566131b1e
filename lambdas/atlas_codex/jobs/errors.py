"""Typed errors of the job domain. The API maps each to one HTTP status and error code."""

from __future__ import annotations

from atlas_codex.jobs.record import Job
from atlas_codex.jobs.vocabulary import JobStatus


class JobDomainError(Exception):
    code: str = "job_error"


class JobNotFound(JobDomainError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}")


class TransitionRefused(JobDomainError):
    """A status change the record's current status does not allow; ``current`` is the record."""

    code = "invalid_transition"

    def __init__(self, current: Job, wanted: JobStatus) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(f"job {current.job_id} is {current.status}; it cannot become {wanted}")


class IdempotencyConflict(JobDomainError):
    """The idempotency key was used before with a different request."""

    code = "idempotency_conflict"

    def __init__(self, existing: Job) -> None:
        self.existing = existing
        super().__init__(
            f"this Idempotency-Key was already used for job {existing.job_id} with a different request"
        )


class InvalidCursor(JobDomainError):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this service returned for this listing")


class NotReextractable(JobDomainError):
    """The job cannot be re-extracted (still running, or a batch parent)."""

    code = "not_reextractable"

    def __init__(self, job: Job, why: str) -> None:
        self.job = job
        super().__init__(why)


class ModelRequired(JobDomainError):
    """The job needs a model (an instruction, or an ai-process job) and none is configured:
    refused at once, before any page is fetched."""

    code = "model_unavailable"

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            "this job needs a model (an instruction, or an ai-process job) and no OpenAI API "
            "key is configured: give 'selectors' or a 'json_schema' to extract without one"
        )


class InvalidRequest(JobDomainError):
    """A request that passed its model but breaks a rule of this deployment (for example a
    webhook target its network policy refuses); ``field`` is the part to blame."""

    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class BudgetSpent(JobDomainError):
    """The job only a model can answer, and this month's model budget is spent: refused at
    submission (409), not accepted to end partial with the page's text."""

    code = "budget_exceeded"

    def __init__(self, field: str, limit_usd: float, spent_usd: float) -> None:
        self.field = field
        super().__init__(
            f"this month's model budget (${limit_usd:.2f}) is spent (${spent_usd:.2f}): a job "
            "only a model can answer cannot run until next month; give 'selectors' or a "
            "'json_schema' to extract without one"
        )

"""What the REST API returns: one error shape, and the public views of a job."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from atlas_codex.extraction.request import JobRequest
from atlas_codex.ground.values import Timestamp
from atlas_codex.jobs.record import (
    Attempt,
    ChildCounters,
    Job,
    JobCost,
    JobError,
    JobResult,
    Quality,
    ReextractionOf,
    StatusChange,
    WebhookState,
)
from atlas_codex.jobs.vocabulary import JobStatus, JobType


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    correlation_id: str


class ErrorBody(BaseModel):
    """Every error of the API has this shape."""

    error: ErrorDetail


class JobView(BaseModel):
    """A job as its owner sees it (internal bookkeeping left out)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    type: JobType
    status: JobStatus
    correlation_id: str
    idempotency_key: str | None
    request: JobRequest
    error: JobError | None
    attempts: list[Attempt]
    fallback_chain: list[str]
    model: str | None
    cost: JobCost
    routing: list[str]
    """The model router's tier and why (empty when no model was asked)."""
    warnings: list[str]
    """E.g. content truncated before a model call, with the token counts before and after."""
    created_at: Timestamp
    updated_at: Timestamp
    deadline_at: Timestamp | None
    timeline: list[StatusChange]
    parent_id: str | None
    children: ChildCounters | None
    version: int
    webhook: WebhookState | None
    quality: Quality | None
    """``partial`` when the quality gate found problems (``quality_reasons`` says which)."""
    quality_reasons: list[str]
    reextraction_of: ReextractionOf | None
    """The job whose stored pages this one re-extracted."""
    continued_in: str | None
    """A crawl whose time ran out: the batch job reading the pages it had still to read."""
    continues: str | None
    """That batch job: the crawl it continues."""
    result_available: bool
    status_url: str
    result_url: str | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        available = job.status == "completed" and (
            job.result is not None or job.result_location is not None
        )
        return cls(
            **job.model_dump(
                exclude={
                    "owner_id",
                    "request_hash",
                    "ttl",
                    "result",
                    "result_location",
                    "schema_version",
                    "migrated_from",
                }
            ),
            result_available=available,
            status_url=f"/jobs/{job.job_id}",
            result_url=f"/jobs/{job.job_id}/result" if available else None,
        )


class JobListView(BaseModel):
    owner_id: str
    """The owner of the API key that asked: every job listed is theirs."""
    jobs: list[JobView]
    next_cursor: str | None


def as_asked(result: JobResult | None, include_evidence: bool) -> JobResult | None:
    """The result as the client asked to see it: evidence is always stored, shown on request."""
    if result is None or include_evidence:
        return result
    pages = [p.model_copy(update={"evidence": {}}) for p in result.pages]
    return result.model_copy(update={"pages": pages})


class SyncResultView(BaseModel):
    """``POST /extract``: the job, and its result when it finished in time: inline, or (too
    large for a response) as a presigned ``url`` valid ``expires_in_s`` seconds."""

    job: JobView
    result: JobResult | None
    delivery: Literal["inline", "url"] | None = None
    """Set when the job has a result; ``url`` when it is too large to answer inline."""
    url: str | None = None
    expires_in_s: int | None = None
    evidence_included: bool = False


class ResultView(BaseModel):
    job_id: str
    delivery: Literal["inline", "url"]
    result: JobResult | None = None
    url: str | None = None
    expires_in_s: int | None = None
    evidence_included: bool = False
    """Each page's ``evidence`` is shown (``include_evidence``); the stored result and a
    ``url`` delivery always have it."""


class ReextractionView(BaseModel):
    """``POST /jobs/{job_id}/reextract``: the new job, and when the pages it reads expire."""

    job: JobView
    pages_expire_at: Timestamp


class HealthView(BaseModel):
    """The cheap summary: the latest health run's overall status (``ok`` before any run)."""

    status: Literal["ok", "degraded", "failed"]
    stage: str
    models: Literal["available", "not configured"]
    checked_at: str | None = None
    """When the health monitor last ran; ``GET /health?detail=true`` (with a key) has its checks."""
    data: JsonValue = None


class WebhookSecretsView(BaseModel):
    """Secrets that sign your webhooks (``whsec_...``), newest first; verify with any."""

    secrets: list[str]

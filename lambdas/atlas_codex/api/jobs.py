"""The jobs room: submit, extract now, quote and re-extract (``submission_routes``); read,
list, cancel and the result (``job_routes``)."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Final

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from atlas_codex.api import answers
from atlas_codex.api.answers import responses
from atlas_codex.api.door import idempotency_key
from atlas_codex.extraction.contract import Quote
from atlas_codex.ground import limits
from atlas_codex.jobs.record import CreateJobRequest, Job, ReextractRequest
from atlas_codex.jobs.service import JobService
from atlas_codex.jobs.views import (
    JobListView,
    JobView,
    ReextractionView,
    ResultView,
    SyncResultView,
    as_asked,
)
from atlas_codex.jobs.vocabulary import JobId, JobStatus, JobType

SYNC_SAFETY_MS: Final = 2500
"""Time kept back from the function's remaining time to hand a sync job on and answer."""


def _sync_deadline(router: Router) -> float:
    """The monotonic instant a request answered inline must finish by."""
    context = router.lambda_context
    remaining_ms = context.get_remaining_time_in_millis() if context else limits.SYNC_MAX_S * 1000
    spare = max(remaining_ms - SYNC_SAFETY_MS, 0) / 1000
    return time.monotonic() + min(limits.SYNC_MAX_S, spare)


def _delivered(service: JobService, job: Job, include_evidence: bool) -> ResultView | None:
    """The job's result as a response carries it: inline when it fits the record, else a
    presigned URL (a response must stay far below Lambda's 6 MB)."""
    if job.result is None and job.result_location is None:
        return None
    url = service.result_url(job, expires_in=limits.RESULT_URL_EXPIRES_S)
    if url is not None:
        return ResultView(
            job_id=job.job_id,
            delivery="url",
            url=url,
            expires_in_s=limits.RESULT_URL_EXPIRES_S,
            evidence_included=True,
        )
    return ResultView(
        job_id=job.job_id,
        delivery="inline",
        result=as_asked(job.result, include_evidence),
        evidence_included=include_evidence,
    )


def submission_routes(service: JobService) -> Router:
    """What makes a job: submit, quote, re-extract, and extract now."""
    router = Router()

    cid = partial(answers.correlation_id, router)
    owner = partial(answers.owner, router)

    def key() -> str | None:
        return idempotency_key(router.current_event.headers)

    @router.post(
        "/jobs",
        responses=responses(202, JobView, "The job was accepted", 409),
        summary="Submit a job",
    )
    def create_job(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
        if body.type == "sync":
            message = "sync jobs are run by POST /extract"
            return answers.error_response(
                422, "validation_error", message, "type", correlation_id=cid()
            )
        outcome = service.submit(
            owner_id=owner(), request=body, correlation_id=cid(), idempotency_key=key()
        )
        view = JobView.of(outcome.job)
        return answers.json_response(202 if outcome.created else 200, view, correlation_id=cid())

    @router.post(
        "/jobs/quote",
        responses=responses(200, Quote, "What the job would cost; nothing billable ran"),
        summary="Quote a job",
    )
    def quote_job(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
        quote = service.quote(request=body, deadline=_sync_deadline(router))
        return answers.json_response(200, quote, correlation_id=cid())

    @router.post(
        "/jobs/<job_id>/reextract",
        responses=responses(
            202, ReextractionView, "A new job over the stored pages was accepted", 404, 409, 410
        ),
        summary="Re-extract a job's stored pages",
    )
    def reextract_job(job_id: str, body: Annotated[ReextractRequest, Body()]) -> Response[str]:
        outcome, manifest = service.reextract(
            owner_id=owner(),
            job_id=job_id,
            asked=body,
            correlation_id=cid(),
            idempotency_key=key(),
        )
        view = ReextractionView(job=JobView.of(outcome.job), pages_expire_at=manifest.expires_at)
        return answers.json_response(202 if outcome.created else 200, view, correlation_id=cid())

    @router.post(
        "/extract",
        responses=responses(
            200, SyncResultView, "Finished in time, or (202) continuing asynchronously", 409
        ),
        summary="Extract now",
    )
    def extract(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
        if body.type not in ("sync",) and "type" in body.model_fields_set:
            message = "POST /extract runs sync jobs; use POST /jobs for others"
            return answers.error_response(
                422, "validation_error", message, "type", correlation_id=cid()
            )
        outcome = service.extract_now(
            owner_id=owner(),
            request=body.model_copy(update={"type": "sync"}),
            correlation_id=cid(),
            idempotency_key=key(),
            deadline=_sync_deadline(router),
        )
        job = outcome.job
        include = job.request.include_evidence
        result = _delivered(service, job, include)
        view = SyncResultView(
            job=JobView.of(job),
            result=result.result if result else None,
            delivery=result.delivery if result else None,
            url=result.url if result else None,
            expires_in_s=result.expires_in_s if result else None,
            evidence_included=result.evidence_included if result else include,
        )
        return answers.json_response(200 if outcome.finished else 202, view, correlation_id=cid())

    return router


def job_routes(service: JobService) -> Router:
    """What reads or ends a job: its status, the owner's list, cancel, and the result."""
    router = Router()

    cid = partial(answers.correlation_id, router)
    owner = partial(answers.owner, router)

    @router.get(
        "/jobs/<job_id>",
        responses=responses(200, JobView, "The job", 404),
        summary="A job's status",
    )
    def get_job(job_id: str) -> Response[str]:
        job = service.get(owner_id=owner(), job_id=job_id)
        return answers.json_response(200, JobView.of(job), correlation_id=cid())

    @router.get(
        "/jobs",
        responses=responses(200, JobListView, "Your jobs, newest first"),
        summary="List jobs",
    )
    def list_jobs(
        status: Annotated[JobStatus | None, Query()] = None,
        type: Annotated[JobType | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        parent: Annotated[JobId | None, Query()] = None,
    ) -> Response[str]:
        page = service.list(
            owner_id=owner(),
            status=status,
            job_type=type,
            limit=limit,
            cursor=cursor,
            parent_id=parent,
        )
        view = JobListView(
            owner_id=owner(), jobs=[JobView.of(j) for j in page.jobs], next_cursor=page.next_cursor
        )
        return answers.json_response(200, view, correlation_id=cid())

    @router.delete(
        "/jobs/<job_id>",
        responses=responses(200, JobView, "The job, cancelled", 404, 409),
        summary="Cancel a job",
    )
    def cancel_job(job_id: str) -> Response[str]:
        job = service.cancel(owner_id=owner(), job_id=job_id)
        return answers.json_response(200, JobView.of(job), correlation_id=cid())

    @router.get(
        "/jobs/<job_id>/result",
        responses=responses(200, ResultView, "The result", 404, 409),
        summary="A job's result",
    )
    def get_result(
        job_id: str, include_evidence: Annotated[bool | None, Query()] = None
    ) -> Response[str]:
        job = service.get(owner_id=owner(), job_id=job_id)
        if job.result is None and job.result_location is None:
            ended = job.status in ("failed", "cancelled", "timeout")
            message = f"the job is {job.status} and has no result" + ("" if ended else " yet")
            return answers.error_response(409, "result_not_ready", message, correlation_id=cid())
        include = job.request.include_evidence if include_evidence is None else include_evidence
        view = _delivered(service, job, include)
        assert view is not None  # checked above
        return answers.json_response(200, view, correlation_id=cid())

    return router

"""The bodies of queue messages, validated on both ends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from atlas_codex.jobs.vocabulary import CorrelationId, JobId

CORRELATION_ATTRIBUTE = "correlation_id"
"""The SQS message attribute that carries the correlation id beside the body."""


class JobMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    job_id: JobId
    correlation_id: CorrelationId

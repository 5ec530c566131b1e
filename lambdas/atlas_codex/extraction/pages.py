"""The stored pages of a job, as the job code sees them: what was kept (the manifest, one
entry per page the job tried), why they may be gone, and where to read a manifest. The
engine keeps them in the artifacts bucket (:mod:`atlas_codex.engine.pages.store`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from atlas_codex.ground.values import Timestamp


class StoredPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: Annotated[int, Field(ge=0)]
    url: str
    depth: Annotated[int, Field(ge=0)] = 0
    status: int | None = None
    content_type: str = "text/html"
    encoding: str = "utf-8"
    error_code: str | None = None
    error_message: str | None = None
    error_retryable: bool = False


class PageManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    stored_at: Timestamp
    expires_at: Timestamp
    pages: list[StoredPage]


class PagesUnavailable(Exception):
    """The job's pages were never stored, or have expired."""

    def __init__(self, job_id: str, *, expired_at: datetime | None = None) -> None:
        self.job_id = job_id
        self.expired_at = expired_at
        why = (
            f"expired at {expired_at.isoformat()}"
            if expired_at is not None
            else "were not stored (the job fetched nothing, or they were deleted)"
        )
        super().__init__(f"the pages of {job_id} {why}")


class PageManifests(Protocol):
    """Where a job's manifest is read (the engine's page store answers it)."""

    def manifest(self, job_id: str) -> PageManifest:
        """The job's manifest; :class:`PagesUnavailable` when absent or past its expiry."""
        ...

"""Key layout of the artifacts bucket, shared by the runtime and the bucket's lifecycle rules."""

from __future__ import annotations

from typing import Final

RESULTS_PREFIX: Final = "results/"
"""Results too large for the job item: ``results/{job_id}.json``."""
PAGES_PREFIX: Final = "pages/"
"""Fetched pages kept for re-extraction: ``pages/{job_id}/...``; they expire sooner."""


def result_key(job_id: str) -> str:
    return f"{RESULTS_PREFIX}{job_id}.json"


def page_key(job_id: str, page_index: int, kind: str) -> str:
    return f"{PAGES_PREFIX}{job_id}/{page_index:05d}.{kind}"


def pages_manifest_key(job_id: str) -> str:
    """The list of a job's stored pages (and their expiry)."""
    return f"{PAGES_PREFIX}{job_id}/manifest.json"

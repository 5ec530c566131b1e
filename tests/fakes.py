"""Test doubles. The scripted extractor stands in for the engine in lifecycle tests: it
decides by the URL's path what happens, so every outcome of the contract can be driven."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

from atlas_codex.extraction.contract import (
    DeadlineExceeded,
    ExtractionError,
    ExtractionTask,
    Quote,
    QuotedPages,
)
from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import ExtractionResult, PageResult


def _number(path: str) -> int:
    """The N of ``/name-N`` or ``/name-N/anything``."""
    return int(path.split("/")[1].split("-")[1])


class ScriptedExtractor:
    """``/ok...`` succeeds with the URL as data; ``/permanent`` fails for good; ``/transient``
    fails retryably; ``/flaky-N`` fails retryably N times per URL, then succeeds; ``/slow-S``
    takes S seconds (respecting the deadline and cancellation); ``/crash`` raises."""

    models_available = False

    def model_budget(self) -> None:
        return None

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
        with self._lock:
            self.calls += 1
        url = request.urls[0]
        path = urlsplit(url).path
        if path.startswith("/permanent"):
            raise ExtractionError("fetch_failed", "the page answered 404", retryable=False)
        if path.startswith("/transient"):
            raise ExtractionError("upstream_unavailable", "the page answered 503", retryable=True)
        if path.startswith("/crash"):
            raise RuntimeError("bug in a strategy")
        if path.startswith("/flaky-"):
            wanted = _number(path)
            with self._lock:
                seen = self._failures.get(url, 0)
                self._failures[url] = seen + 1
            if seen < wanted:
                raise ExtractionError(
                    "upstream_unavailable", "the page answered 503", retryable=True
                )
        if path.startswith("/slow-"):
            end = time.monotonic() + _number(path)
            while time.monotonic() < end:
                if time.monotonic() > task.deadline:
                    raise DeadlineExceeded()
                if task.cancelled():
                    raise ExtractionError("cancelled", "the job was cancelled")
                time.sleep(0.02)
        return ExtractionResult(
            data={"url": url},
            pages=[PageResult(url=url, status="ok", http_status=200, strategy="scripted")],
            strategy="scripted",
        )

    def quote(self, request: JobRequest, *, deadline: float) -> Quote:
        return Quote(
            strategy_chain=["scripted"],
            models_available=False,
            pages=QuotedPages(expected=len(request.urls), fetched=0),
        )

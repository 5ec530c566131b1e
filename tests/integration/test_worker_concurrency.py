"""The worker's jobs side by side: real extraction (the engine reading every dev page's main
content from memory, no model) in batches of 1, 2, 4 and 8 messages per invocation, as the queue's event source
hands them; every job completes and the process survives. ``make bench`` runs it at full
size and reports jobs per second by batch size (docs/PERFORMANCE.md), which is what
``limits.JOBS_PER_INVOCATION`` rests on."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex_local.poller import SqsPoller
from tests.support.functions import api_with, worker_with
from tests.support.memory_site import MemorySite
from tests.support.pollers import unfinished
from tests.support.thread_stress import dev_pages

JOBS_EACH = int(os.environ.get("ATLAS_WORKER_JOBS", "8"))
"""Jobs per batch size: 8 in the test suite, more in `make bench`."""
BATCHES = (1, 2, 4, 8)


def shop() -> MemorySite:
    """The dev pages (or a product page of our own where they are absent), one per path."""
    try:
        pages = dev_pages()
    except OSError:
        pages = []
    pages = pages or [
        "<html><head><title>Lamp</title></head><body><h1>Lamp</h1><p>$12.00</p></body></html>"
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(
            200, text=pages[n % len(pages)], headers={"content-type": "text/html"}
        )

    return MemorySite(default=answer)


@pytest.mark.parametrize("batch", BATCHES)
def test_jobs_side_by_side_in_one_invocation_all_complete(
    config: RuntimeConfig, batch: int, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Engine(fetcher=shop().fetcher(), models_available=False)
    api, worker = api_with(config, engine), worker_with(config, engine)
    for n in range(JOBS_EACH):  # main-content jobs: both readers, on every kind of page
        request = CreateJobRequest.model_validate(
            {"urls": [f"http://127.0.0.1/p/{n}"], "type": "async"}
        )
        api.service.submit(
            owner_id="owner-w", request=request, correlation_id=f"w-{n}", idempotency_key=None
        )
    poller = SqsPoller(
        sqs=worker.sqs,
        queue_url=config.jobs_queue_url,
        handler=worker.handler,
        function_name="atlas-codex-worker-local",
        timeout_ms=120_000,
        retry_delay_s=0,
        idle_sleep_s=0.01,
        batch_size=batch,
    )
    started = time.perf_counter()
    deadline = time.monotonic() + 600
    while unfinished(worker) and time.monotonic() < deadline:
        if poller.poll_once() == 0:
            time.sleep(0.01)
    elapsed = time.perf_counter() - started

    assert unfinished(worker) == 0
    statuses = {j.status for j in worker.service.manager.list_for_owner("owner-w", limit=100).jobs}
    assert statuses == {"completed"}
    with capsys.disabled():
        print(
            f"\nworker: batch {batch}: {JOBS_EACH} jobs in {elapsed:.2f} s, "
            f"{JOBS_EACH / elapsed:.2f} jobs/s"
        )

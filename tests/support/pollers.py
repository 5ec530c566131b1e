"""Feeding a worker handler from the jobs queue in tests, as Lambda's event source would, and
waiting for the jobs to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex_local.poller import SqsPoller
from tests.support.functions import WorkerFunction


def pollers(worker: WorkerFunction, config: RuntimeConfig, n: int) -> list[SqsPoller]:
    """``n`` pollers feeding one worker environment: like Lambda, it runs one invocation at a
    time (its batch processor and logger are per environment), while the pollers' receives
    interleave, so duplicate deliveries still meet each other."""
    lock = threading.Lock()

    def one_at_a_time(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            result: dict[str, Any] = worker.handler(event, context)
            return result

    return [
        SqsPoller(
            sqs=worker.sqs,
            queue_url=config.jobs_queue_url,
            handler=one_at_a_time,
            function_name=f"atlas-codex-worker-local-{i}",
            timeout_ms=60_000,
            retry_delay_s=0,
            idle_sleep_s=0.02,
            returned_later=worker.returned_later,
        )
        for i in range(n)
    ]


def poller(worker: WorkerFunction, config: RuntimeConfig, timeout_ms: int = 60_000) -> SqsPoller:
    return SqsPoller(
        sqs=worker.sqs,
        queue_url=config.jobs_queue_url,
        handler=worker.handler,
        function_name="atlas-codex-worker-local",
        timeout_ms=timeout_ms,
        retry_delay_s=0,
        idle_sleep_s=0.05,
        returned_later=worker.returned_later,
    )


def drain(p: SqsPoller, until: Callable[[], bool], seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < end, "the queue did not drain in time"
        if p.poll_once() == 0:
            time.sleep(0.05)


def unfinished(worker: WorkerFunction) -> int:
    """Jobs still pending or processing, counted through the status index."""
    count = 0
    for state in ("pending", "processing"):
        cursor = None
        while True:
            page = worker.service.manager.list_by_status(state, cursor=cursor)
            count += len(page.jobs)
            cursor = page.next_cursor
            if cursor is None:
                break
    return count


def run_pollers(
    workers: list[SqsPoller],
    until: Callable[[], bool],
    seconds: float,
    check_every_s: float,
    worker: WorkerFunction,
) -> None:
    """Run the pollers side by side, each in its own thread, until ``until()`` holds."""
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop,)) for p in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    try:
        while not until():
            assert time.monotonic() < deadline, f"{unfinished(worker)} jobs unfinished"
            time.sleep(check_every_s)
    finally:
        stop.set()
        for t in threads:
            t.join()


def status(worker: WorkerFunction, job_id: str) -> str:
    return str(worker.service.manager.get(job_id).status)

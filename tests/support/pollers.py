"""Feeding a worker handler from the jobs queue in tests, as Lambda's event source would."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from atlas_codex.config import RuntimeConfig
from atlas_codex_local.poller import SqsPoller


def pollers(worker: ModuleType, config: RuntimeConfig, n: int) -> list[SqsPoller]:
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
            sqs=worker.service.queue.sqs,
            queue_url=config.jobs_queue_url,
            handler=one_at_a_time,
            function_name=f"atlas-codex-worker-local-{i}",
            timeout_ms=60_000,
            retry_delay_s=0,
            idle_sleep_s=0.02,
        )
        for i in range(n)
    ]

"""Finished jobs as CloudWatch metrics: how many ended each way, and what their model calls
cost. A notifier: whichever function ends a job (api, worker, the health monitor's sweep)
publishes it, as one Embedded Metric Format line on stdout with exactly the dimensions
``stage`` and ``outcome``, so the dashboard sums it across functions."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from atlas_codex.ground import metrics
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES


class _Coded(Protocol):
    @property
    def code(self) -> str: ...


class _Spent(Protocol):
    @property
    def actual_usd(self) -> float: ...


class FinishedJob(Protocol):
    """What the metric reads of a job record, and nothing else."""

    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def quality(self) -> str | None: ...
    @property
    def error(self) -> _Coded | None: ...
    @property
    def cost(self) -> _Spent: ...


def emf_line(stage: str, job: FinishedJob, now_ms: int) -> str:
    dims = metrics.outcome_dimensions(
        stage, metrics.outcome(job.status, job.quality, job.error.code if job.error else None)
    )
    return json.dumps(
        {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": metrics.NAMESPACE,
                        "Dimensions": [list(dims)],
                        "Metrics": [
                            {"Name": metrics.JOBS_FINISHED, "Unit": "Count"},
                            {"Name": metrics.JOB_MODEL_SPEND_USD, "Unit": "None"},
                        ],
                    }
                ],
            },
            **dims,
            metrics.JOBS_FINISHED: 1,
            metrics.JOB_MODEL_SPEND_USD: job.cost.actual_usd,
        },
        separators=(",", ":"),
    )


def outcome_metrics(stage: str, out: TextIO | None = None) -> Callable[[FinishedJob], None]:
    def publish(job: FinishedJob) -> None:
        if job.status not in TERMINAL_STATUSES or job.type == "batch":
            return  # a batch is counted through its children
        print(emf_line(stage, job, time.time_ns() // 1_000_000), file=out or sys.stdout)

    return publish

"""The application's own CloudWatch metrics: names and dimensions, defined once.

The functions publish them with Powertools Metrics (EMF, namespace
:data:`~atlas_codex.ground.naming.METRICS_NAMESPACE`, service from ``POWERTOOLS_SERVICE_NAME``,
``stage`` as a default dimension); the monitoring stack alarms on exactly these.
"""

from __future__ import annotations

from typing import Final

from atlas_codex.ground import naming
from atlas_codex.ground.naming import FunctionResource

NAMESPACE: Final = naming.METRICS_NAMESPACE
STAGE_DIMENSION: Final = "stage"
SERVICE_DIMENSION: Final = "service"
CHECK_DIMENSION: Final = "check"

HEALTH_CHECKS_FAILED: Final = "HealthChecksFailed"
"""Per health run: how many of the checks failed (published by the health monitor)."""
HEALTH_CHECKS_DEGRADED: Final = "HealthChecksDegraded"
HEALTH_CHECK_LATENCY: Final = "HealthCheckLatency"
"""Per check (dimension ``check``), in milliseconds."""
BUDGET_SPENT_PERCENT: Final = "BudgetSpentPercent"
"""Model spend this month as a percentage of the stage's monthly budget."""


MESSAGES_RECEIVED: Final = "MessagesReceived"
"""Per consumer invocation (worker, webhooks): the queue messages it was given."""
MESSAGES_FAILED: Final = "MessagesFailed"
"""Messages whose handling raised an unexpected error (a bug, an AWS error). A partial batch
failure is a successful invocation, so Lambda's Errors metric never counts these."""
MESSAGES_RETURNED: Final = "MessagesReturned"
"""Messages handed back to the queue on purpose: a transient failure released the job, or
too little time was left to start it. Retries, not errors."""
CONSUMERS: Final[tuple[FunctionResource, ...]] = ("worker", "webhooks")


def publish_batch(
    function: FunctionResource, stage: str, *, received: int, failed: int, returned: int
) -> None:
    """One EMF record of a consumer invocation's message outcomes: all three counts.

    (Powertools' ``single_metric`` keeps one metric name: the failed and returned counts
    added to it were dropped, so the failed-messages alarm had nothing to watch.)"""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    record = EphemeralMetrics(namespace=NAMESPACE)
    for name, value in dimensions(function, stage).items():
        record.add_dimension(name=name, value=value)
    record.add_metric(name=MESSAGES_RECEIVED, unit=MetricUnit.Count, value=received)
    record.add_metric(name=MESSAGES_FAILED, unit=MetricUnit.Count, value=failed)
    record.add_metric(name=MESSAGES_RETURNED, unit=MetricUnit.Count, value=returned)
    record.flush_metrics()


JOBS_FINISHED: Final = "JobsFinished"
"""One per job that ends (dimensions ``stage`` and ``outcome``), whichever function ended it."""
JOB_MODEL_SPEND_USD: Final = "JobModelSpendUsd"
"""A finished job's actual model spend in USD (dimensions ``stage`` and ``outcome``)."""
OUTCOME_DIMENSION: Final = "outcome"
WATCHED_FAILURES: Final = ("empty_extraction", "cost_ceiling_reached", "budget_exceeded")
"""Failures counted on their own: each asks something different of the client or of us."""
OUTCOMES: Final = (
    "complete",
    "partial",
    *WATCHED_FAILURES,
    "failed",
    "timeout",
    "cancelled",
)


def outcome(status: str, quality: str | None, error_code: str | None) -> str:
    """The ``outcome`` of a finished job: its quality when it completed, else how it ended
    (a watched failure by its error code)."""
    if status == "completed":
        return quality or "complete"
    if status == "failed" and error_code in WATCHED_FAILURES:
        return error_code
    return status


def outcome_dimensions(stage: str, job_outcome: str) -> dict[str, str]:
    return {STAGE_DIMENSION: stage, OUTCOME_DIMENSION: job_outcome}


def dimensions(function: FunctionResource, stage: str) -> dict[str, str]:
    """The dimension set a function's metrics carry (what an alarm must match exactly)."""
    return {SERVICE_DIMENSION: naming.service_name(function), STAGE_DIMENSION: stage}

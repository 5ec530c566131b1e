"""The application's own CloudWatch metrics: names and dimensions, defined once.

The functions publish them with Powertools Metrics (EMF, namespace
:data:`~atlas_codex.naming.METRICS_NAMESPACE`, service from ``POWERTOOLS_SERVICE_NAME``,
``stage`` as a default dimension); the monitoring stack alarms on exactly these.
"""

from __future__ import annotations

from typing import Final

from atlas_codex import naming
from atlas_codex.naming import FunctionResource

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


def dimensions(function: FunctionResource, stage: str) -> dict[str, str]:
    """The dimension set a function's metrics carry (what an alarm must match exactly)."""
    return {SERVICE_DIMENSION: naming.service_name(function), STAGE_DIMENSION: stage}

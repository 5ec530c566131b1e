"""The health monitor, every 5 minutes (EventBridge): eight checks, the stuck-job sweep,
the report stored for ``GET /health``, and metrics the alarms watch (EMF)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from atlas_codex.ground import metrics as names
from atlas_codex.ground import naming
from atlas_codex.ground.config import get_config
from atlas_codex.health import HealthReport
from atlas_codex.wiring import build_health_monitor, build_service

config = get_config()
logger = Logger(service=naming.service_name("health"))
metrics = Metrics(namespace=names.NAMESPACE, service=naming.service_name("health"))
metrics.set_default_dimensions(**{names.STAGE_DIMENSION: config.stage})
monitor = build_health_monitor(config)
service = build_service(config)


def publish(report: HealthReport) -> None:
    metrics.add_metric(names.HEALTH_CHECKS_FAILED, MetricUnit.Count, report.failed)
    metrics.add_metric(names.HEALTH_CHECKS_DEGRADED, MetricUnit.Count, report.degraded)
    for check in report.checks:
        if check.name == "budget" and "percent" in check.details:
            metrics.add_metric(
                names.BUDGET_SPENT_PERCENT, MetricUnit.Percent, float(check.details["percent"])
            )
        with single_metric(
            name=names.HEALTH_CHECK_LATENCY,
            unit=MetricUnit.Milliseconds,
            value=check.latency_ms,
            namespace=names.NAMESPACE,
            default_dimensions={
                names.SERVICE_DIMENSION: naming.service_name("health"),
                names.STAGE_DIMENSION: config.stage,
            },
        ) as metric:
            metric.add_dimension(name=names.CHECK_DIMENSION, value=check.name)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("id") or "health-run"))
    report = monitor.run()
    monitor.store(report)
    publish(report)  # before the sweep: a sweep that fails never silences the run's metrics
    swept = service.sweep()
    for check in report.checks:
        level = {"ok": "info", "degraded": "warning", "failed": "error"}[check.status]
        getattr(logger, level)(
            f"health check {check.name}: {check.status}: {check.message}",
            extra={"check": check.name, "status": check.status, "latency_ms": check.latency_ms},
        )
    logger.info(
        "health run finished",
        extra={
            "status": report.status,
            "timed_out_jobs": swept.timed_out,
            "requeued_jobs": swept.requeued,
            "dead_lettered_jobs": swept.dead_lettered,
        },
    )
    return {
        "status": report.status,
        "failed": report.failed,
        "degraded": report.degraded,
        "timed_out_jobs": swept.timed_out,
        "requeued_jobs": swept.requeued,
        "dead_lettered_jobs": swept.dead_lettered,
    }

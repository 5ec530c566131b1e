"""The environment of every function, from the stage settings and the stage's resources.

The one mapping from settings to :class:`~atlas_codex.ground.config.EnvVar`: the stacks call it with
CloudFormation tokens, local mode and the tests with the real names of emulated resources.
"""

from __future__ import annotations

from collections.abc import Mapping

from atlas_codex.ground.aws_cost import CostBasis
from atlas_codex.ground.config import EnvVar
from atlas_codex.ground.naming import QueueResource, TableResource
from atlas_codex_stage.settings import LAMBDA_ARCHITECTURE, TRACING, StageSettings


def function_environment(
    settings: StageSettings,
    *,
    tables: Mapping[TableResource, str],
    queue_urls: Mapping[QueueResource, str],
    bucket: str,
) -> dict[str, str]:
    return {
        EnvVar.STAGE.value: settings.stage,
        EnvVar.JOBS_TABLE.value: tables["jobs"],
        EnvVar.CONNECTIONS_TABLE.value: tables["connections"],
        EnvVar.IDEMPOTENCY_TABLE.value: tables["idempotency"],
        EnvVar.USAGE_TABLE.value: tables["usage"],
        EnvVar.JOBS_QUEUE_URL.value: queue_urls["queue"],
        EnvVar.JOBS_DLQ_URL.value: queue_urls["dlq"],
        EnvVar.WEBHOOKS_QUEUE_URL.value: queue_urls["webhooks"],
        EnvVar.WEBHOOKS_DLQ_URL.value: queue_urls["webhooks-dlq"],
        EnvVar.ARTIFACTS_BUCKET.value: bucket,
        EnvVar.MODEL_POLICY.value: settings.models.model_dump_json(),
        EnvVar.MONTHLY_BUDGET_USD.value: repr(settings.budget.monthly_usd),
        EnvVar.JOB_TTL_DAYS.value: str(settings.data.job_ttl_days),
        EnvVar.PAGES_EXPIRY_DAYS.value: str(settings.data.artifact_expiry_days),
        EnvVar.JOBS_MAX_RECEIVES.value: str(settings.jobs_queue.max_receive_count),
        EnvVar.JOBS_VISIBILITY_TIMEOUT_S.value: str(settings.jobs_queue.visibility_timeout_s),
        EnvVar.CORS_ORIGINS.value: ",".join(settings.api.cors_origins),
        EnvVar.ALLOWED_PRIVATE_HOSTS.value: ",".join(settings.allowed_private_hosts),
        EnvVar.COST_BASIS.value: cost_basis(settings).model_dump_json(),
    }


def cost_basis(settings: StageSettings) -> CostBasis:
    """The stage's facts a job's AWS cost is estimated from."""
    return CostBasis(
        region=settings.region,
        architecture=LAMBDA_ARCHITECTURE,
        memory_mb={
            "api": settings.functions.api.memory_mb,
            "worker": settings.functions.worker.memory_mb,
        },
        worker_timeout_s=settings.functions.worker.timeout_s,
        max_receives=settings.jobs_queue.max_receive_count,
        job_ttl_days=settings.data.job_ttl_days,
        pages_expiry_days=settings.data.artifact_expiry_days,
        log_retention_days=settings.log_retention_days,
        waf=settings.api.waf_enabled,
        tracing=TRACING,
        point_in_time_recovery=settings.data.point_in_time_recovery,
        snapstart=settings.api.snapstart,
        render_memory_mb=settings.functions.render.memory_mb,
        render_timeout_s=settings.functions.render.timeout_s,
    )

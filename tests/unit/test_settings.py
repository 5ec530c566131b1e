from __future__ import annotations

import copy
from typing import Any

import pytest

from atlas_codex_stage.settings import (
    DEFAULTS_KEY,
    STAGES_KEY,
    SettingsError,
    StageSettings,
    load_stage_settings,
)


def load(ctx: dict[str, Any], stage: str, **override: Any) -> StageSettings:
    stages = copy.deepcopy(ctx[STAGES_KEY])
    stages.setdefault(stage, {}).update(override)
    return load_stage_settings(stage, ctx[DEFAULTS_KEY], stages)


@pytest.mark.parametrize("stage", ["local", "dev", "staging", "prod"])
def test_every_stage_in_cdk_json_is_valid(cdk_context: dict[str, Any], stage: str) -> None:
    settings = load(cdk_context, stage)
    assert settings.stage == stage
    assert settings.alarms.error_rate_pct == 5.0
    assert settings.alarms.api_p99_latency_ms == 2000
    assert settings.budget.notify_at_pct == (80.0, 95.0)


def test_prod_retains_and_protects_its_data(cdk_context: dict[str, Any]) -> None:
    prod = load(cdk_context, "prod")
    assert prod.retain
    assert prod.data.point_in_time_recovery
    assert prod.data.deletion_protection
    assert prod.allowed_private_hosts == ()
    assert "*" not in prod.api.cors_origins


def test_stage_overrides_merge_into_the_defaults(cdk_context: dict[str, Any]) -> None:
    prod = load(cdk_context, "prod")
    assert prod.functions.worker.memory_mb == 2048  # overridden
    assert prod.functions.health.memory_mb == 512  # from the defaults
    assert prod.functions.worker.timeout_s == 300


@pytest.mark.parametrize(
    ("stage", "override", "message"),
    [
        (
            "prod",
            {"data": {"removal_policy": "destroy"}},
            r"stages\.prod\.data\.removal_policy: prod must retain",
        ),
        (
            "prod",
            {"data": {"point_in_time_recovery": False}},
            r"stages\.prod\.data\.point_in_time_recovery: prod must keep",
        ),
        (
            "prod",
            {"allowed_private_hosts": ["10.0.0.5:80"]},
            r"stages\.prod\.allowed_private_hosts: the prod stage",
        ),
        (
            "staging",
            {"allowed_private_hosts": ["10.0.0.5:80"]},
            r"stages\.staging\.allowed_private_hosts",
        ),
        (
            "prod",
            {"api": {"cors_origins": ["*"]}},
            r"stages\.prod\.api\.cors_origins: the prod stage may not allow",
        ),
        (
            "dev",
            {"log_retention_days": 42},
            r"stages\.dev\.log_retention_days: 42 is not a CloudWatch retention",
        ),
        (
            "dev",
            {"log_retention_days": "30"},
            r"stages\.dev\.log_retention_days: Input should be a valid integer",
        ),
        (
            "dev",
            {"functions": {"api": {"timeout_s": 30}}},
            r"stages\.dev\.functions\.api: timeout_s 30 exceeds",
        ),
        (
            "dev",
            {"jobs_queue": {"visibility_timeout_s": 600}},
            r"stages\.dev\.jobs_queue\.visibility_timeout_s: 600 s is less than 6 x functions\.worker\.timeout_s",
        ),
        (
            "dev",
            {"budget": {"notify_at_pct": [95.0, 80.0]}},
            r"stages\.dev\.budget\.notify_at_pct: .*increasing",
        ),
        ("dev", {"account": "12345"}, r"stages\.dev\.account: String should match"),
        ("dev", {"colour": "blue"}, r"stages\.dev\.colour: Extra inputs are not permitted"),
        ("dev", {"models": {"allowed_tiers": ["huge"]}}, r"stages\.dev\.models\.allowed_tiers\.0"),
        (
            "local",
            {"allowed_private_hosts": ["169.254.169.254:80"]},
            r"metadata addresses can never be allowed",
        ),
        ("prod", {"alarms": {"emails": []}}, r"stages\.prod\.alarms: staging and prod need"),
        ("staging", {"alarms": {}}, r"stages\.staging\.alarms: staging and prod need"),
        (
            "prod",
            {"account_concurrency_limit": 200},
            r"stages\.prod\.functions: \d+ reserved concurrent executions need an account "
            r"limit of at least \d+",
        ),
        (
            "dev",
            {
                "functions": {
                    "worker": {"memory_mb": 1024, "timeout_s": 300, "reserved_concurrency": 1}
                }
            },
            r"stages\.dev\.functions\.worker\.reserved_concurrency: 1 is below 2",
        ),
        (
            "dev",
            {"budget": {"notify_at_pct": [10.0, 20.0, 40.0, 60.0, 80.0, 95.0]}},
            r"stages\.dev\.budget\.notify_at_pct: 6 thresholds make 12 notifications",
        ),
        (
            "dev",
            {"alarms": {"https_endpoints": ["http://pager.example/hook"]}},
            r"stages\.dev\.alarms\.https_endpoints\.0",
        ),
    ],
)
def test_a_bad_setting_fails_with_a_message_naming_the_field(
    cdk_context: dict[str, Any], stage: str, override: dict[str, Any], message: str
) -> None:
    stages = copy.deepcopy(cdk_context[STAGES_KEY])
    stages[stage] = {**stages.get(stage, {}), **override}
    with pytest.raises(SettingsError, match=message):
        load_stage_settings(stage, cdk_context[DEFAULTS_KEY], stages)


def test_an_unknown_stage_is_refused(cdk_context: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="stage: invalid stage 'qa'"):
        load_stage_settings("qa", cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])


def test_missing_defaults_are_reported(cdk_context: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="atlas-codex:defaults"):
        load_stage_settings("dev", None, cdk_context[STAGES_KEY])


def test_alarm_destinations_are_accepted_in_every_form(cdk_context: dict[str, Any]) -> None:
    for alarms in (
        {"emails": ["a@b.example"]},
        {"https_endpoints": ["https://events.pager.example/integration/abc"]},
        {"slack": {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCDE"}},
    ):
        assert load(cdk_context, "prod", alarms=alarms).alarms.has_destination


def test_the_backlog_threshold_is_past_every_normal_retry(cdk_context: dict[str, Any]) -> None:
    settings = load(cdk_context, "dev")
    queue = settings.jobs_queue
    retried_for = queue.visibility_timeout_s * (queue.max_receive_count - 1)
    assert settings.jobs_backlog_after_s > retried_for
    assert settings.jobs_backlog_after_s == retried_for + settings.functions.worker.timeout_s

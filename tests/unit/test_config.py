from __future__ import annotations

import pytest

from atlas_codex.ground.config import ConfigError, EnvVar, RuntimeConfig

ACCOUNT_URL = "https://sqs.eu-west-1.amazonaws.com/111111111111"


def good_env(stage: str = "dev") -> dict[str, str]:
    return {
        EnvVar.STAGE: stage,
        EnvVar.JOBS_TABLE: f"atlas-codex-jobs-{stage}",
        EnvVar.CONNECTIONS_TABLE: f"atlas-codex-connections-{stage}",
        EnvVar.IDEMPOTENCY_TABLE: f"atlas-codex-idempotency-{stage}",
        EnvVar.USAGE_TABLE: f"atlas-codex-usage-{stage}",
        EnvVar.JOBS_QUEUE_URL: f"{ACCOUNT_URL}/atlas-codex-queue-{stage}",
        EnvVar.JOBS_DLQ_URL: f"{ACCOUNT_URL}/atlas-codex-dlq-{stage}",
        EnvVar.WEBHOOKS_QUEUE_URL: f"{ACCOUNT_URL}/atlas-codex-webhooks-{stage}",
        EnvVar.WEBHOOKS_DLQ_URL: f"{ACCOUNT_URL}/atlas-codex-webhooks-dlq-{stage}",
        EnvVar.ARTIFACTS_BUCKET: f"atlas-codex-artifacts-111111111111-eu-west-1-{stage}",
        EnvVar.MONTHLY_BUDGET_USD: "100",
        EnvVar.JOB_TTL_DAYS: "30",
        EnvVar.PAGES_EXPIRY_DAYS: "7",
        EnvVar.JOBS_MAX_RECEIVES: "3",
        EnvVar.JOBS_VISIBILITY_TIMEOUT_S: "1800",
        EnvVar.COST_BASIS: (
            '{"region": "eu-west-1", "architecture": "arm64", "memory_mb": {"api": 512, '
            '"worker": 1024}, "worker_timeout_s": 300, "max_receives": 3, "job_ttl_days": 30, '
            '"pages_expiry_days": 7, "log_retention_days": 30}'
        ),
    }


def test_a_complete_environment_is_read() -> None:
    config = RuntimeConfig.from_env(good_env())
    assert config.stage == "dev"
    assert config.jobs_table == "atlas-codex-jobs-dev"
    assert config.monthly_budget_usd == 100.0
    assert config.model_policy.tier_models["nano"] == "gpt-5-nano"


def test_without_an_openai_key_the_models_are_unavailable() -> None:
    assert not RuntimeConfig.from_env(good_env()).models_available
    assert not RuntimeConfig.from_env({**good_env(), EnvVar.OPENAI_API_KEY: "  "}).models_available
    keyed = RuntimeConfig.from_env({**good_env(), EnvVar.OPENAI_API_KEY: "sk-test"})
    assert keyed.models_available
    assert "sk-test" not in repr(keyed)


def test_local_mode_lists_its_private_hosts() -> None:
    config = RuntimeConfig.from_env(
        {**good_env("local"), EnvVar.ALLOWED_PRIVATE_HOSTS: "127.0.0.1:8765, LOCALHOST:9000"}
    )
    assert config.allowed_private_hosts == ("127.0.0.1:8765", "localhost:9000")


def test_every_missing_variable_is_named() -> None:
    env = good_env()
    del env[EnvVar.USAGE_TABLE]
    del env[EnvVar.JOBS_QUEUE_URL]
    with pytest.raises(ConfigError) as caught:
        RuntimeConfig.from_env(env)
    assert caught.value.problems == {
        "ATLAS_USAGE_TABLE": "is not set",
        "ATLAS_JOBS_QUEUE_URL": "is not set",
    }
    assert "ATLAS_USAGE_TABLE: is not set" in str(caught.value)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (EnvVar.STAGE, "qa", "Input should be 'local', 'dev', 'staging' or 'prod'"),
        (EnvVar.JOBS_TABLE, "jobs", "expected 'atlas-codex-jobs-dev', got 'jobs'"),
        (EnvVar.JOBS_TABLE, "atlas-codex-jobs-prod", "expected 'atlas-codex-jobs-dev'"),
        (
            EnvVar.JOBS_QUEUE_URL,
            f"{ACCOUNT_URL}/atlas-codex-dlq-dev",
            "names queue 'atlas-codex-dlq-dev'",
        ),
        (EnvVar.JOBS_DLQ_URL, "not a url", "is not a queue URL"),
        (EnvVar.ARTIFACTS_BUCKET, "my-bucket", "does not start with 'atlas-codex-artifacts-'"),
        (
            EnvVar.ARTIFACTS_BUCKET,
            "atlas-codex-artifacts-111111111111-eu-west-1-prod",
            "not the dev stage's",
        ),
        (EnvVar.MONTHLY_BUDGET_USD, "lots", "valid number"),
        (EnvVar.MONTHLY_BUDGET_USD, "0", "greater than 0"),
        (EnvVar.MODEL_POLICY, "{", "not valid JSON"),
        (
            EnvVar.MODEL_POLICY,
            '{"allowed_tiers": ["huge"]}',
            "allowed_tiers.0: Input should be 'nano'",
        ),
        (
            EnvVar.ALLOWED_PRIVATE_HOSTS,
            "169.254.169.254:80",
            "metadata addresses can never be allowed",
        ),
    ],
)
def test_a_malformed_variable_is_named_with_its_problem(
    var: EnvVar, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RuntimeConfig.from_env({**good_env(), var: value})
    assert var.value in caught.value.problems
    assert message in caught.value.problems[var.value]


def test_prod_functions_refuse_private_hosts() -> None:
    with pytest.raises(ConfigError) as caught:
        RuntimeConfig.from_env({**good_env("prod"), EnvVar.ALLOWED_PRIVATE_HOSTS: "10.0.0.1:80"})
    assert (
        "prod stage may not fetch private addresses"
        in caught.value.problems["ATLAS_ALLOWED_PRIVATE_HOSTS"]
    )


def test_prod_functions_refuse_wildcard_cors() -> None:
    with pytest.raises(ConfigError) as caught:
        RuntimeConfig.from_env({**good_env("prod"), EnvVar.CORS_ORIGINS: "https://a.example,*"})
    assert "may not allow every origin" in caught.value.problems["ATLAS_CORS_ORIGINS"]


def test_the_stacks_environment_is_one_the_runtime_accepts(cdk_context: dict[str, object]) -> None:
    from atlas_codex.ground import naming
    from atlas_codex_stage.environment import function_environment
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    for stage in naming.STAGES:
        settings = load_stage_settings(stage, cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])  # type: ignore[arg-type]
        env = function_environment(
            settings,
            tables={t: naming.table_name(t, stage) for t in naming.TABLES},
            queue_urls={q: f"{ACCOUNT_URL}/{naming.queue_name(q, stage)}" for q in naming.QUEUES},
            bucket=naming.bucket_name(settings.instance_id),
        )
        config = RuntimeConfig.from_env(env)
        assert config.model_policy == settings.models
        assert config.allowed_private_hosts == settings.allowed_private_hosts
        assert config.monthly_budget_usd == settings.budget.monthly_usd


def test_a_local_runs_budget_wins_over_cdk_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from atlas_codex_local.local import LocalModeError, _settings, _with_budget

    settings = _settings([])
    monkeypatch.delenv("ATLAS_MONTHLY_BUDGET_USD", raising=False)
    assert _with_budget(settings, None).budget == settings.budget
    assert _with_budget(settings, 7.5).budget.monthly_usd == 7.5
    monkeypatch.setenv("ATLAS_MONTHLY_BUDGET_USD", "3")
    assert _with_budget(settings, None).budget.monthly_usd == 3.0
    assert _with_budget(settings, 9.0).budget.monthly_usd == 9.0  # the flag wins
    monkeypatch.setenv("ATLAS_MONTHLY_BUDGET_USD", "lots")
    with pytest.raises(LocalModeError, match="not a number"):
        _with_budget(settings, None)
    with pytest.raises(LocalModeError, match="monthly budget"):
        _with_budget(settings, -1.0)

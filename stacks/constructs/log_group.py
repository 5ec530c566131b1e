"""A log group with the stage's retention, kept or removed with the stage's stateful resources."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from atlas_codex_stage.settings import StageSettings


def stage_log_group(
    scope: Construct, cid: str, *, name: str, settings: StageSettings
) -> logs.LogGroup:
    group = logs.LogGroup(
        scope,
        cid,
        log_group_name=name,
        # Kept on delete and update, but not after a failed first create: a retained, named
        # log group left by a rolled-back create would make the retry fail "already exists".
        removal_policy=(
            RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.retain else RemovalPolicy.DESTROY
        ),
    )
    cfn = group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    # Any day count the settings model accepts (it checks CloudWatch's list), not only the
    # members of logs.RetentionDays.
    cfn.retention_in_days = settings.log_retention_days
    return group

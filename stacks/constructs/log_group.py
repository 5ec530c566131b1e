"""A log group with the stage's retention, encrypted with the stack's logs key, kept or removed
with the stage's stateful resources."""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from atlas_codex_stage.settings import StageSettings

LOGS_KEY_ID: Final = "LogsKey"


def stage_log_group_patterns(stage: str) -> tuple[str, ...]:
    """The name of every log group a stage makes: its functions' and its two APIs' access
    logs (``naming`` spells each of them)."""
    from atlas_codex.ground import naming

    return (
        *(naming.log_group_name(function, stage) for function in naming.FUNCTIONS),
        naming.access_log_group_name(stage, "rest"),
        naming.access_log_group_name(stage, "websocket"),
    )


def logs_key(scope: Construct, settings: StageSettings) -> kms.Key:
    """The stack's one key for its log groups (made with the first): CloudWatch Logs of this
    account and region may use it for this account's log groups, and nothing else may."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(LOGS_KEY_ID)
    if isinstance(existing, kms.Key):
        return existing
    key = kms.Key(
        stack,
        LOGS_KEY_ID,
        description=f"Atlas Codex {settings.stage}: encrypts the stage's log groups",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN if settings.retain else RemovalPolicy.DESTROY,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogs",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                # This stage's log groups only, by name: not every log group of the account.
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=pattern,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for pattern in stage_log_group_patterns(settings.stage)
                    ]
                }
            },
        )
    )
    return key


def stage_log_group(
    scope: Construct, cid: str, *, name: str, settings: StageSettings
) -> logs.LogGroup:
    group = logs.LogGroup(
        scope,
        cid,
        log_group_name=name,
        encryption_key=logs_key(scope, settings),
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

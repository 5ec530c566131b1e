"""A DynamoDB table built from its :class:`~atlas_codex.ground.table_specs.TableSpec`."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import TableSpec
from atlas_codex_stage.settings import StageSettings


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class SpecTable(Construct):
    """On-demand, encrypted, with point-in-time recovery and deletion protection per stage.

    Uses ``dynamodb.Table`` (``AWS::DynamoDB::Table``), not ``TableV2``: the emulator that
    local mode deploys into does not create ``AWS::DynamoDB::GlobalTable``.
    """

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        spec: TableSpec,
        settings: StageSettings,
        logical_id: str,
    ) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        insights = (
            dynamodb.ContributorInsightsSpecification(
                enabled=True, mode=dynamodb.ContributorInsightsMode.THROTTLED_KEYS
            )
            if settings.data.throttled_keys_insights
            else None
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=naming.table_name(spec.resource, settings.stage),
            partition_key=_string(spec.partition_key),
            sort_key=_string(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=settings.data.point_in_time_recovery
            ),
            deletion_protection=settings.data.deletion_protection,
            time_to_live_attribute=spec.ttl_attribute,
            # Kept on delete and replace, but not after a failed first create: a retained
            # resource with a fixed name left by a rolled-back create would make the retry
            # fail "already exists" (as the log groups do).
            removal_policy=(
                RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
                if settings.retain
                else RemovalPolicy.DESTROY
            ),
            contributor_insights_specification=insights,
        )
        for index in spec.indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType[index.projection],
                non_key_attributes=list(index.include) or None,
                contributor_insights_specification=insights,
            )
        # Stateful: the logical id is fixed forever, whatever the construct tree becomes.
        cfn = self.table.node.default_child
        assert isinstance(cfn, dynamodb.CfnTable)
        cfn.override_logical_id(logical_id)

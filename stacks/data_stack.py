"""The stateful layer: the four tables and the artifacts bucket. Sacred: see the design guide."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import CONNECTIONS, IDEMPOTENCY, JOBS, USAGE
from atlas_codex_stage.settings import StageSettings
from stacks.constructs.artifacts_bucket import ArtifactsBucket
from stacks.constructs.table import SpecTable


class DataStack(Stack):
    def __init__(self, scope: Construct, settings: StageSettings, **kwargs: Any) -> None:
        super().__init__(scope, naming.stack_name("data", settings.stage), **kwargs)
        self.jobs = SpecTable(
            self, "Jobs", spec=JOBS, settings=settings, logical_id="JobsTable"
        ).table
        self.connections = SpecTable(
            self, "Connections", spec=CONNECTIONS, settings=settings, logical_id="ConnectionsTable"
        ).table
        self.idempotency = SpecTable(
            self, "Idempotency", spec=IDEMPOTENCY, settings=settings, logical_id="IdempotencyTable"
        ).table
        self.usage = SpecTable(
            self, "Usage", spec=USAGE, settings=settings, logical_id="UsageTable"
        ).table
        self.artifacts = ArtifactsBucket(self, "Artifacts", settings=settings).bucket

        for cid, table in (
            ("JobsTableName", self.jobs),
            ("ConnectionsTableName", self.connections),
            ("IdempotencyTableName", self.idempotency),
            ("UsageTableName", self.usage),
        ):
            CfnOutput(self, cid, value=table.table_name)
        CfnOutput(self, "ArtifactsBucketName", value=self.artifacts.bucket_name)
        Tags.of(self).add("atlas-codex:layer", "data")

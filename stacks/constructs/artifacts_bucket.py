"""The artifacts bucket: large results and stored pages, private and encrypted."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from atlas_codex.ground import naming

# Key prefixes: one place, the runtime writes under the same ones.
from atlas_codex.ground.artifacts import PAGES_PREFIX, RESULTS_PREFIX
from atlas_codex_stage.settings import StageSettings
from stacks import nag


class ArtifactsBucket(Construct):
    def __init__(self, scope: Construct, cid: str, *, settings: StageSettings) -> None:
        super().__init__(scope, cid)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=naming.bucket_name(settings.instance_id),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=settings.retain,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-stored-pages",
                    prefix=PAGES_PREFIX,
                    expiration=Duration.days(settings.data.artifact_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-results",
                    prefix=RESULTS_PREFIX,
                    expiration=Duration.days(settings.data.job_ttl_days),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(7),
                ),
                # Versioned, an expired object leaves a delete marker behind once its last
                # old version is gone: removed too, or they pile up and slow every listing.
                *(
                    [
                        s3.LifecycleRule(
                            id="remove-expired-delete-markers", expired_object_delete_marker=True
                        )
                    ]
                    if settings.retain
                    else []
                ),
            ],
            # Kept on delete and replace, but not after a failed first create: a retained
            # resource with a fixed name left by a rolled-back create would make the retry
            # fail "already exists" (as the log groups do).
            removal_policy=(
                RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
                if settings.retain
                else RemovalPolicy.DESTROY
            ),
        )
        nag.acknowledge(
            self.bucket,
            "AwsSolutions",
            "S1",
            "Only the stage's own functions read and write it, through their roles; API "
            "access is audited by CloudTrail, and every object expires within days.",
        )
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.override_logical_id("ArtifactsBucket")

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlas_codex.ground import naming
from atlas_codex.ground.naming import Kind, NamingError


def test_every_table_and_queue_follows_the_scheme() -> None:
    assert naming.table_name("jobs", "dev") == "atlas-codex-jobs-dev"
    assert naming.table_name("idempotency", "prod") == "atlas-codex-idempotency-prod"
    assert naming.queue_name("dlq", "staging") == "atlas-codex-dlq-staging"
    assert naming.queue_name("webhooks-dlq", "local") == "atlas-codex-webhooks-dlq-local"
    assert naming.function_name("worker", "prod") == "atlas-codex-worker-prod"
    assert naming.log_group_name("api", "dev") == "/aws/lambda/atlas-codex-api-dev"


def test_bucket_is_named_by_instance_id() -> None:
    instance = naming.instance_id("111111111111", "eu-west-1", "dev")
    assert naming.bucket_name(instance) == "atlas-codex-artifacts-111111111111-eu-west-1-dev"
    assert naming.parse_bucket_name(naming.bucket_name(instance)) == instance


@pytest.mark.parametrize("stage", ["qa", "Prod", "", "dev ", "prod-1"])
def test_an_unknown_stage_is_refused_with_the_allowed_ones(stage: str) -> None:
    with pytest.raises(
        NamingError, match=r"invalid stage .* expected one of local, dev, staging, prod"
    ):
        naming.table_name("jobs", stage)


@pytest.mark.parametrize(
    "resource", ["Jobs", "jobs_table", "-jobs", "jobs-", "jo--bs", "", "jöbs", "a b"]
)
def test_a_malformed_resource_name_is_refused(resource: str) -> None:
    with pytest.raises(NamingError, match="invalid resource name"):
        naming.alarm_name(resource, "dev")


def test_a_table_or_queue_not_in_the_catalogue_is_refused() -> None:
    with pytest.raises(NamingError, match="unknown table 'orders'"):
        naming.table_name("orders", "dev")  # type: ignore[arg-type]
    with pytest.raises(NamingError, match="unknown queue"):
        naming.queue_name("jobs", "dev")  # type: ignore[arg-type]


def test_aws_length_limits_are_enforced() -> None:
    # Lambda function names stop at 64 characters.
    ok = "f" * (64 - len("atlas-codex--prod"))
    assert len(naming.resource_name(Kind.FUNCTION, ok, "prod")) == 64
    with pytest.raises(NamingError, match="AWS allows at most 64"):
        naming.resource_name(Kind.FUNCTION, ok + "x", "prod")
    # S3 bucket names stop at 63.
    with pytest.raises(NamingError, match="S3 allows at most 63"):
        naming.bucket_name("1" * 12 + "-ap-southeast-3-" + "x" * 30)


@given(
    resource=st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True),
    stage=st.sampled_from(naming.STAGES),
)
def test_every_name_parses_back_into_its_parts(resource: str, stage: str) -> None:
    name = naming.alarm_name(resource, stage)
    assert naming.parse_name(name) == (resource, stage)


@pytest.mark.parametrize(
    "name", ["atlas-codex-jobs", "codex-jobs-dev", "atlas-codex-jobs-qa", "atlas-codex--dev"]
)
def test_names_outside_the_scheme_do_not_parse(name: str) -> None:
    with pytest.raises(NamingError):
        naming.parse_name(name)

"""checkov, the third scanner (after cdk-nag and cfn-lint): every check it would fail that we
accept is written on the resource itself, with the reason, as checkov's ``Metadata`` skip.

The table below is the one place for those reasons. An Aspect writes them into the synthesized
resources, and ``tests/infra/test_checkov.py`` runs checkov (its own virtualenv, pinned in the
Makefile) over every stage's templates: any finding not accepted here fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct


@dataclass(frozen=True)
class Accepted:
    check: str
    reason: str
    applies: Callable[[CfnResource], bool] = lambda resource: True
    """Whether it concerns this resource."""


def _no_reserved_concurrency(resource: CfnResource) -> bool:
    return getattr(resource, "reserved_concurrent_executions", None) is None


def _preflight(resource: CfnResource) -> bool:
    return getattr(resource, "http_method", None) == "OPTIONS"


def _public_route(resource: CfnResource) -> bool:
    return not getattr(resource, "api_key_required", False) and not _preflight(resource)


def _unversioned(resource: CfnResource) -> bool:
    return getattr(resource, "versioning_configuration", None) is None


ACCEPTED: Final[dict[str, tuple[Accepted, ...]]] = {
    "AWS::Lambda::Function": (
        Accepted(
            "CKV_AWS_115",
            "Reserved concurrency is a stage setting (functions.<name>.reserved_concurrency): "
            "prod reserves it for the api and the worker; the others share the account pool, "
            "which the settings keep 100 executions of.",
            _no_reserved_concurrency,
        ),
        Accepted(
            "CKV_AWS_116",
            "No asynchronous invocation to dead-letter: the api and websocket functions are "
            "invoked synchronously, the worker and webhooks by SQS (the queues' redrive "
            "policies are their DLQs, alarmed), health by the schedule, where a failed run is "
            "superseded five minutes later and alarmed by its error rate.",
        ),
        Accepted(
            "CKV_AWS_117",
            "The functions fetch public web pages and call AWS APIs; in a VPC they would need "
            "NAT gateways for no isolation gained. Egress is bounded by the SSRF guard.",
        ),
        Accepted(
            "CKV_AWS_173",
            "The environment holds names and settings only (the OpenAI key is read from "
            "Secrets Manager); Lambda encrypts it at rest with an AWS key.",
        ),
    ),
    "AWS::DynamoDB::Table": (
        Accepted(
            "CKV_AWS_119",
            "Encrypted at rest with the AWS managed key (aws/dynamodb: SSEEnabled without a "
            "key of ours); a customer managed key would add its monthly fee and KMS calls to "
            "every request of every job for no reader the AWS managed key admits.",
        ),
    ),
    "AWS::ApiGateway::Stage": (
        Accepted(
            "CKV_AWS_120",
            "No response cache: a job's status must be current on every poll.",
        ),
    ),
    "AWS::ApiGateway::Method": (
        Accepted(
            "CKV_AWS_59",
            "GET /health, GET /openapi.json and the console's static files (GET /console, "
            "GET /console/{asset}) are public by design (the README's API table); every "
            "other route needs an API key.",
            _public_route,
        ),
        Accepted(
            "CKV_AWS_59",
            "CORS preflight: API Gateway's MOCK integration answers the browser's OPTIONS "
            "request with the allowed origins, methods and headers; it reaches no function "
            "and no data, and browsers send no API key on a preflight.",
            _preflight,
        ),
    ),
    "AWS::S3::Bucket": (
        Accepted(
            "CKV_AWS_18",
            "No server access logging bucket yet: a known gap, listed in "
            "docs/ARCHITECTURE.md (CloudTrail data events are the alternative).",
        ),
        Accepted(
            "CKV_AWS_21",
            "Artifacts expire by the lifecycle rule (results and fetched pages are derived "
            "data); versioning would keep every expired and overwritten object. Stages with "
            "data.removal_policy retain (prod) version the bucket and are not skipped.",
            _unversioned,
        ),
    ),
    "AWS::SQS::Queue": (
        Accepted(
            "CKV_AWS_27",
            "Encrypted at rest with SQS managed keys (SqsManagedSseEnabled); the checker looks "
            "for a KMS key only.",
        ),
    ),
}


@jsii.implements(IAspect)
class CheckovAcceptances:
    """Writes each accepted check, with its reason, into the resource's Metadata."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        accepted = ACCEPTED.get(node.cfn_resource_type, ())
        if not accepted:
            return
        skips = [{"id": a.check, "comment": a.reason} for a in accepted if a.applies(node)]
        if skips:
            node.add_metadata("checkov", {"skip": skips})

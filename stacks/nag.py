"""cdk-nag 3: the rule packs every stage is checked against, and how a finding is acknowledged.

A finding is acknowledged on the construct it is about, with its exact id and the reason
a reviewer can check; an acknowledgment never covers a whole rule or a whole stack.
"""

from __future__ import annotations

from typing import Final, Literal

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

Pack = Literal["AwsSolutions", "Serverless"]

PACKS: Final[tuple[Pack, ...]] = ("AwsSolutions", "Serverless")


def add_checks(app: cdk.App) -> None:
    """Run every pack at synth time, as CDK policy-validation plugins."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(), ServerlessChecks())


def finding_id(pack: Pack, rule: str, finding: str | None = None) -> str:
    """``AwsSolutions::AwsSolutions-IAM5[Resource::*]``: the id cdk-nag reports."""
    detail = f"[{finding}]" if finding else ""
    return f"{pack}::{pack}-{rule}{detail}"


def acknowledge(
    construct: IConstruct, pack: Pack, rule: str, reason: str, finding: str | None = None
) -> None:
    if len(reason.split()) < 5:
        raise ValueError(f"{rule}: give the reviewer a reason, not {reason!r}")
    cdk.Validations.of(construct).acknowledge(
        cdk.Acknowledgment(id=finding_id(pack, rule, finding), reason=reason)
    )


def rendered(stack: cdk.Stack, value: str) -> str:
    """A resource ARN as cdk-nag writes it in a finding id: references as ``<LogicalId>``,
    attributes as ``<LogicalId.Attr>``, joins joined."""
    return _render(stack.resolve(value))


def _render(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetAtt":
            return f"<{'.'.join(arg)}>"
        if key == "Fn::Join":
            sep, parts = arg
            return str(sep).join(_render(p) for p in parts)
    raise ValueError(f"cannot render {value!r} as cdk-nag does")

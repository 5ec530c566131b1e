"""The reference for the synth benchmark: a CDK app with one SQS queue and nothing else."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

app = cdk.App()
stack = cdk.Stack(app, "MinimalQueue")
sqs.Queue(stack, "Queue")
app.synth()

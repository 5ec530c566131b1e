"""The stage's alarm topic: encrypted with its own key, TLS only, and open to exactly the
two services that publish to it (CloudWatch alarms and AWS Budgets) from this account."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex_stage.settings import StageSettings
from stacks import nag

PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, cid: str, *, settings: StageSettings) -> None:
        super().__init__(scope, cid)
        account = Stack.of(self).account
        name = naming.alarm_topic_name(settings.stage)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{name}: encrypts alarm and budget notifications",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if settings.retain else RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmPublishers",
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=name,
            display_name=f"Atlas Codex {settings.stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmPublishers",
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        # Who is told: staging and prod refuse to synthesize without one (the settings model).
        destinations = settings.alarms
        subscribed: list[sns.ITopicSubscription] = [
            *(subscriptions.EmailSubscription(address) for address in destinations.emails),
            *(subscriptions.UrlSubscription(url) for url in destinations.https_endpoints),
        ]
        for subscription in subscribed:
            made = self.topic.add_subscription(subscription)
            nag.acknowledge(
                made,
                "Serverless",
                "SNSRedrivePolicy",
                "An alarm notification SNS could not deliver after its own retries has no "
                "better place to wait than the alarm itself: it stays in ALARM on the stage "
                "dashboard's alarm row, which is where a responder looks first.",
            )
        if destinations.slack is not None:
            chatbot.SlackChannelConfiguration(
                self,
                "Slack",
                slack_channel_configuration_name=naming.alarm_topic_name(settings.stage),
                slack_workspace_id=destinations.slack.workspace_id,
                slack_channel_id=destinations.slack.channel_id,
                notification_topics=[self.topic],
                guardrail_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")
                ],
            )

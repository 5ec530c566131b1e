"""The stage's monthly AWS cost budget: each threshold notifies on actual and forecasted spend."""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

from atlas_codex import naming
from atlas_codex_stage.settings import StageSettings


class CostBudget(Construct):
    def __init__(
        self, scope: Construct, cid: str, *, settings: StageSettings, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, cid)
        subscriber = budgets.CfnBudget.SubscriberProperty(
            subscription_type="SNS", address=topic.topic_arn
        )
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=naming.budget_name(settings.stage),
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(
                    amount=settings.budget.monthly_usd, unit="USD"
                ),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=pct,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[subscriber],
                )
                for pct in settings.budget.notify_at_pct
                for kind in ("ACTUAL", "FORECASTED")
            ],
        )

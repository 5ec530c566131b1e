"""The stage's monthly AWS cost budget, over the resources tagged with the stage: each
threshold notifies on actual and forecasted spend. (The model spend has its own limit,
``budget.monthly_usd``, enforced by the usage ledger and watched by the budget alarm.)"""

from __future__ import annotations

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_sns as sns
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex_stage.settings import StageSettings

STAGE_TAG = "stage"
"""The tag every stack puts on its resources (stacks/stages.py)."""


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
                    amount=settings.budget.aws_monthly_usd, unit="USD"
                ),
                # Every stack tags its resources stage=<stage>; activate the tag as a cost
                # allocation tag once per account (Billing console) for AWS to filter by it.
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    tags=budgets.CfnBudget.TagValuesProperty(
                        key=STAGE_TAG, values=[settings.stage], match_options=["EQUALS"]
                    )
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

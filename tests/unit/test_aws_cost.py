"""The AWS cost model: measured use times list prices, with the stage's memory and retries."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from atlas_codex.ground import aws_cost
from atlas_codex.ground.aws_cost import CostBasis, Measured, Requests, Segment, UseProfile
from atlas_codex_stage.environment import cost_basis
from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

ROOT = Path(__file__).resolve().parents[2]


def basis(**changes: object) -> CostBasis:
    values: dict[str, object] = {
        "region": "us-east-1",
        "architecture": "arm64",
        "memory_mb": {"api": 512, "worker": 1024},
        "worker_timeout_s": 300,
        "max_receives": 3,
        "job_ttl_days": 30,
        "pages_expiry_days": 7,
        "log_retention_days": 30,
    }
    values.update(changes)
    return CostBasis.model_validate(values)


def piece(worker_cpu: float = 0.0, api_cpu: float = 0.0, **requests: float) -> Measured:
    return Measured(
        segments=[
            Segment(function="api", invocations=1 if api_cpu else 0, cpu_s=api_cpu, aws_calls=0),
            Segment(function="worker", invocations=0, cpu_s=worker_cpu, aws_calls=0),
        ],
        requests=Requests(**requests),
    )


def profile(page_cpu: float = 0.05) -> UseProfile:
    return UseProfile(
        measured="test",
        job=piece(api_cpu=0.01, api_requests=2, sqs_requests=3, dynamodb_write_units=8),
        page=piece(worker_cpu=page_cpu, s3_put_requests=1, s3_bytes=100_000),
        crawled_page=piece(worker_cpu=page_cpu, s3_put_requests=1),
        model_call=piece(worker_cpu=0.005, dynamodb_write_units=4),
    )


def test_every_deployed_stage_has_prices_for_its_region() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    for stage in ("local", "dev", "staging", "prod"):
        settings = load_stage_settings(stage, context[DEFAULTS_KEY], context[STAGES_KEY])
        aws_cost.price_table().of(settings.region)  # raises UnknownRegion otherwise


def test_a_region_without_prices_is_named_in_the_error() -> None:
    with pytest.raises(aws_cost.UnknownRegion, match="ap-south-2"):
        aws_cost.price_table().of("ap-south-2")


def test_the_bill_is_requests_times_prices() -> None:
    prices = aws_cost.price_table().of("us-east-1")
    one = piece(api_requests=1000, sqs_requests=1000, dynamodb_write_units=1000)
    bill = aws_cost.bill([(one, 1)], basis())
    assert bill.by_service["api_gateway"] == 1000 * prices.api_request
    assert bill.by_service["sqs"] == 1000 * prices.sqs_request
    assert bill.by_service["dynamodb"] == 1000 * prices.dynamodb_write_unit


def test_cpu_time_is_scaled_to_the_memory_a_function_has_below_one_vcpu() -> None:
    work = piece(worker_cpu=1.0)
    prices = aws_cost.price_table().of("us-east-1")
    small = aws_cost.bill([(work, 1)], basis(memory_mb={"api": 512, "worker": 512}))
    big = aws_cost.bill([(work, 1)], basis(memory_mb={"api": 512, "worker": 3538}))
    # 512 MB: a third of a vCPU, the second takes 1769/512 s at 0.5 GB
    assert small.by_service["lambda"] == pytest.approx(
        Decimal(1769 / 512) * Decimal("0.5") * prices.lambda_gb_s["arm64"], rel=Decimal("1e-6")
    )
    # 3538 MB: two vCPUs do not make one thread faster: 1 s at 3.455 GB
    assert big.by_service["lambda"] == pytest.approx(
        Decimal(3538 / 1024) * prices.lambda_gb_s["arm64"], rel=Decimal("1e-6")
    )


def test_a_quote_is_ordered_and_its_high_pays_every_timeout_on_every_try() -> None:
    def quote(pages: int, calls: int) -> aws_cost.UsdRange:
        return aws_cost.quote(
            basis(),
            page_count=pages,
            crawl=False,
            model_calls=calls,
            worst_model_calls=3 * calls,
            page_timeout_s=20,
            model_timeout_s=120,
            profile=profile(),
        )

    big = quote(1000, 1000)
    assert 0 < big.low_usd < big.expected_usd < big.high_usd
    prices = aws_cost.price_table().of("us-east-1")
    # one page more: at worst its 20 s fetch timeout and 3 calls at 120 s, at 1 GB, 3 tries
    one_more = quote(1001, 1001).high_usd - big.high_usd
    worst_page = (20 + 3 * 120) * float(prices.lambda_gb_s["arm64"]) * 3
    assert one_more == pytest.approx(worst_page, rel=0.05)


def test_more_pages_cost_more_and_a_crawl_shares_its_waits() -> None:
    common: dict[str, float] = {
        "model_calls": 0,
        "worst_model_calls": 0,
        "page_timeout_s": 20,
        "model_timeout_s": 120,
    }
    one = aws_cost.quote(basis(), page_count=1, crawl=False, profile=profile(), **common)  # type: ignore[arg-type]
    ten = aws_cost.quote(basis(), page_count=10, crawl=False, profile=profile(), **common)  # type: ignore[arg-type]
    crawl = aws_cost.quote(
        basis(),
        page_count=10,
        crawl=True,
        concurrency=4,
        profile=profile(),
        **common,
    )
    assert ten.expected_usd > one.expected_usd
    assert crawl.expected_usd < ten.expected_usd


def test_a_finished_job_is_priced_by_its_measured_run_time() -> None:
    quick = aws_cost.measured(
        basis(), page_count=1, crawl=False, model_calls=0, run_s=0.2, profile=profile()
    )
    slow = aws_cost.measured(
        basis(), page_count=1, crawl=False, model_calls=0, run_s=20.2, profile=profile()
    )
    prices = aws_cost.price_table().of("us-east-1")
    assert slow - quick == pytest.approx(
        Decimal(20) * prices.lambda_gb_s["arm64"], rel=Decimal("1e-9")
    )
    on_api = aws_cost.measured(
        basis(),
        page_count=1,
        crawl=False,
        model_calls=0,
        run_s=20.2,
        run_on="api",
        profile=profile(),
    )
    assert on_api < slow  # the api function has half the worker's memory


def test_the_stage_settings_give_the_cost_basis() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = load_stage_settings("prod", context[DEFAULTS_KEY], context[STAGES_KEY])
    made = cost_basis(settings)
    assert made.memory_mb["worker"] == settings.functions.worker.memory_mb
    assert made.max_receives == settings.jobs_queue.max_receive_count
    assert made.region == settings.region


def test_the_measured_profile_ships_with_the_code() -> None:
    measured = aws_cost.use_profile()
    assert measured.page.segments
    assert measured.job.requests.dynamodb_write_units > 0


def test_what_prod_turns_on_is_priced_per_request() -> None:
    """WAF per API request, X-Ray per sampled trace, SnapStart per restore and
    point-in-time recovery per stored byte, each only where the stage turns it on."""
    prices = aws_cost.price_table().of("us-east-1")
    work = piece(api_cpu=0.01, api_requests=1000, dynamodb_bytes=aws_cost.GB)
    plain = aws_cost.bill([(work, 1)], basis())
    assert not {"waf", "xray", "snapstart", "render"} & set(plain.by_service)
    prod = aws_cost.bill(
        [(work, 1)],
        basis(waf=True, tracing=True, point_in_time_recovery=True, snapstart=True),
    )
    assert prod.by_service["waf"] == 1000 * prices.waf_request
    assert prod.by_service["xray"] == Decimal(str(aws_cost.XRAY_SAMPLED_SHARE)) * prices.xray_trace
    restores = Decimal(str(aws_cost.SNAPSTART_RESTORES_PER_INVOCATION))
    assert prod.by_service["snapstart"] == restores * Decimal("0.5") * prices.snapstart_restore_gb
    pitr = prod.by_service["dynamodb"] - plain.by_service["dynamodb"]
    assert pitr == prices.dynamodb_pitr_gb_month * Decimal(30) / aws_cost.DAYS_PER_MONTH
    assert prod.total > plain.total


def test_a_rendered_page_pays_the_render_function_at_x86_prices() -> None:
    prices = aws_cost.price_table().of("us-east-1")
    rendered = aws_cost.bill([(piece(), 1)], basis(), renders=2, render_s=4.0)
    gb_s = Decimal(2) * Decimal("4.0") * Decimal(2048) / 1024
    expected = gb_s * prices.lambda_gb_s["x86_64"] + 2 * prices.lambda_request
    assert rendered.by_service["render"] == expected
    always = aws_cost.quote(
        basis(),
        page_count=1,
        crawl=False,
        model_calls=0,
        worst_model_calls=0,
        page_timeout_s=20,
        model_timeout_s=120,
        renders=1,
        worst_renders=1,
        profile=profile(),
    )
    never = aws_cost.quote(
        basis(),
        page_count=1,
        crawl=False,
        model_calls=0,
        worst_model_calls=0,
        page_timeout_s=20,
        model_timeout_s=120,
        profile=profile(),
    )
    assert always.expected_usd > never.expected_usd
    assert always.high_usd > never.high_usd
    measured = aws_cost.measured(
        basis(),
        page_count=1,
        crawl=False,
        model_calls=0,
        run_s=1.0,
        render_ms=[2500],
        profile=profile(),
    )
    unrendered = aws_cost.measured(
        basis(), page_count=1, crawl=False, model_calls=0, run_s=1.0, profile=profile()
    )
    assert measured > unrendered


def test_prod_s_cost_basis_says_what_its_template_turns_on() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    for stage in ("dev", "prod"):
        settings = load_stage_settings(stage, context[DEFAULTS_KEY], context[STAGES_KEY])
        made = cost_basis(settings)
        assert made.waf == settings.api.waf_enabled
        assert made.snapstart == settings.api.snapstart
        assert made.point_in_time_recovery == settings.data.point_in_time_recovery
        assert made.render_memory_mb == settings.functions.render.memory_mb
        assert made.tracing
    prod = cost_basis(load_stage_settings("prod", context[DEFAULTS_KEY], context[STAGES_KEY]))
    assert (prod.waf, prod.snapstart) == (True, True)


def test_fixed_monthly_items_are_counted_from_the_synthesized_stage() -> None:
    from bench.aws_use import SNAPSHOTS, fixed_items

    prod = fixed_items(json.loads((SNAPSHOTS / "prod.json").read_text()))
    dev = fixed_items(json.loads((SNAPSHOTS / "dev.json").read_text()))
    assert (prod.web_acls, dev.web_acls) == (1, 0)
    assert prod.web_acl_rules >= 1
    assert prod.snapstart_memory_mb
    assert not dev.snapstart_memory_mb
    assert prod.alarm_metrics > 20
    assert prod.dashboards == 1
    assert prod.contributor_insights_rules > 0
    assert dev.contributor_insights_rules == 0
    monthly = aws_cost.fixed_monthly(prod, "eu-west-1")
    prices = aws_cost.price_table().of("eu-west-1")
    assert monthly["waf"] == prices.waf_web_acl_month + prod.web_acl_rules * prices.waf_rule_month
    assert monthly["alarms"] == prod.alarm_metrics * prices.alarm_month

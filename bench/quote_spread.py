"""How wide a one-page schema job's quote is, on real product pages.

Every page of ``../shared/benchdata/product-pages`` is quoted as a one-page schema job (the
product schema, the page's model view, the stage's default model policy) the way
``POST /jobs/quote`` does it: ``high_usd / expected_usd`` for the bound a job without
``max_cost_usd`` is held to, and for the sum of every worst case a job with one gives up to
its ceiling. No model is called. Beside it, the answers' output caps against the recorded
JSON-schema answers of ``../shared/benchdata/openai-recorded``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.data import BENCHDATA
from bench.product_pages import PRODUCT_SCHEMA, product_read
from bench.token_counts import RECORDED, kind_of

ROOT = Path(__file__).resolve().parent.parent


def stage_config(stage: str) -> Any:
    """The functions' configuration of ``stage`` as cdk.json sets it (resource names are
    placeholders: nothing is called)."""
    from atlas_codex.ground.config import RuntimeConfig
    from atlas_codex.ground.naming import (
        QUEUES,
        TABLES,
        Kind,
        bucket_name,
        instance_id,
        resource_name,
    )
    from atlas_codex_stage.environment import function_environment
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = load_stage_settings(stage, context[DEFAULTS_KEY], context[STAGES_KEY])
    env = function_environment(
        settings,
        tables={t: resource_name(Kind.TABLE, t, stage) for t in TABLES},
        queue_urls={
            q: f"https://sqs.{settings.region}.amazonaws.com/123456789012/"
            + resource_name(Kind.QUEUE, q, stage)
            for q in QUEUES
        },
        bucket=bucket_name(instance_id("123456789012", settings.region, stage)),
    )
    return RuntimeConfig.from_env(env)


def spreads() -> dict[str, list[float]]:
    """ "bounded" / "every worst case" -> high / expected per product page (tier chosen by the
    router, as a client that names no tier gets)."""
    from pydantic import SecretStr

    from atlas_codex.engine.strategies import MAX_ESCALATIONS
    from atlas_codex.llm.catalog import catalog_for
    from atlas_codex.llm.extraction import ModelStrategies
    from atlas_codex.llm.router import Router
    from bench.aws_use import product_pages

    config = stage_config("prod").model_copy(
        update={"openai_api_key": SecretStr("sk-bench-unused")}
    )
    # Quoting sends nothing: no client, no budget.
    catalog = catalog_for(config.model_policy)
    router = Router(client=None, catalog=catalog, policy=config.model_policy, budget=None)
    models = ModelStrategies(config, router=router)
    out: dict[str, list[float]] = {"bounded": [], "every worst case": []}
    for key, raw in product_pages().items():
        url = f"https://shop.example/p/{key}"
        read = product_read(raw.decode("utf-8", "replace"), url)
        for name, bounded in (("bounded", True), ("every worst case", False)):
            page = models.quote(
                url=url,
                markdown=read.markdown,
                schema=PRODUCT_SCHEMA,
                instruction=None,
                page_count=1,
                escalations=MAX_ESCALATIONS,
                bounded=bounded,
                full_page_tokens=read.full_page_tokens,
            )
            out[name].append(float(page.high / page.expected) if page.expected else 0.0)
    return out


def caps() -> tuple[int, int]:
    """(answers, answers longer than their cap) over the recorded JSON-schema calls (reasoning tokens left out: the cap adds their own)."""
    from atlas_codex.llm import output

    total = over = 0
    for line in RECORDED.read_text().splitlines():
        record = json.loads(line)
        body = record["request"]
        if record["endpoint"] != "chat.completions" or kind_of(body) != "json_schema":
            continue
        usage = record["usage"]
        details = usage.get("completion_tokens_details") or {}
        answer = usage["completion_tokens"] - (details.get("reasoning_tokens") or 0)
        schema = body["response_format"]["json_schema"].get("schema")
        total += 1
        over += answer > output.cap_tokens(output.expected_tokens(schema))
    return total, over


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run() -> str:
    if not (BENCHDATA / "product-pages").exists() or not RECORDED.exists():
        return "## Quote spread\n\nSkipped: the benchdata folders are not on this machine."
    by = spreads()
    lines = [
        "## Quote spread (one-page schema jobs, product pages)",
        "",
        f"{len(by['bounded'])} pages of `../shared/benchdata/product-pages`, each quoted as a "
        "one-page job with the product schema and the default model policy (the router's "
        "tier; no model called): `high_usd / expected_usd`.",
        "",
        "| high is | p50 | p90 | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in by.items():
        lines.append(
            f"| {name} | {_pct(values, 0.5):.2f}x | {_pct(values, 0.9):.2f}x | {max(values):.2f}x |"
        )
    total, over = caps()
    lines += [
        "",
        "*Bounded* is what a job without `max_cost_usd` is held to: the path a page may "
        "actually take, each call at its output cap: the first model, one fallback after a "
        "billed failure (a refusal, bad JSON, a cut answer), one wider reading of the full "
        "page at the same tier, and one escalation (none for a field the full page does not "
        "give). A call that would cross it is not sent, and the record says so "
        "(`spend_bound_reached`). It replaced a flat 5x of the expected cost, under which a "
        "billed failure of the first model left no room for its fallback. *Every worst case* "
        "sums each model of the chain and two escalations, each answering up to its cap: "
        "what a job with a `max_cost_usd` may spend up to that ceiling.",
        "",
        f"Output caps: an answer's cap is 4x its expected size, within [512, 4,096] tokens, "
        f"plus a reasoning model's thinking allowance (768 tokens at low effort, 2,048 at "
        f"medium). Of the {total} recorded JSON-schema answers, {over} were longer than their "
        "cap (reasoning tokens aside); before, every call was capped at 4,096 tokens and "
        "priced so.",
    ]
    return "\n".join(lines)

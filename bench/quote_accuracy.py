"""Quotes against what the jobs then cost, by job type, on real product pages.

Each job is quoted (``Engine.quote``, as ``POST /jobs/quote``) and then run (``Engine.extract``)
over the pages of ``../shared/benchdata/product-pages``, served from memory to the real
fetcher, with the real ``openai`` SDK talking to a scripted model through an injected
transport. The scripted model answers what it is asked in the shape asked (the response
format's schema), with the page's ground-truth facts and quotes from the page; it is billed
as OpenAI bills: the prompt as sent (the project's own token count), the answer's tokens,
and for a reasoning model its thinking, drawn in turn from the reasoning tokens of the
recorded calls (``../shared/benchdata/openai-recorded``) at the same effort. Per job type:
the median of ``|actual / expected - 1|`` and whether every job stayed within ``high_usd``.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import cycle
from typing import Any

from bench.data import BENCHDATA
from bench.product_pages import PRODUCT_SCHEMA
from bench.quote_spread import stage_config
from bench.token_counts import RECORDED

PAGES = BENCHDATA / "product-pages"
SITE = "http://127.0.0.1"
INSTRUCTION = "Extract the product's name, its price and the currency of the price."
PROPOSED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "the product's name"},
        "price": {"type": "number", "description": "the price, a number"},
        "currency": {"type": "string", "description": "the currency of the price"},
    },
    "required": ["name", "price"],
}
"""What the scripted model proposes for :data:`INSTRUCTION`."""
CRAWLS = tuple(
    {"max_pages": pages, "max_depth": 1, "include": [f"{SITE}/p/[{keys}]*"]}
    for keys in ("0-3", "4-7", "89ab", "c-f")
    for pages in (3, 6)
)
"""The crawls from the shop's index: each follows a quarter of its product links (by the
first character of the page's key), reading 3 or 6 pages."""


def recorded_thinking() -> dict[str, list[int]]:
    """Reasoning tokens of the recorded calls, by effort ("low"; "medium" for the default)."""
    found: dict[str, list[int]] = {"low": [], "medium": []}
    for line in RECORDED.read_text().splitlines():
        record = json.loads(line)
        body = record.get("request") or {}
        body = body.get("body", body) if isinstance(body, dict) else {}
        usage = record.get("usage") or {}
        thought = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
        effort = str(body.get("reasoning_effort") or "medium")
        if thought and effort in found:
            found[effort].append(int(thought))
    return found


def _instance(schema: Any, facts: dict[str, str], name: str = "") -> Any:
    """A value of ``schema`` a careful model would give: the page's facts where the field
    names one, a short string otherwise."""
    if not isinstance(schema, dict):
        return None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _instance(options[0] if options else {}, facts, name)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _instance(v, facts, k) for k, v in props.items()}
    if "array" in kinds:
        if name == "evidence":
            return [{"field": k, "quote": v} for k, v in facts.items() if v]
        item = _instance(schema.get("items", {}), facts, name)
        return [item] if item is not None else []
    if "number" in kinds or "integer" in kinds:
        text = facts.get(name, "")
        try:
            return float(text.replace(",", "")) if text else 1
        except ValueError:
            return 1
    if "boolean" in kinds:
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return facts.get(name) or "not stated"


@dataclass
class ScriptedModel:
    """The model's script: the page's facts in the shape asked, billed as OpenAI bills."""

    facts: dict[str, str] = field(default_factory=dict)
    thinking: dict[str, Iterator[int]] = field(default_factory=dict)

    def __call__(self, sent: dict[str, Any]) -> Any:
        from atlas_codex.llm import tokens
        from tests.support.model_server import Answer

        spec = (sent.get("response_format") or {}).get("json_schema") or {}
        schema = spec.get("schema")
        props = (schema or {}).get("properties", {})
        if set(props) == {"schema"}:  # a schema proposed from the instruction
            answer: Any = {"schema": PROPOSED}
        elif set(props) == {"ranked"}:  # the links a crawl should follow, best first
            answer = {"ranked": list(range(1, 11))}
        else:
            answer = _instance(schema, self.facts) if schema else {"answer": "not stated"}
        thought = 0
        if tokens.is_reasoning(sent["model"]):
            thought = next(self.thinking[sent.get("reasoning_effort") or "medium"])
        out = tokens.count(json.dumps(answer))
        return Answer(content=answer, completion_tokens=out + thought, reasoning=thought)


def _facts(html: str, truth: dict[str, Any]) -> dict[str, str]:
    title = re.search(r"<title[^>]*>(.*?)</title>", html, re.S | re.I)
    facts = {"name": " ".join(title.group(1).split())[:120] if title else ""}
    for key in ("price", "currency", "sku", "availability"):
        values = truth.get(key) or []
        facts[key] = str(values[0]) if values else ""
    return facts


@dataclass
class Measured:
    kind: str
    expected: float
    high: float
    actual: float


def _world(pages: dict[str, bytes]) -> tuple[Any, ScriptedModel]:
    import httpx
    from pydantic import SecretStr

    from atlas_codex.engine.engine import Engine
    from atlas_codex.engine.pages.fetch import Fetcher
    from atlas_codex.ground.netguard import NetPolicy
    from bench.aws_use import _route
    from tests.support.model_server import ModelServer

    def serve(request: httpx.Request) -> httpx.Response:
        status, body = _route(pages, request.url.path)
        return httpx.Response(status, content=body, headers={"content-type": "text/html"})

    config = stage_config("prod").model_copy(
        update={"openai_api_key": SecretStr("sk-bench-scripted")}
    )
    thinking: dict[str, Iterator[int]] = {
        k: cycle(v or [0]) for k, v in recorded_thinking().items()
    }
    model = ScriptedModel(thinking=thinking)
    engine = Engine(
        fetcher=Fetcher(
            policy=NetPolicy(allowed_private=frozenset({("127.0.0.1", 80)})),
            client=httpx.Client(transport=httpx.MockTransport(serve)),
        ),
        models_available=True,
        models=ModelServer(model).strategies(config),
    )
    return engine, model


def measure() -> list[Measured]:
    from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
    from atlas_codex.extraction.request import JobRequest

    pages = {
        p.name.removesuffix(".html.gz"): gzip.decompress(p.read_bytes())
        for p in sorted((PAGES / "html").glob("*.html.gz"))
    }
    truth = json.loads((PAGES / "ground-truth-dev.json").read_text())
    engine, model = _world(pages)
    jobs: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    for key, raw in pages.items():
        facts = _facts(raw.decode("utf-8", "replace"), truth.get(key, {}))
        url = f"{SITE}/p/{key}"
        jobs.append(("product schema", {"urls": [url], "json_schema": PRODUCT_SCHEMA}, facts))
        jobs.append(("instruction", {"urls": [url], "instruction": INSTRUCTION}, facts))
    for crawl in CRAWLS:
        body = {"urls": [f"{SITE}/"], "json_schema": PRODUCT_SCHEMA, "crawl": crawl}
        jobs.append(("crawl", body, {}))
    measured: list[Measured] = []
    for kind, body, facts in jobs:
        request = JobRequest.model_validate(body)
        quote = engine.quote(request, deadline=time.monotonic() + 60)
        model.facts = facts
        try:
            done = engine.extract(request, ExtractionTask.within(300))
            cost = done.cost
        except ExtractionError as exc:
            cost = exc.done.cost if exc.done is not None else None
        actual = float(Decimal(str(cost.actual_usd))) if cost is not None else 0.0
        measured.append(Measured(kind, quote.expected_usd, quote.high_usd, actual))
    return measured


def summary(measured: list[Measured]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(m.kind for m in measured):
        rows = [m for m in measured if m.kind == kind]
        errors = [abs(m.actual / m.expected - 1) for m in rows if m.expected > 0]
        free = [m for m in rows if m.expected == 0]
        out[kind] = {
            "jobs": len(rows),
            "median_error": statistics.median(errors) if errors else 0.0,
            "p90_error": sorted(errors)[int(0.9 * (len(errors) - 1))] if errors else 0.0,
            "over_high": sum(1 for m in rows if m.actual > m.high + 1e-9),
            "quoted_free": len(free),
            "free_but_billed": sum(1 for m in free if m.actual > 0),
            "actual_over_expected": (
                sum(m.actual for m in rows) / sum(m.expected for m in rows)
                if sum(m.expected for m in rows)
                else 0.0
            ),
        }
    return out


def run() -> str:
    table = summary(measure())
    lines = [
        "## Quotes against what jobs cost, by job type",
        "",
        "Every job quoted (`POST /jobs/quote`) and then run on the pages of "
        "`../shared/benchdata/product-pages` (49 pages: a product-schema job and an "
        "instruction job on each; eight crawls from a shop index linking them all, each to a "
        "quarter of them, reading 3 or 6 pages), with the "
        "real `openai` SDK answered by a scripted model: the response format's shape filled "
        "with the page's ground-truth facts, billed for the prompt as sent, the answer's "
        "tokens, and a reasoning model's thinking drawn in turn from the recorded calls at "
        "the same effort. Error is `|actual / expected - 1|` per job with a model cost "
        "expected; *over high* counts jobs that spent more than their `high_usd`. A crawl's "
        "quote reads its start page and up to four of the pages it links to, and prices the "
        "rest of the crawl from those: product pages differ widely (half need no model "
        "call), so a crawl's estimate is as good as that sample.",
        "",
        "| job type | jobs | median error | p90 error | over high | quoted free (billed) "
        "| actual / expected, all |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, row in table.items():
        lines.append(
            f"| {kind} | {row['jobs']:.0f} | {row['median_error']:.1%} | "
            f"{row['p90_error']:.1%} | {row['over_high']:.0f} | {row['quoted_free']:.0f} "
            f"({row['free_but_billed']:.0f}) | {row['actual_over_expected']:.2f} |"
        )
    return "\n".join(lines)

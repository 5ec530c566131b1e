"""What runs for a job, and the strategies that need no model.

:func:`plan` chooses a chain from :data:`CHAINS` (a pure function of the request, with the
reason); :data:`STRATEGIES` are the deterministic strategies by name. The model strategies
(:data:`MODEL_STRATEGIES`) run in the engine, through the router and the quality gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from atlas_codex.engine import quality
from atlas_codex.engine.facts import product
from atlas_codex.engine.facts.direct import (
    Extraction,
    SelectorError,
    check_required,
    extract_selectors,
    extract_tables,
)
from atlas_codex.engine.pages.crawler import CrawledPage
from atlas_codex.engine.reading.html import metadata
from atlas_codex.extraction.request import JobRequest

MODEL_STRATEGIES: Final = frozenset({"schema-model", "plain-language-model"})
MAX_ESCALATIONS: Final = 2
"""How many stronger tiers the quality gate may try after a model extraction with problems."""

# THE fallback chains, one place: the first strategy that succeeds serves.
CHAINS: Final[dict[str, tuple[str, ...]]] = {
    "selectors": ("direct-css",),
    "schema": ("schema-model", "structured-data"),
    "product": ("structured-data", "schema-model"),
    "instruction": ("plain-language-model", "content"),
    "content": ("content",),
}
NO_MODEL: Final = "model strategies unavailable: no OpenAI API key is configured"


class StrategyFailed(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        """Trying again later can do better (every model was cooling down)."""
        self.retry_after_s = retry_after_s
        """When a try is worth making again, in seconds (None: the queue's own wait)."""
        super().__init__(message)


@dataclass(frozen=True)
class Plan:
    chain: tuple[str, ...]
    navigation: bool
    reason: str


def plan(request: JobRequest, *, models_available: bool) -> Plan:
    """Which strategies run, in order, and why: a pure function of the request."""
    if request.selectors is not None:
        kind, why = "selectors", "selectors were given"
    elif request.json_schema is not None and product.product_fields(request.json_schema):
        kind, why = (
            "product",
            (
                "a JSON schema asking for product facts: read from the page first, a model only "
                "for what is missing"
            ),
        )
    elif request.json_schema is not None:
        kind, why = "schema", "a JSON schema was given"
    elif request.instruction is not None:
        kind, why = "instruction", "an instruction was given"
    else:
        kind, why = "content", "no schema, selectors or instruction: the page's content"
    navigation = request.crawl is not None or len(request.urls) > 1
    if navigation:
        why += "; navigation, since " + (
            "crawl options were given" if request.crawl else "several URLs were given"
        )
    if not models_available and any(s in MODEL_STRATEGIES for s in CHAINS[kind]):
        why += "; " + NO_MODEL
    return Plan(chain=CHAINS[kind], navigation=navigation, reason=why)


def judged(found: Extraction, schema: Any) -> Extraction:
    """``found`` with the schema's missing required fields and its quality problems."""
    missing = check_required(found.data, schema) if schema is not None else []
    found.missing += [f"{r} (required)" for r in missing if r not in found.missing]
    found.problems = quality.problems(found.data, schema, missing_required=missing)
    return found


def direct_css(request: JobRequest, page: CrawledPage) -> Extraction:
    """The client's CSS selectors, each value converted to its declared type."""
    assert page.page is not None
    assert request.selectors is not None
    try:
        found = extract_selectors(page.parsed(), request.selectors, page.page.url)
    except SelectorError as exc:
        raise StrategyFailed("invalid_selector", str(exc)) from None
    return judged(found, request.json_schema)


def structured_data(request: JobRequest, page: CrawledPage) -> Extraction:
    """The schema's fields from the page's JSON-LD, microdata, OpenGraph and buy box."""
    assert page.page is not None
    assert request.json_schema is not None
    tree = page.parsed()
    found = product.extract(tree, metadata(tree, page.page.url), page.page.url, request.json_schema)
    if not found.evidence:
        raise StrategyFailed(
            "no_structured_data",
            "no JSON-LD, microdata or OpenGraph value matched the schema",
        )
    return judged(found, request.json_schema)


def page_content(request: JobRequest, page: CrawledPage) -> Extraction:
    """The page's main content as markdown, its metadata and its tables."""
    assert page.page is not None
    tree = page.parsed()
    meta = metadata(tree, page.page.url)
    content: dict[str, Any] = {
        "markdown": page.main_markdown(),
        "title": meta.title,
        "description": meta.description,
        "language": meta.language,
        "canonical_url": meta.canonical_url,
        "tables": extract_tables(tree),
    }
    found = Extraction(data=content)
    if not content["markdown"].strip() and not content["tables"]:
        found.problems.append(quality.EMPTY)
    return found


def ask_for_the_rest(request: JobRequest, schema: Any, known: Extraction) -> JobRequest:
    """The request a model gets when product facts were read already: the schema's missing
    properties only, and the values found as context, marked as such."""
    missing = [k for k, v in (known.data or {}).items() if v is None]
    properties = schema.get("properties", {})
    rest = {
        **schema,
        "properties": {k: properties[k] for k in missing if k in properties},
        "required": [r for r in schema.get("required", []) if r in missing],
    }
    found = {k: v for k, v in (known.data or {}).items() if v is not None}
    context = (
        "Values already read from the page's own data (context only, not to extract again): "
        + json.dumps(found, ensure_ascii=False)
    )
    instruction = f"{request.instruction}\n{context}" if request.instruction else context
    return request.model_copy(update={"json_schema": rest, "instruction": instruction})


STRATEGIES: Final[dict[str, Callable[[JobRequest, CrawledPage], Extraction]]] = {
    "direct-css": direct_css,
    "structured-data": structured_data,
    "content": page_content,
}
"""The deterministic strategies of :data:`CHAINS`, by name (the model strategies,
:data:`MODEL_STRATEGIES`, run through the router and the quality gate)."""

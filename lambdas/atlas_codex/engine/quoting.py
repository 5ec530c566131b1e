"""A job's quote: what it will cost, from its first pages fetched now, before anything
billable runs. The pages are read as the model would read them (the model view); the model
side prices each one for the job's schema or instruction (no model is called) and the price
is scaled to every page the job expects."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine import model_view
from atlas_codex.engine.blocked import blocked
from atlas_codex.engine.consensus import main_markdown
from atlas_codex.engine.fetch import FetchError, PageSource
from atlas_codex.engine.strategies import MAX_ESCALATIONS, MODEL_STRATEGIES, plan
from atlas_codex.extraction.contract import Quote, QuotedPages
from atlas_codex.extraction.request import JobRequest, needs_model

if TYPE_CHECKING:
    from atlas_codex.llm.extraction import ModelStrategies

QUOTE_MAX_FETCH: Final = 5
"""A quote fetches at most this many of the job's pages and extrapolates to the rest."""


def quote(
    request: JobRequest,
    *,
    deadline: float,
    fetcher: PageSource,
    models: ModelStrategies | None,
    models_available: bool,
    renders: bool,
) -> Quote:
    """What the job will cost, from its first pages fetched now (until ``deadline``, a
    monotonic instant); no model is called. ``renders``: a browser may render the job's
    pages when it runs."""
    chosen = plan(request, models_available=models_available)
    expected_pages = request.crawl.max_pages if request.crawl else len(request.urls)
    fetched, failed = _sample(fetcher, request, deadline)
    model_chain = [s for s in chosen.chain if s in MODEL_STRATEGIES]
    notes = [chosen.reason]
    if renders and request.render != "never":
        notes.append(
            "a quote reads the server's HTML without rendering: "
            + (
                "every page will be rendered (render: always)"
                if request.render == "always"
                else "a page built by JavaScript may be rendered when the job runs"
            )
            + "; the render function's time is not in aws_usd"
        )
    quote = Quote(
        strategy_chain=list(chosen.chain),
        models_available=models_available,
        pages=QuotedPages(expected=expected_pages, fetched=len(fetched), failed=failed),
        max_cost_usd=request.max_cost_usd,
        notes=notes,
    )
    if not model_chain or not models_available or models is None:
        if model_chain and needs_model(request, "async") is not None:
            notes.append(
                "model_unavailable: this job needs a model and no OpenAI API key is "
                "configured; it would be refused (give selectors or a json_schema)"
            )
        elif model_chain:
            notes.append("deterministic strategies serve at no model cost")
        return quote.model_copy(update={"notes": notes})
    if not fetched:
        notes.append("no page could be fetched: no model would be called")
        return quote.model_copy(update={"notes": notes})
    return _priced(models, quote, request, fetched, expected_pages)


def _sample(
    fetcher: PageSource, request: JobRequest, deadline: float
) -> tuple[list[tuple[str, str, int]], list[str]]:
    """The job's first pages as a model would read them ``(url, markdown, the whole page's
    tokens)``, and why each page that could not be read was not."""
    fetched: list[tuple[str, str, int]] = []
    failed: list[str] = []
    for url in request.urls[:QUOTE_MAX_FETCH]:
        if time.monotonic() > deadline:
            break
        try:
            page = fetcher.fetch_document(url, respect_robots=request.respect_robots_txt)
        except FetchError as exc:
            failed.append(f"{url}: {exc.code}" + (f" ({exc.status})" if exc.status else ""))
            continue
        tree = LexborHTMLParser(page.text)
        wall = blocked(tree, page.text)
        if wall is not None:
            failed.append(f"{url}: {wall.code}")
            continue
        read = model_view.view(
            tree,
            page.url,
            model_view.focus(request.json_schema, request.instruction),
            main=main_markdown(page.text, page.url, tree),
        )
        fetched.append((page.url, read.markdown, read.full_page_tokens))
    return fetched, failed


def _priced(
    models: ModelStrategies,
    quote: Quote,
    request: JobRequest,
    fetched: list[tuple[str, str, int]],
    expected_pages: int,
) -> Quote:
    """The model calls' price from the sampled pages, scaled to every expected page."""
    from atlas_codex.llm.router import RouterFailed

    notes = list(quote.notes)
    low = expected = high = Decimal(0)
    tokens_in = 0
    calls_made = 0
    tiers: list[str] = []
    chosen_models: list[str] = []
    try:
        for url, markdown, full_page_tokens in fetched:
            quoted = models.quote(
                url=url,
                markdown=markdown,
                schema=dict(request.json_schema) if request.json_schema is not None else None,
                instruction=request.instruction,
                page_count=expected_pages,
                escalations=MAX_ESCALATIONS,
                start=request.model_tier,
                bounded=request.max_cost_usd is None,
                full_page_tokens=full_page_tokens,
            )
            tiers.append(quoted.decision.tier)
            chosen_models.append(quoted.calls[-1].model)
            calls_made += len(quoted.calls)
            low += quoted.low
            expected += quoted.expected
            high += quoted.high
            tokens_in += sum(call.input_tokens for call in quoted.calls)
    except RouterFailed as exc:
        notes.append(f"the router cannot serve this job: {exc.message}")
        return quote.model_copy(update={"notes": notes})
    scale = Decimal(expected_pages) / Decimal(len(fetched))
    model_calls = float(calls_made * scale)
    worst_calls = model_calls * (1 + MAX_ESCALATIONS)
    top = high * scale
    if request.crawl is not None and expected_pages > 1:
        worst_calls += expected_pages
        top += models.ranking_worst_usd() * Decimal(expected_pages)
        notes.append("link choice: one model call per crawled page at most")
    if expected_pages != len(fetched):
        notes.append(f"{len(fetched)} of {expected_pages} pages fetched; the rest are extrapolated")
    if request.max_cost_usd is None:
        notes.append(
            "the job is held to high_usd: per page its first call, one fallback after a "
            "billed failure, one wider reading of the full page and one escalation, each at "
            f"its output cap ({float(top / expected) if expected else 0:.1f}x the expected "
            "cost); a call past it is not sent; a max_cost_usd allows more"
        )
    elif top > Decimal(str(request.max_cost_usd)):
        top = Decimal(str(request.max_cost_usd))
        notes.append("the job's max_cost_usd caps the worst case")
    return quote.model_copy(
        update={
            "tier": tiers[0],
            "model": chosen_models[0],
            "input_tokens": int(tokens_in * scale),
            "low_usd": float(low * scale),
            "expected_usd": float(expected * scale),
            "high_usd": float(max(top, low * scale)),
            "model_calls": model_calls,
            "worst_model_calls": worst_calls,
            "notes": notes,
        }
    )

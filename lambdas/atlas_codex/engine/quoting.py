"""A job's quote: what it will cost, from its first pages fetched now, before anything
billable runs. The pages are read as the model would read them (the model view); the model
side prices each one for the job's schema or instruction (no model is called) and the price
is scaled to every page the job expects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine import quality
from atlas_codex.engine.facts.direct import Extraction
from atlas_codex.engine.pages.blocked import blocked
from atlas_codex.engine.pages.crawler import CrawledPage, Crawler, Onward
from atlas_codex.engine.pages.fetch import FetchError, PageSource
from atlas_codex.engine.reading import model_view
from atlas_codex.engine.reading.consensus import main_markdown
from atlas_codex.engine.strategies import (
    MAX_ESCALATIONS,
    MODEL_STRATEGIES,
    STRATEGIES,
    StrategyFailed,
    ask_for_the_rest,
    plan,
)
from atlas_codex.extraction.contract import Quote, QuotedPages
from atlas_codex.extraction.request import JobRequest, needs_model

if TYPE_CHECKING:
    from atlas_codex.llm.extraction import ModelStrategies

NOWHERE: Final = Onward(deeper=0, next_pages=0)
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
    fetched, failed = _sample(fetcher, request, deadline, tuple(chosen.chain))
    expected_pages, why = pages_to_read(request, fetched)
    most_pages = request.crawl.max_pages if request.crawl else len(request.urls)
    model_chain = [s for s in chosen.chain if s in MODEL_STRATEGIES]
    notes = [chosen.reason, *why]
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
    return _priced(models, quote, request, fetched, expected_pages, most_pages)


def pages_to_read(request: JobRequest, fetched: list[Sampled]) -> tuple[int, list[str]]:
    """How many pages the job is expected to read, and for a crawl why: its start pages,
    then what their links say (one level deeper counted; a crawl that may go deeper, or
    that reads a sitemap or a next page, is expected to fill ``max_pages``)."""
    crawl = request.crawl
    if crawl is None:
        return len(request.urls), []
    starts = len(request.urls)
    read = [p for p in fetched if p.start]
    if not read:
        return crawl.max_pages, []
    # What the sampled start pages link to, extrapolated to the ones not sampled.
    deeper = sum(p.onward.deeper for p in read) * starts / len(read)
    following = sum(p.onward.next_pages for p in read)
    if crawl.use_sitemap or following or (crawl.max_depth >= 2 and deeper):
        expected = crawl.max_pages
    elif crawl.max_depth >= 1:
        expected = starts + round(deeper)
    else:
        expected = starts
    expected = max(1, min(crawl.max_pages, expected))
    if expected == crawl.max_pages:
        return expected, []
    return expected, [
        f"the crawl is expected to read {expected} of its max_pages {crawl.max_pages}: "
        f"its start pages link to {round(deeper)} pages it would follow"
        + ("" if crawl.max_depth >= 1 else " (max_depth 0: the start pages only)")
        + "; high_usd is priced at max_pages"
    ]


def _weights(
    request: JobRequest, fetched: list[Sampled], expected_pages: int, most_pages: int
) -> list[tuple[Decimal, Decimal]]:
    """How many of the job's pages each sampled page stands for, expected and at worst: a
    crawl's start pages for the start pages, the pages they lead to for the rest of the
    crawl; otherwise every sampled page for an equal share."""
    starts = [p for p in fetched if p.start]
    onward = [p for p in fetched if not p.start]
    if request.crawl is None or not starts or not onward:
        share = Decimal(expected_pages) / Decimal(len(fetched))
        worst = Decimal(most_pages) / Decimal(len(fetched))
        return [(share, worst)] * len(fetched)
    first = Decimal(len(request.urls)) / Decimal(len(starts))
    rest = Decimal(max(expected_pages - len(request.urls), 0)) / Decimal(len(onward))
    rest_worst = Decimal(max(most_pages - len(request.urls), 0)) / Decimal(len(onward))
    return [(first, first) if p.start else (rest, rest_worst) for p in fetched]


def choosing_pages(
    request: JobRequest, fetched: list[Sampled], expected_pages: int
) -> tuple[int, int]:
    """(expected, at most) pages of a crawl on which a model chooses the links to follow:
    pages above the crawl's last level that link to two or more new pages."""
    assert request.crawl is not None
    starts = len(request.urls)
    if request.crawl.max_depth >= 2:
        return expected_pages, request.crawl.max_pages
    read = [p for p in fetched if p.start]
    choosing = [p for p in read if p.onward.deeper >= 2]
    expected = round(len(choosing) * starts / len(read)) if read else starts
    return expected, min(starts, request.crawl.max_pages)


@dataclass(frozen=True)
class Sampled:
    """One of the job's first pages, as its run would meet it."""

    url: str
    asked: JobRequest | None
    """What a model would be asked of it (after product facts: the rest of the schema);
    None: the page's own data answers the whole schema, and no model is called."""
    markdown: str = ""
    """What the model would read."""
    full_page_tokens: int = 0
    """The whole page's size: what a wider reading would send."""
    onward: Onward = NOWHERE
    """For a crawl's start page: what the crawl would follow from it."""
    start: bool = True
    """One of the job's own URLs (not a page a crawl would reach from them)."""


def _sampled_urls(starts: list[str], onward: list[str]) -> Iterator[str]:
    """The start pages, then the pages they lead to as reading them finds those."""
    yield from starts
    seen = set(starts)
    while onward:
        url = onward.pop(0)
        if url not in seen:
            seen.add(url)
            yield url


def _sample(
    fetcher: PageSource, request: JobRequest, deadline: float, chain: tuple[str, ...]
) -> tuple[list[Sampled], list[str]]:
    """The job's first pages as its run would meet them (product facts read first where the
    chain starts with them; the model view of what is left), and why each page that could
    not be read was not."""
    fetched: list[Sampled] = []
    failed: list[str] = []
    starts = list(request.urls[:QUOTE_MAX_FETCH])
    onward: list[str] = []  # a crawl's next pages, read too while the sample has room
    for url in _sampled_urls(starts, onward):
        if time.monotonic() > deadline or len(fetched) + len(failed) >= QUOTE_MAX_FETCH:
            break
        start = url in starts
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
        ahead = NOWHERE
        if request.crawl is not None and start:
            ahead = Crawler(fetcher, request.crawl).onward(
                tree, page.url, list(request.urls), sample=QUOTE_MAX_FETCH - len(starts)
            )
            if request.crawl.max_depth >= 1:
                onward.extend(ahead.first)
        asked = request
        if chain and chain[0] == "structured-data" and request.json_schema is not None:
            try:
                facts: Extraction | None = STRATEGIES["structured-data"](
                    request, CrawledPage(url=page.url, depth=0, page=page, tree=tree)
                )
            except StrategyFailed:  # no structured data: the model reads the whole schema
                facts = None
            if facts is not None and not quality.gave_nothing(facts.problems):
                if not facts.missing:
                    fetched.append(Sampled(page.url, None, onward=ahead, start=start))
                    continue
                asked = ask_for_the_rest(request, request.json_schema, facts)
        read = model_view.view(
            tree,
            page.url,
            model_view.focus(asked.json_schema, asked.instruction),
            main=main_markdown(page.text, page.url, tree),
        )
        fetched.append(
            Sampled(
                page.url, asked, read.markdown, read.full_page_tokens, onward=ahead, start=start
            )
        )
    return fetched, failed


def _priced(
    models: ModelStrategies,
    quote: Quote,
    request: JobRequest,
    fetched: list[Sampled],
    expected_pages: int,
    most_pages: int,
) -> Quote:
    """The model calls' price from the sampled pages, scaled to every expected page (and,
    at worst, to every page the job may read)."""
    from atlas_codex.llm.router import RouterFailed

    notes = list(quote.notes)
    low = expected = high = Decimal(0)
    tokens_in = 0
    calls_made = Decimal(0)
    weights = _weights(request, fetched, expected_pages, most_pages)
    tiers: list[str] = []
    chosen_models: list[str] = []
    answered = [p for p in fetched if p.asked is None]
    if answered:
        notes.append(
            f"product facts: the page's own data answers the whole schema on {len(answered)} "
            f"of {len(fetched)} sampled pages (no model call for those)"
        )
    try:
        for sampled, (weight, worst_weight) in zip(fetched, weights, strict=True):
            asked = sampled.asked
            if asked is None:
                continue
            quoted = models.quote(
                url=sampled.url,
                markdown=sampled.markdown,
                schema=dict(asked.json_schema) if asked.json_schema is not None else None,
                instruction=asked.instruction,
                page_count=most_pages,  # as the run decides its tier: by max_pages
                escalations=MAX_ESCALATIONS,
                start=request.model_tier,
                bounded=request.max_cost_usd is None,
                full_page_tokens=sampled.full_page_tokens,
            )
            tiers.append(quoted.decision.tier)
            chosen_models.append(quoted.calls[-1].model)
            calls_made += len(quoted.calls) * weight
            low += quoted.low * weight
            expected += quoted.expected * weight
            high += quoted.high * worst_weight
            tokens_in += int(sum(call.input_tokens for call in quoted.calls) * weight)
    except RouterFailed as exc:
        notes.append(f"the router cannot serve this job: {exc.message}")
        return quote.model_copy(update={"notes": notes})
    model_calls = float(calls_made)
    worst_calls = float(calls_made * Decimal(most_pages) / Decimal(expected_pages)) * (
        1 + MAX_ESCALATIONS
    )
    top = high
    if request.crawl is not None and request.crawl.max_depth >= 1:
        # Link choice: one call per crawled page with two or more new links to follow
        # (a page at the crawl's last level has none it would follow).
        choosing, most_choosing = choosing_pages(request, fetched, expected_pages)
        model_calls += choosing
        worst_calls += most_choosing
        expected += models.ranking_expected_usd() * Decimal(choosing)
        top += models.ranking_worst_usd() * Decimal(most_choosing)
        notes.append(
            f"link choice: one model call per crawled page with links to choose among "
            f"({choosing} expected, {most_choosing} at most)"
        )
    if not tiers:  # every sampled page answered by its own data
        return quote.model_copy(
            update={
                "low_usd": 0.0,
                "expected_usd": float(expected),
                "high_usd": float(top),
                "model_calls": model_calls,
                "worst_model_calls": worst_calls,
                "notes": notes,
            }
        )
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
            "input_tokens": tokens_in,
            "low_usd": float(low),
            "expected_usd": float(expected),
            "high_usd": float(max(top, low)),
            "model_calls": model_calls,
            "worst_model_calls": worst_calls,
            "notes": notes,
        }
    )

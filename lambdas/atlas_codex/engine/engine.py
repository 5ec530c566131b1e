"""The engine: one entry point, one result shape, a recorded fallback chain.

Strategy selection is deterministic and explained in the result:

* **navigation** wraps the per-page strategy when the request gives crawl options or more
  than one URL;
* **direct-css** when selectors are given;
* **schema-model** then **structured-data** for a JSON schema;
* **plain-language-model** then **content** for an instruction alone;
* **content** (markdown and metadata of the main content) when nothing else is asked.

The model strategies need an OpenAI key; without one they are recorded as unavailable in
the chain and the deterministic strategies serve.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import JsonValue
from selectolax.lexbor import LexborHTMLParser

from atlas_codex.config import RuntimeConfig
from atlas_codex.engine.crawler import CrawledPage, Crawler
from atlas_codex.engine.direct import (
    Extraction,
    SelectorError,
    check_required,
    extract_selectors,
    extract_structured,
    extract_tables,
)
from atlas_codex.engine.fetch import Fetcher, FetchError
from atlas_codex.engine.html import metadata, to_markdown
from atlas_codex.engine.interface import DeadlineExceeded, ExtractionError, ExtractionOutcome
from atlas_codex.engine.netguard import NetPolicy
from atlas_codex.jobs.schema import (
    Attempt,
    CrawlOptions,
    JobCost,
    JobError,
    JobRequest,
    PageOutcome,
    utcnow,
)

MODEL_STRATEGIES: Final = frozenset({"schema-model", "plain-language-model"})

# THE fallback chains, one place: the first strategy that succeeds serves.
CHAINS: Final[dict[str, tuple[str, ...]]] = {
    "selectors": ("direct-css",),
    "schema": ("schema-model", "structured-data"),
    "instruction": ("plain-language-model", "content"),
    "content": ("content",),
}
NO_MODEL: Final = "model strategies unavailable: no OpenAI API key is configured"


class StrategyFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
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


class Engine:
    def __init__(
        self, *, fetcher: Fetcher, models_available: bool, models: Any | None = None
    ) -> None:
        self.fetcher = fetcher
        self.models_available = models_available and models is not None
        self.models = models
        """:class:`atlas_codex.llm.extraction.ModelStrategies` when a key is configured."""

    def extract(
        self,
        request: JobRequest,
        *,
        deadline: float,
        correlation_id: str,
        cancelled: Callable[[], bool],
        owner_id: str | None = None,
    ) -> ExtractionOutcome:
        from atlas_codex.llm.extraction import Spend

        chosen = plan(request, models_available=self.models_available)
        spend = Spend(owner_id=owner_id)
        attempts: list[Attempt] = []
        if chosen.navigation:
            options = request.crawl or CrawlOptions(max_pages=len(request.urls), max_depth=0)
            crawler = Crawler(
                self.fetcher,
                options,
                respect_robots=request.respect_robots_txt,
                deadline=deadline,
                cancelled=cancelled,
                rank=self._link_ranker(request, deadline, spend, attempts),
            )
            crawled = sorted(crawler.crawl(list(request.urls)), key=lambda p: p.order)
        else:
            if time.monotonic() > deadline:
                raise DeadlineExceeded()
            crawled = [self._fetch_one(request)]
        pages: list[PageOutcome] = []
        data: list[JsonValue] = []
        served: set[str] = set()
        for page in crawled:
            if page.error is not None:
                pages.append(
                    PageOutcome(
                        url=page.url,
                        status="failed",
                        http_status=page.error.status,
                        error=JobError(
                            code=page.error.code,
                            message=page.error.message[:2000],
                            retryable=page.error.retryable,
                        ),
                    )
                )
                continue
            try:
                found, strategy = self._run_chain(
                    chosen.chain, page, request, attempts, deadline=deadline, spend=spend
                )
            except ExtractionError as exc:
                if not chosen.navigation:
                    raise
                # One page the strategies could not read does not sink the crawl.
                error = JobError(code=exc.code, message=exc.message[:2000])
                pages.append(PageOutcome(url=page.url, status="failed", error=error))
                continue
            served.add(strategy)
            missing = list(found.missing)
            if request.json_schema is not None:
                missing += [
                    f"{r} (required)"
                    for r in check_required(found.data, request.json_schema)
                    if r not in missing
                ]
            pages.append(
                PageOutcome(
                    url=page.url,
                    status="ok",
                    http_status=page.page.status if page.page else None,
                    strategy=strategy,
                    evidence=found.evidence,
                    missing=missing,
                )
            )
            data.append(
                found.data if not chosen.navigation else {"url": page.url, "data": found.data}
            )
        if not data:
            errors = [p.error for p in pages if p.error is not None]
            if not errors:
                raise (
                    DeadlineExceeded()
                    if time.monotonic() > deadline
                    else ExtractionError("no_pages", "no page was fetched")
                )
            first = errors[0]
            raise ExtractionError(
                first.code,
                first.message,
                retryable=all(e.retryable for e in errors),
                attempts=_dedupe(attempts),
            )
        strategy = "+".join(sorted(served))
        return ExtractionOutcome(
            data=data if chosen.navigation else data[0],
            pages=pages,
            strategy=f"navigation({strategy})" if chosen.navigation else strategy,
            attempts=_dedupe(attempts),
            model=spend.models[-1] if spend.models else None,
            cost=JobCost(estimated_usd=float(spend.estimated), actual_usd=float(spend.actual)),
            routing=_unique(spend.decisions),
            warnings=_unique(spend.warnings),
        )

    def _link_ranker(
        self, request: JobRequest, deadline: float, spend: Any, attempts: list[Attempt]
    ) -> Callable[[list[Any]], list[Any]] | None:
        """With a model, navigation follows the links it ranks toward the job's goal."""
        if self.models is None or not self.models_available or request.crawl is None:
            return None
        goal = request.instruction or (
            json.dumps(request.json_schema)[:2000] if request.json_schema is not None else None
        )
        if goal is None:
            return None
        models = self.models

        def rank(found: list[Any]) -> list[Any]:
            ranked: list[Any] = models.rank_links(
                goal=goal, links=found, deadline=deadline, spend=spend, attempts=attempts
            )
            return ranked

        return rank

    def _fetch_one(self, request: JobRequest) -> CrawledPage:
        url = request.urls[0]
        try:
            page = self.fetcher.fetch(url, respect_robots=request.respect_robots_txt)
        except FetchError as exc:
            raise ExtractionError(exc.code, exc.message, retryable=exc.retryable) from None
        return CrawledPage(url=page.url, depth=0, page=page, tree=LexborHTMLParser(page.text))

    def _run_chain(
        self,
        chain: tuple[str, ...],
        page: CrawledPage,
        request: JobRequest,
        attempts: list[Attempt],
        *,
        deadline: float,
        spend: Any,
    ) -> tuple[Extraction, str]:
        last: StrategyFailed | None = None
        for strategy in chain:
            started = utcnow()
            try:
                value = self._strategy(strategy, page, request, attempts, deadline, spend)
            except StrategyFailed as exc:
                attempts.append(
                    Attempt(
                        strategy=strategy,
                        started_at=started,
                        ended_at=utcnow(),
                        error=JobError(code=exc.code, message=exc.message[:2000]),
                    )
                )
                last = exc
                continue
            attempts.append(Attempt(strategy=strategy, started_at=started, ended_at=utcnow()))
            return value, strategy
        assert last is not None
        # The page was fetched: running the same strategies again cannot do better.
        raise ExtractionError(last.code, last.message, retryable=False, attempts=attempts)

    def _strategy(
        self,
        strategy: str,
        page: CrawledPage,
        request: JobRequest,
        attempts: list[Attempt],
        deadline: float,
        spend: Any,
    ) -> Extraction:
        assert page.page is not None
        tree = page.tree or LexborHTMLParser(page.page.text)
        if strategy in MODEL_STRATEGIES:
            if not self.models_available or self.models is None:
                raise StrategyFailed("model_unavailable", NO_MODEL)
            return self._model_strategy(strategy, tree, page, request, attempts, deadline, spend)
        if strategy == "direct-css":
            assert request.selectors is not None
            try:
                found = extract_selectors(tree, request.selectors, page.page.url)
            except SelectorError as exc:
                raise StrategyFailed("invalid_selector", str(exc)) from None
            return found
        if strategy == "structured-data":
            assert request.json_schema is not None
            found = extract_structured(metadata(tree, page.page.url), request.json_schema)
            if not found.evidence:
                raise StrategyFailed(
                    "no_structured_data",
                    "no JSON-LD, microdata or OpenGraph value matched the schema",
                )
            return found
        if strategy == "content":
            meta = metadata(tree, page.page.url)
            content: dict[str, Any] = {
                "markdown": to_markdown(tree, page.page.url, main_content=True),
                "title": meta.title,
                "description": meta.description,
                "language": meta.language,
                "canonical_url": meta.canonical_url,
                "tables": extract_tables(tree),
            }
            return Extraction(data=content)
        raise StrategyFailed("unknown_strategy", f"no strategy {strategy!r}")

    def _model_strategy(
        self,
        strategy: str,
        tree: LexborHTMLParser,
        page: CrawledPage,
        request: JobRequest,
        attempts: list[Attempt],
        deadline: float,
        spend: Any,
    ) -> Extraction:
        from atlas_codex.llm.router import RouterFailed

        assert page.page is not None
        assert self.models is not None
        markdown = to_markdown(tree, page.page.url, main_content=True)
        pages = len(request.urls) if request.crawl is None else request.crawl.max_pages
        try:
            if strategy == "schema-model":
                assert request.json_schema is not None
                value = self.models.schema(
                    url=page.page.url,
                    markdown=markdown,
                    schema=dict(request.json_schema),
                    instruction=request.instruction,
                    deadline=deadline,
                    spend=spend,
                    attempts=attempts,
                    pages=pages,
                )
            else:
                assert request.instruction is not None
                value = self.models.instruction(
                    url=page.page.url,
                    markdown=markdown,
                    instruction=request.instruction,
                    deadline=deadline,
                    spend=spend,
                    attempts=attempts,
                    pages=pages,
                )
        except RouterFailed as exc:
            raise StrategyFailed(exc.code, exc.message) from None
        return Extraction(data=value)


def _unique(notes: list[str]) -> list[str]:
    return [n[:500] for n in dict.fromkeys(notes)][:20]


def _dedupe(attempts: list[Attempt]) -> list[Attempt]:
    """One attempt per (strategy, outcome) for multi-page jobs: the chain, not every page."""
    seen: set[tuple[str, str | None, str | None]] = set()
    out: list[Attempt] = []
    for a in attempts:
        key = (a.strategy, a.model, a.error.code if a.error else None)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out[:50]


def build_extractor(config: RuntimeConfig) -> Engine:
    """The factory :func:`atlas_codex.engine.interface.load_extractor` calls."""
    fetcher = Fetcher(policy=NetPolicy.from_host_ports(config.allowed_private_hosts))
    models = None
    if config.models_available:
        from atlas_codex.llm.extraction import ModelStrategies

        models = ModelStrategies(config)
    return Engine(fetcher=fetcher, models_available=config.models_available, models=models)

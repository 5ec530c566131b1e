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
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pydantic import JsonValue
from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine import quality, quoting
from atlas_codex.engine.facts.direct import (
    Extraction,
)
from atlas_codex.engine.gate import QualityGate, score
from atlas_codex.engine.pages.blocked import blocked
from atlas_codex.engine.pages.browser import Renders, shell_note
from atlas_codex.engine.pages.crawler import CrawledPage, Crawler
from atlas_codex.engine.pages.fetch import Fetcher, FetchError, FetchSession
from atlas_codex.engine.pages.store import PageStore
from atlas_codex.engine.run import CeilingReached, ExtractionRun
from atlas_codex.engine.strategies import (
    MODEL_STRATEGIES,
    NO_MODEL,
    STRATEGIES,
    StrategyFailed,
    plan,
)
from atlas_codex.extraction.contract import (
    DeadlineExceeded,
    ExtractionError,
    ExtractionTask,
    ModelBudget,
    Quote,
)
from atlas_codex.extraction.pages import PagesUnavailable
from atlas_codex.extraction.request import CrawlOptions, JobRequest, needs_model
from atlas_codex.extraction.result import (
    Cost,
    ExtractionResult,
    Failure,
    PageResult,
    Step,
)
from atlas_codex.ground import limits
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.ground.values import check_http_url, utcnow
from atlas_codex.render.result import RenderFailed

if TYPE_CHECKING:
    from atlas_codex.llm.extraction import ModelStrategies
    from atlas_codex.render.client import RenderClient

CRAWL_SHARE: Final = 0.6
"""Of the time a job has left, the share a crawl may spend fetching; the rest is for reading
the pages it got. What the crawl could not reach is handed on."""


class Engine:
    def __init__(
        self,
        *,
        fetcher: Fetcher,
        models_available: bool,
        models: ModelStrategies | None = None,
        page_store: PageStore | None = None,
        renderer: RenderClient | None = None,
    ) -> None:
        self.renderer = renderer
        """Renders pages built by JavaScript (None: no page is rendered)."""
        self.fetcher = fetcher
        self.models_available = models_available and models is not None
        self.models = models
        """:class:`atlas_codex.llm.extraction.ModelStrategies` when a key is configured."""
        self.quality_gate = QualityGate(models) if models is not None else None
        """The model strategies, each answer through the quality gate."""
        self.page_store = page_store
        """Where fetched pages are kept for re-extraction (None: not kept)."""

    def model_budget(self) -> ModelBudget | None:
        """This month's model budget and spend, where a model can be called."""
        if not self.models_available or self.models is None:
            return None
        return self.models.model_budget()

    def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
        """Gather the pages (fetched, or stored by an earlier job), read each, then end: a
        result, or the error that says why there is none (with what was done before it)."""
        from atlas_codex.llm.extraction import Spend

        chosen = plan(request, models_available=self.models_available)
        ceiling = Decimal(str(request.max_cost_usd)) if request.max_cost_usd else None
        # Without a ceiling the job is held to what its pages are quoted at most.
        spend = Spend(
            owner_id=task.owner_id, ceiling=ceiling, bound=Decimal(0) if ceiling is None else None
        )
        run = ExtractionRun(
            request=request, task=task, plan=chosen, spend=spend, fetch=self.fetcher.session()
        )
        if task.pages_of is not None:
            crawled, run.expires_at = self._stored(task.pages_of)
        else:
            crawled, run.frontier = self._gather(run)
            self._keep(run, crawled)
        renders = Renders(self.renderer, request, task.deadline, live=task.pages_of is None)
        if request.render == "always" and renders.renderer is None:
            spend.warnings.append(
                "render: always was asked, and no page was rendered: "
                + (
                    "a re-extraction reads the stored pages"
                    if task.pages_of is not None
                    else "this deployment has no browser to render pages in"
                )
            )
        for n, page in enumerate(crawled):
            crawled[n] = self._page_step(run, page, renders)
        if renders.any:
            self._keep(run, crawled)  # re-extraction reads what was extracted from
        return self._finish(run)

    def _keep(self, run: ExtractionRun, crawled: list[CrawledPage]) -> None:
        """Store the pages for re-extraction under the job (when this deployment keeps them)."""
        if run.task.job_id is not None and self.page_store is not None and crawled:
            run.expires_at = self.page_store.save(run.task.job_id, crawled).expires_at

    def _page_step(self, run: ExtractionRun, page: CrawledPage, renders: Renders) -> CrawledPage:
        """Read one page into the run (its result, its data, the strategy that served); the
        page as read (rendered, if it was). A page that cannot be read sinks a one-page job
        (the error is raised) but only itself in a crawl."""
        if run.stopped is not None:
            run.pages.append(_skipped_page(page.url, run.stopped))
            return page
        if page.error is not None:
            run.pages.append(_failed_page(page.url, page.error))
            return page
        assert page.page is not None
        why = renders.first(page)
        if why is not None:
            try:
                page = renders.render(page, why)
            except RenderFailed as exc:
                retry = exc.code in ("render_unavailable", "render_failed")
                failure = FetchError(exc.code, exc.reason, retryable=retry)
                run.pages.append(_failed_page(page.url, failure))
                return page
            renders.helped(page)
        assert page.page is not None
        wall = blocked(page.parsed(), page.page.text)
        if wall is not None:
            if not run.plan.navigation:
                raise ExtractionError(wall.code, wall.message, attempts=_dedupe(run.attempts))
            run.pages.append(
                _failed_page(page.url, FetchError(wall.code, wall.message, status=page.page.status))
            )
            return page
        try:
            page, found, strategy = self._read(run, page, renders)
            assert page.page is not None
        except CeilingReached as exc:
            run.stopped = exc
            run.pages.append(_skipped_page(page.url, exc))
            return page
        except ExtractionError as exc:
            shell = shell_note(renders.latest(page), renders)
            if shell is not None:
                exc.message = f"{exc.message}; {shell}"
            if not run.plan.navigation:
                exc.done = self._outcome(run, None, run.pages, "", run.expires_at)
                raise
            # One page the strategies could not read does not sink the crawl.
            error = Failure(code=exc.code, message=exc.message)
            run.pages.append(PageResult(url=page.url, status="failed", error=error))
            return page
        run.served.add(strategy)
        if quality.gave_nothing(found.problems):
            shell = shell_note(page, renders)
            if shell is not None:
                found.problems.append(shell)
        run.pages.append(
            PageResult(
                url=page.url,
                status="ok",
                http_status=page.page.status,
                strategy=strategy,
                evidence={
                    path: e.model_copy(update={"url": page.page.url})
                    for path, e in found.evidence.items()
                },
                missing=found.missing,
                unverified=found.unverified,
                quality_problems=found.problems,
                view=found.view,
                rendered=renders.of(page),
            )
        )
        run.data.append(
            found.data if not run.plan.navigation else {"url": page.url, "data": found.data}
        )
        return page

    def _finish(self, run: ExtractionRun) -> ExtractionResult:
        """The run's result, or the error that ends it: the cost ceiling reached, no page
        read (the pages' own errors), or nothing extracted from the pages read."""
        strategy = "+".join(sorted(run.served))
        strategy = f"navigation({strategy})" if run.plan.navigation else strategy
        data = run.data
        result_data: JsonValue = data if run.plan.navigation else (data[0] if data else None)
        outcome = self._outcome(run, result_data, run.pages, strategy, run.expires_at)
        frontier, stopped, pages = run.frontier, run.stopped, run.pages
        if frontier and stopped is None:
            outcome = outcome.model_copy(
                update={
                    "frontier": frontier,
                    "quality": "partial",
                    "quality_reasons": _unique(
                        [
                            *outcome.quality_reasons,
                            f"the crawl's time ran out with {len(frontier)} page"
                            f"{'s' if len(frontier) > 1 else ''} still to read: handed on",
                        ]
                    ),
                }
            )
        if stopped is not None:
            stopped.done = outcome
            raise stopped
        if not data:
            errors = [p.error for p in pages if p.error is not None]
            if not errors:
                raise (
                    DeadlineExceeded()
                    if time.monotonic() > run.deadline
                    else ExtractionError("no_pages", "no page was fetched", done=outcome)
                )
            first = errors[0]
            raise ExtractionError(
                first.code,
                first.message,
                retryable=all(e.retryable for e in errors),
                attempts=outcome.attempts,
                done=outcome,
            )
        read = [p for p in pages if p.status == "ok"]
        if all(quality.gave_nothing(p.quality_problems) for p in read):
            raise ExtractionError(
                "empty_extraction",
                f"nothing was extracted from {len(read)} page{'s' if len(read) > 1 else ''}: "
                + "; ".join(dict.fromkeys(p for page in read for p in page.quality_problems)),
                attempts=outcome.attempts,
                done=outcome,
            )
        return outcome

    def _read(
        self, run: ExtractionRun, page: CrawledPage, renders: Renders
    ) -> tuple[CrawledPage, Extraction, str]:
        """The page's extraction, from the server's HTML or, when that gave nothing (or an
        app shell left fields missing) and the page runs scripts, from the page rendered in
        the browser, whichever answers better."""
        try:
            found, strategy = self._run_chain(run, page)
        except CeilingReached:
            raise
        except ExtractionError as exc:
            why = renders.after(page, None)
            if why is None:
                raise
            try:
                rendered = renders.render(page, why)
            except RenderFailed as failed:
                exc.message = f"{exc.message}; rendering the page failed ({failed})"
                raise exc from None
            found, strategy = self._run_chain(run, rendered)
            renders.helped(rendered)
            return rendered, found, strategy
        why = renders.after(page, found.problems)
        if why is None:
            return page, found, strategy
        try:
            rendered = renders.render(page, why)
            better, how = self._run_chain(run, rendered)
        except RenderFailed as failed:
            found.problems.append(f"rendering the page failed ({failed})")
            return page, found, strategy
        except CeilingReached:
            raise
        except ExtractionError:
            return page, found, strategy
        if score(better.problems) <= score(found.problems):
            renders.helped(rendered)
            return rendered, better, how
        return page, found, strategy

    def _outcome(
        self,
        run: ExtractionRun,
        data: JsonValue,
        pages: list[PageResult],
        strategy: str,
        expires_at: datetime | None,
    ) -> ExtractionResult:
        spend = run.spend
        reasons = [f"{p.url}: {'; '.join(p.quality_problems)}" for p in pages if p.quality_problems]
        unverified = sum(len(p.unverified) for p in pages)
        warnings = list(spend.warnings)
        if unverified:
            warnings.append(
                f"{unverified} value{'s' if unverified > 1 else ''} came with a quote that is "
                "not in the page or does not state the value (see each page's 'unverified')"
            )
        # A value its evidence does not hold up is not a complete answer.
        reasons += [
            f"{p.url}: not held up by its quote (not in the page, or not stating the value): "
            + ", ".join(p.unverified)
            for p in pages
            if p.unverified
        ]
        not_read = [p for p in pages if p.status != "ok"]
        if not_read and len(not_read) < len(pages):
            reasons.append(f"{len(not_read)} of {len(pages)} pages could not be read")
        return ExtractionResult(
            data=data,
            pages=pages,
            strategy=strategy or "none",
            attempts=_dedupe(run.attempts),
            model=spend.models[-1] if spend.models else None,
            cost=Cost(estimated_usd=float(spend.estimated), actual_usd=float(spend.actual)),
            routing=_unique(spend.decisions),
            warnings=_unique(warnings),
            quality="partial" if reasons else "complete",
            quality_reasons=_unique(reasons),
            expires_at=expires_at,
        )

    def _stored(self, job_id: str) -> tuple[list[CrawledPage], datetime]:
        if self.page_store is None:
            raise ExtractionError("pages_unavailable", "this deployment keeps no fetched pages")
        try:
            manifest, crawled = self.page_store.load(job_id)
        except PagesUnavailable as exc:
            raise ExtractionError("pages_unavailable", str(exc)) from None
        return crawled, manifest.expires_at

    def _gather(self, run: ExtractionRun) -> tuple[list[CrawledPage], list[str]]:
        """The pages to read, and what a crawl stopped by its deadline left unread (within
        its page budget) to hand on."""
        request, deadline = run.request, run.deadline
        if run.plan.navigation:
            options = request.crawl or CrawlOptions(max_pages=len(request.urls), max_depth=0)
            now = time.monotonic()
            crawler = Crawler(
                run.fetch,
                options,
                respect_robots=request.respect_robots_txt,
                deadline=now + max(deadline - now, 0) * CRAWL_SHARE,
                cancelled=run.task.cancelled,
                rank=self._link_ranker(run),
            )
            crawled = sorted(crawler.crawl(list(request.urls)), key=lambda p: p.order)
            left: list[str] = []
            if crawler.state.stopped_by == "deadline":
                budget = options.max_pages - crawler.state.fetched
                left = [url for url, _ in crawler.state.frontier if _acceptable(url)]
                left = left[: max(budget, 0)]
            return crawled, left[: limits.MAX_URLS_PER_JOB]
        if time.monotonic() > deadline:
            raise DeadlineExceeded()
        return [self._fetch_one(request, run.fetch)], []

    def quote(self, request: JobRequest, *, deadline: float) -> Quote:
        """What the job will cost, from its first pages fetched now; no model is called."""
        quote = self._quote(request, deadline=deadline)
        budget = self.model_budget() if quote.models_available else None
        if budget is not None and budget.spent:
            note = (
                f"budget_exceeded: this month's model budget (${budget.limit_usd:.2f}) is spent "
                f"(${budget.spent_usd:.2f}): no model call can be made this month"
            )
            return quote.model_copy(update={"notes": [*quote.notes, note]})
        return quote

    def _quote(self, request: JobRequest, *, deadline: float) -> Quote:
        return quoting.quote(
            request,
            deadline=deadline,
            fetcher=self.fetcher.session(),
            models=self.models,
            models_available=self.models_available,
            renders=self.renderer is not None,
        )

    def _link_ranker(self, run: ExtractionRun) -> Callable[[list[Any]], list[Any]] | None:
        """With a model, navigation follows the links it ranks toward the job's goal."""
        request = run.request
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
                goal=goal,
                links=found,
                deadline=run.deadline,
                spend=run.spend,
                attempts=run.attempts,
            )
            return ranked

        return rank

    def _fetch_one(self, request: JobRequest, fetch: FetchSession) -> CrawledPage:
        url = request.urls[0]
        try:
            page = fetch.fetch_document(url, respect_robots=request.respect_robots_txt)
        except FetchError as exc:
            raise ExtractionError(
                exc.code, exc.message, retryable=exc.retryable, retry_after_s=exc.retry_after_s
            ) from None
        return CrawledPage(url=page.url, depth=0, page=page, tree=LexborHTMLParser(page.text))

    def _run_chain(self, run: ExtractionRun, page: CrawledPage) -> tuple[Extraction, str]:
        """The first strategy whose output passes; an empty one gives the next its chance,
        and is served only when no later strategy does better."""
        chain, request, attempts, spend = run.plan.chain, run.request, run.attempts, run.spend
        last: StrategyFailed | None = None
        refused: StrategyFailed | None = None
        vacant: tuple[Extraction, str] | None = None
        known: Extraction | None = None
        """Product facts read from the page before a model: the model is asked for the rest."""
        failures: list[StrategyFailed] = []
        model_failure: StrategyFailed | None = None
        asks_a_model = needs_model(request, "async") is not None

        def served(value: Extraction, strategy: str) -> tuple[Extraction, str]:
            """A model step that did not answer is never a plain success: what served
            instead is partial, with the model's failure as its reason and a warning."""
            if model_failure is None or strategy in MODEL_STRATEGIES:
                return value, strategy
            if model_failure.code == "model_unavailable" and not asks_a_model:
                return value, strategy  # no key: the deterministic path is the design
            note = (
                f"the model step failed ({model_failure.code}: {model_failure.message[:300]}); "
                f"{strategy} served instead"
            )
            value.problems.append(note)
            spend.warnings.append(note)
            return value, strategy

        for n, strategy in enumerate(chain):
            started = utcnow()
            try:
                value = (
                    self._gate().extract(run, strategy, page, known)
                    if known is not None and strategy in MODEL_STRATEGIES and self._has_models()
                    else self._strategy(run, strategy, page)
                )
            except StrategyFailed as exc:
                attempts.append(
                    Step(
                        strategy=strategy,
                        started_at=started,
                        ended_at=utcnow(),
                        error=Failure(code=exc.code, message=exc.message),
                    )
                )
                if exc.code == "cost_ceiling_reached":
                    raise CeilingReached(exc.message) from None
                if exc.code == "budget_exceeded":
                    refused = exc
                if strategy in MODEL_STRATEGIES:
                    model_failure = exc
                failures.append(exc)
                last = exc
                continue
            attempts.append(Step(strategy=strategy, started_at=started, ended_at=utcnow()))
            later_model = any(s in MODEL_STRATEGIES for s in chain[n + 1 :])
            if strategy == "structured-data" and later_model and value.missing:
                # Not complete: a model reads the page for the missing fields only; what was
                # found is kept (and served if no model answers).
                if not quality.gave_nothing(value.problems):
                    known = value
                    vacant = vacant or (value, strategy)
                    spend.decisions.append(
                        "product facts read from the page: "
                        + (", ".join(k for k, v in value.data.items() if v is not None) or "none")
                        + f"; a model is asked for {', '.join(value.missing)}"
                    )
                else:
                    vacant = vacant or (value, strategy)
                continue
            if strategy == "structured-data" and later_model:
                spend.decisions.append(
                    "product facts complete from the page's data and buy box: no model call"
                )
            if quality.gave_nothing(value.problems):
                vacant = vacant or (value, strategy)
                continue
            return served(value, strategy)
        if vacant is not None:
            return served(*vacant)
        assert last is not None
        # What the client must act on first: the budget; else, for a job only a model can
        # answer, the model's failure; else what the page lacks (a missing model key is a
        # fact of the stage, said beside it); the other failures follow.
        # A model that was asked and failed was the step that could have answered: its
        # failure leads (the page's own data had already come up short).
        model_fault = model_failure is not None and model_failure.code != "model_unavailable"
        lead = (
            refused
            or (model_failure if asks_a_model or model_fault else None)
            or next((f for f in failures if f.code != "model_unavailable"), last)
        )
        others = [f for f in failures if f is not lead]
        if others:
            also = "; ".join(f"{f.code}: {f.message}" for f in others)
            last = StrategyFailed(
                lead.code,
                f"{lead.message} (then {also})",
                retryable=lead.retryable,
                retry_after_s=lead.retry_after_s,
            )
        else:
            last = lead
        # The page was fetched: running the same strategies again cannot do better, unless
        # the models that could answer were all cooling down: released, tried again later.
        raise ExtractionError(
            last.code,
            last.message,
            retryable=lead.retryable,
            attempts=attempts,
            retry_after_s=lead.retry_after_s,
        )

    def _strategy(self, run: ExtractionRun, strategy: str, page: CrawledPage) -> Extraction:
        if strategy in MODEL_STRATEGIES:
            if not self._has_models():
                raise StrategyFailed("model_unavailable", NO_MODEL)
            return self._gate().extract(run, strategy, page)
        read = STRATEGIES.get(strategy)
        if read is None:
            raise StrategyFailed("unknown_strategy", f"no strategy {strategy!r}")
        return read(run.request, page)

    def _gate(self) -> QualityGate:
        assert self.quality_gate is not None
        return self.quality_gate

    def _has_models(self) -> bool:
        return self.models_available and self.models is not None


def _acceptable(url: str) -> bool:
    """A URL a job may be given (a link can be longer than a request allows)."""
    try:
        check_http_url(url)
    except ValueError:
        return False
    return True


def _failed_page(url: str, error: FetchError) -> PageResult:
    return PageResult(
        url=url,
        status="failed",
        http_status=error.status,
        error=Failure(
            code=error.code,
            message=error.message,
            retryable=error.retryable,
        ),
    )


def _skipped_page(url: str, stop: ExtractionError) -> PageResult:
    return PageResult(
        url=url,
        status="skipped",
        error=Failure(code=stop.code, message=stop.message),
    )


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


def _dedupe(attempts: list[Step]) -> list[Step]:
    """The steps a job reports: every billed model call as its own entry (their costs sum
    to the job's), and one entry per (strategy, outcome) of the unbilled ones (for a crawl:
    the chain, not every page)."""
    seen: set[tuple[str, str | None, str | None]] = set()
    out: list[Step] = []
    for a in attempts:
        if _billed(a):
            out.append(a)
            continue
        key = (a.strategy, a.model, a.error.code if a.error else None)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _billed(attempt: Step) -> bool:
    return bool(attempt.cost_usd or attempt.input_tokens or attempt.output_tokens)


def build_extractor(config: RuntimeConfig) -> Engine:
    """The engine of a function's configuration (``atlas_codex.wiring.extractor``)."""
    from atlas_codex.render.client import render_client_for

    fetcher = Fetcher(policy=NetPolicy.from_host_ports(config.allowed_private_hosts))
    models = None
    if config.models_available:
        from atlas_codex.llm.extraction import ModelStrategies

        models = ModelStrategies(config)
    return Engine(
        fetcher=fetcher,
        models_available=config.models_available,
        models=models,
        page_store=PageStore.for_config(config),
        renderer=render_client_for(config),
    )

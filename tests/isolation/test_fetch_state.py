"""What one job's sites set (cookies) stays with that job: the next job, any owner, on any
path that fetches (one page, a crawl, a quote), sends none of it; a crawl keeps its own
session across its pages."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.extraction.contract import ExtractionTask
from atlas_codex.extraction.request import JobRequest
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.record import CreateJobRequest
from tests.support.functions import api_with, worker_with
from tests.support.memory_site import MemorySite
from tests.support.pollers import pollers, run_pollers, unfinished

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}}


class SessionSite(MemorySite):
    """A site that gives every visitor without a session one (``Set-Cookie``, HttpOnly)
    and records the Cookie header of every request."""

    def __init__(self) -> None:
        links = "".join(f'<a href="/p/{n}">item {n}</a>' for n in range(1, 4))
        page = f"<html><head><title>Shop</title></head><body><h1>Shop</h1>{links}</body></html>"
        super().__init__(default=self._answer)
        self.html = page
        self.cookies: list[tuple[str, str | None]] = []
        self._ids = itertools.count(1)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        sent = request.headers.get("cookie")
        self.cookies.append((request.url.path, sent))
        headers = {"content-type": "text/html"}
        if not sent:
            headers["set-cookie"] = f"session=S{next(self._ids)}; Path=/; HttpOnly"
        return httpx.Response(200, text=self.html, headers=headers)

    def sent_since(self, mark: int) -> list[str | None]:
        return [cookie for path, cookie in self.cookies[mark:] if path != "/robots.txt"]


@pytest.fixture
def site() -> SessionSite:
    return SessionSite()


@pytest.fixture
def engine(site: SessionSite) -> Engine:
    """One engine (one fetcher, one connection pool) for every job, as a function keeps it."""
    return Engine(fetcher=site.fetcher(), models_available=False)


def _job(owner: str, **extra: object) -> tuple[JobRequest, ExtractionTask]:
    request = JobRequest.model_validate(
        {"urls": ["http://127.0.0.1/p/1"], "json_schema": SCHEMA, **extra}
    )
    task = ExtractionTask.within(20)
    return request, ExtractionTask(deadline=task.deadline, owner_id=owner)


def test_a_cookie_set_in_one_job_is_never_sent_by_the_next(
    engine: Engine, site: SessionSite
) -> None:
    engine.extract(*_job("owner-a"))
    assert site.sent_since(0) == [None]  # A was given session=S1
    mark = len(site.cookies)

    engine.extract(*_job("owner-b"))

    assert site.sent_since(mark) == [None]


def test_a_crawl_keeps_its_own_session_and_leaves_it_behind(
    engine: Engine, site: SessionSite
) -> None:
    crawl = {"crawl": {"max_pages": 4, "max_depth": 1}, "urls": ["http://127.0.0.1/"]}
    engine.extract(*_job("owner-a", **crawl))
    first = site.sent_since(0)
    assert len(first) == 4
    assert first[0] is None
    assert set(first[1:]) == {"session=S1"}  # its later pages carry the session it was given
    mark = len(site.cookies)

    engine.extract(*_job("owner-b", **crawl))

    second = site.sent_since(mark)
    assert second[0] is None
    assert "session=S1" not in second


def test_a_quote_neither_sends_nor_keeps_a_jobs_cookies(engine: Engine, site: SessionSite) -> None:
    engine.extract(*_job("owner-a"))
    mark = len(site.cookies)

    engine.quote(_job("owner-b")[0], deadline=ExtractionTask.within(10).deadline)
    engine.extract(*_job("owner-c"))

    assert site.sent_since(mark) == [None, None]


def test_the_shared_fetcher_keeps_no_cookie_between_fetches(site: SessionSite) -> None:
    fetcher = site.fetcher()
    fetcher.fetch("http://127.0.0.1/p/1")
    fetcher.fetch("http://127.0.0.1/p/1")

    assert site.sent_since(0) == [None, None]
    assert not list(fetcher.client.cookies.jar)


def test_no_cookie_crosses_owners_on_the_sync_and_worker_paths(config: RuntimeConfig) -> None:
    """The functions keep one engine (one fetcher) for every owner's job: the api answering
    /extract inline, the worker running queued jobs."""
    site = SessionSite()
    engine = Engine(fetcher=site.fetcher(), models_available=False)
    api, worker = api_with(config, engine), worker_with(config, engine)

    def body(kind: str) -> CreateJobRequest:
        return CreateJobRequest.model_validate(
            {"urls": ["http://127.0.0.1/p/1"], "json_schema": SCHEMA, "type": kind}
        )

    for owner in ("owner-a", "owner-b"):
        answered = api.service.extract_now(
            owner_id=owner,
            request=body("sync"),
            correlation_id=f"sync-{owner}",
            idempotency_key=None,
            deadline=time.monotonic() + 20,
        )
        assert answered.finished
    for owner in ("owner-c", "owner-d"):
        api.service.submit(
            owner_id=owner,
            request=body("async"),
            correlation_id=f"async-{owner}",
            idempotency_key=None,
        )
        run_pollers(
            pollers(worker, config, 1),
            lambda: unfinished(worker) == 0,
            seconds=60,
            check_every_s=0.2,
            worker=worker,
        )

    assert site.sent_since(0) == [None, None, None, None]  # four owners, four fresh visits

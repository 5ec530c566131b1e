"""Navigation-aware crawling: breadth-first within the site, yielding pages as they arrive.

The crawl keeps to the start URL's site by default (``www.`` ignored), honours include and
exclude globs, a maximum depth and page count, robots.txt (and its crawl-delay), seeds
from sitemap.xml on request, follows pagination ("next" links) without spending depth,
and stops at its deadline, so a Lambda can hand the rest of the frontier on.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine.pages.fetch import FetchError, Page, PageSource
from atlas_codex.engine.reading.consensus import main_markdown
from atlas_codex.engine.reading.html import Link, links, parse
from atlas_codex.extraction.request import CrawlOptions
from atlas_codex.ground import limits

_TRACKING: Final = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref_src)$", re.I)
_NEXT_TEXT: Final = re.compile(
    "^\\s*(next|next page|older|weiter|suivant|siguiente|\u203a|\u00bb|>|\u2192)\\s*[\u203a\u00bb>\u2192]?\\s*$",
    re.I,
)
_LOC: Final = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.I)
DEFAULT_CONCURRENCY: Final = limits.CRAWL_CONCURRENCY


def normalize(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, no fragment,
    no tracking parameters, '/' for an empty path."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


@dataclass
class CrawledPage:
    url: str
    depth: int
    order: int = 0
    """The order the crawl admitted this page in: pages arrive in completion order, and
    sorting by ``order`` gives back the crawl's own (start URLs first, as given)."""
    page: Page | None = None
    tree: LexborHTMLParser | None = None
    error: FetchError | None = None
    _markdown: str | None = field(default=None, repr=False)

    def parsed(self) -> LexborHTMLParser:
        """The page's tree, parsed once (a page served as another type is parsed on demand)."""
        assert self.page is not None, "a page that failed has no tree"
        if self.tree is None:
            self.tree = parse(self.page.text)
        return self.tree

    def made_markdown(self) -> str | None:
        """The main-content markdown if a reader has made it already, else None."""
        return self._markdown

    def main_markdown(self) -> str:
        """The page's main content as markdown (:mod:`atlas_codex.engine.reading.consensus`), made
        once for every reader (the strategies, the model view, the stored copy)."""
        if self._markdown is None:
            assert self.page is not None
            self._markdown = main_markdown(self.page.text, self.page.url, self.parsed())
        return self._markdown


@dataclass
class CrawlState:
    """What is left when the crawl stops early (deadline, cancel): the frontier to hand on."""

    frontier: list[tuple[str, int]] = field(default_factory=list)
    fetched: int = 0
    stopped_by: str | None = None


@dataclass(frozen=True)
class Onward:
    """What a crawl would follow from one page (:meth:`Crawler.onward`)."""

    deeper: int
    """Distinct new pages one level deeper."""
    next_pages: int
    """Pagination links (followed without spending depth)."""
    first: tuple[str, ...] = ()
    """A sample of the deeper pages spread over the page's order, first to last: which of
    them a crawl reads first depends on how its links are ranked, so a sample from all of
    them stands for the crawl better than the first few."""


def _spread(items: list[str], most: int) -> tuple[str, ...]:
    """Up to ``most`` of ``items``, evenly spaced from the first to the last."""
    if len(items) <= most:
        return tuple(items)
    if most <= 1:
        return tuple(items[:most])
    step = (len(items) - 1) / (most - 1)
    return tuple(items[round(n * step)] for n in range(most))


def _is_next(link: Link) -> bool:
    return "next" in link.rel.lower().split() or bool(_NEXT_TEXT.match(link.text))


class Crawler:
    def __init__(
        self,
        fetcher: PageSource,
        options: CrawlOptions,
        *,
        respect_robots: bool = True,
        deadline: float | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        cancelled: Callable[[], bool] = lambda: False,
        rank: Callable[[list[Link]], list[Link]] | None = None,
    ) -> None:
        """``rank`` orders a page's new links best first (a model choosing the links toward
        the job's goal); the crawler keeps its budget, depth and filters whatever the order."""
        self.rank = rank
        self.fetcher = fetcher
        self.options = options
        self.respect_robots = respect_robots
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.cancelled = cancelled
        self.state = CrawlState()
        self._last_fetch: dict[str, float] = {}
        self._delay_lock = threading.Lock()

    def allowed(self, url: str, sites: set[str]) -> bool:
        if urlsplit(url).scheme not in ("http", "https"):
            return False
        if self.options.same_site and _site(url) not in sites:
            return False
        if self.options.include and not any(
            fnmatch.fnmatchcase(url, p) for p in self.options.include
        ):
            return False
        return not any(fnmatch.fnmatchcase(url, p) for p in self.options.exclude)

    def onward(
        self, tree: LexborHTMLParser, url: str, start_urls: list[str], *, sample: int
    ) -> Onward:
        """The links a crawl from ``start_urls`` would follow from this start page: the
        distinct new pages one level deeper (and ``sample`` of them, spread over them all),
        and the pagination ("next") links."""
        sites = {_site(u) for u in start_urls}
        seen = {normalize(u) for u in start_urls}
        deeper: dict[str, None] = {}  # in document order
        following: set[str] = set()
        for n, _, is_next in self._new_links(tree, url, seen, sites):
            if is_next:
                following.add(n)
            else:
                deeper[n] = None
        return Onward(
            deeper=len(set(deeper) - following),
            next_pages=len(following),
            first=_spread([u for u in deeper if u not in following], sample),
        )

    def crawl(self, start_urls: list[str]) -> Iterator[CrawledPage]:
        sites = {_site(u) for u in start_urls}
        seen: set[str] = set()
        frontier: deque[tuple[str, int]] = deque()
        for url in start_urls:
            n = normalize(url)
            if n not in seen:
                seen.add(n)
                frontier.append((n, 0))
        if self.options.use_sitemap:
            for url in self._sitemap(start_urls[0]):
                n = normalize(url)
                if n not in seen and self.allowed(n, sites):
                    seen.add(n)
                    frontier.append((n, 1))
        budget = self.options.max_pages
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="crawl") as pool:
            running: dict[Future[CrawledPage], tuple[str, int]] = {}
            while frontier or running:
                while frontier and len(running) < self.concurrency and self.state.fetched < budget:
                    if self._should_stop():
                        break
                    url, depth = frontier.popleft()
                    self.state.fetched += 1
                    running[pool.submit(self._fetch, url, depth, self.state.fetched)] = (url, depth)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    crawled = future.result()
                    if crawled.tree is not None and crawled.page is not None:
                        found: list[Link] = []
                        new = self._new_links(crawled.tree, crawled.page.url, seen, sites)
                        for n, link, is_next in new:
                            depth = crawled.depth if is_next else crawled.depth + 1
                            if depth > self.options.max_depth:
                                continue
                            seen.add(n)
                            if is_next:
                                frontier.appendleft((n, depth))
                            else:
                                found.append(Link(url=n, text=link.text, rel=link.rel))
                        for link in self._ranked(found):
                            frontier.append((link.url, crawled.depth + 1))
                    yield crawled
                if self._should_stop():
                    break
            # Fetches still running when the crawl stopped are not read here: hand them on too.
            for future in running:
                future.cancel()
            self.state.frontier = [*running.values(), *frontier]
            self.state.fetched -= len(running)

    def _new_links(
        self, tree: LexborHTMLParser, page_url: str, seen: set[str], sites: set[str]
    ) -> Iterator[tuple[str, Link, bool]]:
        """The page's links the crawl may follow and has not met (``seen`` is read as the
        caller adds to it), each normalised, with whether it is a next page."""
        for link in links(tree, page_url):
            n = normalize(link.url)
            if n in seen or not self.allowed(n, sites):
                continue
            yield n, link, self.options.follow_pagination and _is_next(link)

    def _ranked(self, found: list[Link]) -> list[Link]:
        if self.rank is None or len(found) < 2:
            return found
        try:
            ranked = self.rank(found)
        except Exception:  # a ranking that fails leaves the document order
            return found
        by_url = {link.url: link for link in found}
        ordered = [by_url[link.url] for link in ranked if link.url in by_url]
        return ordered + [link for link in found if link not in ordered]

    def _should_stop(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.state.stopped_by = "deadline"
            return True
        if self.cancelled():
            self.state.stopped_by = "cancelled"
            return True
        return False

    def _politeness(self, url: str) -> None:
        delay = self.fetcher.crawl_delay(url) if self.respect_robots else 0.0
        if delay <= 0:
            return
        host = urlsplit(url).netloc
        with self._delay_lock:
            now = time.monotonic()
            wait_s = max(0.0, self._last_fetch.get(host, 0.0) + delay - now)
            self._last_fetch[host] = now + wait_s
        if wait_s:
            time.sleep(wait_s)

    def _fetch(self, url: str, depth: int, order: int) -> CrawledPage:
        try:
            if self.respect_robots:
                self.fetcher.allowed_by_robots(url, deadline=self.deadline)
            self._politeness(url)
            page = self.fetcher.fetch_document(
                url, respect_robots=self.respect_robots, deadline=self.deadline
            )
        except FetchError as exc:
            return CrawledPage(url=url, depth=depth, order=order, error=exc)
        tree = parse(page.text) if "html" in page.content_type or not page.content_type else None
        return CrawledPage(url=url, depth=depth, order=order, page=page, tree=tree)

    def _sitemap(self, start_url: str) -> list[str]:
        parts = urlsplit(start_url)
        try:
            page = self.fetcher.fetch(
                f"{parts.scheme}://{parts.netloc}/sitemap.xml",
                respect_robots=self.respect_robots,
                deadline=self.deadline,
            )
        except FetchError:
            return []
        return _LOC.findall(page.text)[: self.options.max_pages * 4]

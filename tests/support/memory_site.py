"""The test site in memory: pages served at ``http://127.0.0.1/<path>`` to the real fetcher
through an httpx transport (no socket), every request counted. The loopback server of
``tests/site.py`` is for what must cross a socket (the browser, local mode, the console)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from atlas_codex.engine.pages.fetch import Fetcher
from atlas_codex.ground.netguard import NetPolicy

Page = str | Callable[[httpx.Request], httpx.Response]
"""A page's HTML, or a function answering the request (a failure, a slow answer)."""


class MemorySite:
    """``pages`` by path; ``default`` answers every other path (None: 404). robots.txt is
    absent (404) unless listed."""

    def __init__(self, pages: Mapping[str, Page] | None = None, *, default: Page | None = None):
        self.pages = dict(pages or {})
        self.default = default
        self.fetches: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.fetches.append(path)
        page = self.pages.get(path)
        if page is None and path != "/robots.txt":
            page = self.default
        if page is None:
            return httpx.Response(404)
        if callable(page):
            return page(request)
        return httpx.Response(200, text=page, headers={"content-type": "text/html"})

    def fetcher(self) -> Fetcher:
        """The real fetcher, allowed to reach this site (a listed private host:port) only."""
        return Fetcher(
            policy=NetPolicy(allowed_private=frozenset({("127.0.0.1", 80)})),
            client=httpx.Client(transport=httpx.MockTransport(self)),
        )

"""Pages built by JavaScript, as one job meets them: which pages are rendered in the browser
(before reading, when the job or an earlier page of the site says so; after, when the
server's HTML gave nothing and the page runs scripts), what each render was, and why an
empty page may be empty."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine import quality
from atlas_codex.engine.pages.crawler import CrawledPage
from atlas_codex.engine.reading import hydration
from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import Rendering
from atlas_codex.ground import limits
from atlas_codex.render.result import RenderFailed

if TYPE_CHECKING:
    from atlas_codex.render.client import RenderClient


def shell_note(page: CrawledPage, renders: Renders) -> str | None:
    """Why an empty page may be empty: it is built by JavaScript in the browser, and the
    data it ships (if any) did not answer the job; rendered, or no browser to render it."""
    if renders.of(page) is not None:
        return "rendered in a browser, the page still showed nothing the job asks for"
    shell = hydration.app_shell(page.parsed())
    if shell is None:
        return None
    if renders.renderer is None:
        return (
            f"the page is built by JavaScript in the browser ({shell}); this deployment reads "
            "the HTML the server sends and the data it ships with it, and renders no page"
        )
    if renders.request.render == "never":
        return (
            f"the page is built by JavaScript in the browser ({shell}); the job said render: never"
        )
    return None


RENDER_MARGIN_S: Final = 2.0
"""Time kept after a render for the extraction of what it rendered."""


class Renders:
    """When a job's pages are rendered in the browser, and what each render was."""

    def __init__(
        self, renderer: RenderClient | None, request: JobRequest, deadline: float, *, live: bool
    ) -> None:
        self.renderer = renderer if live else None  # re-extraction reads the stored pages
        self.request = request
        self.deadline = deadline
        self.hosts: set[str] = set()
        """Sites whose pages needed a browser in this job: their next pages are rendered."""
        self.any = False
        self._made: dict[int, tuple[CrawledPage, Rendering]] = {}
        self._latest: dict[str, CrawledPage] = {}

    def first(self, page: CrawledPage) -> str | None:
        """Why the page is rendered before it is read, or None (read the server's HTML)."""
        if self.renderer is None or self.request.render == "never":
            return None
        if self.request.render == "always":
            return "the job asks for every page rendered (render: always)"
        host = _host(page.url)
        if host in self.hosts:
            return f"{host} builds its pages in the browser (an earlier page of this job)"
        return None

    def after(self, page: CrawledPage, problems: list[str] | None) -> str | None:
        """Why the page is rendered after its HTML was read (``problems`` None: reading it
        failed), or None. Only pages that run scripts: rendering cannot change the rest."""
        if self.renderer is None or self.request.render != "auto" or self.of(page) is not None:
            return None
        if not _runs_scripts(page.parsed()):
            return None
        shell = hydration.app_shell(page.parsed())
        if problems is None or quality.gave_nothing(problems):
            return shell or "the page's HTML gave nothing to extract, and the page runs scripts"
        if shell is not None and problems:
            return f"{shell}; the HTML and the data it ships left {len(problems)} problem(s)"
        return None

    def render(self, page: CrawledPage, why: str) -> CrawledPage:
        assert self.renderer is not None
        assert page.page is not None
        left = self.deadline - time.monotonic() - RENDER_MARGIN_S
        if left < 1:
            raise RenderFailed("deadline_exceeded", "no time was left to render the page")
        done = self.renderer.render(
            page.page.url,
            wait_for=self.request.wait_for,
            timeout_s=min(limits.RENDER_TIMEOUT_S, left),
            max_bytes=limits.RENDER_MAX_BYTES,
        )
        rendered = CrawledPage(
            url=page.url,
            depth=page.depth,
            order=page.order,
            page=replace(
                page.page,
                url=done.url or page.page.url,
                status=done.status or page.page.status,
                text=done.html,
                content_type="text/html",
                encoding="utf-8",
            ),
        )
        record = Rendering(
            reason=why,
            ms=done.elapsed_ms,
            waited=done.waited,
            truncated=done.truncated,
        )
        self._made[id(rendered)] = (rendered, record)
        self._latest[page.url] = rendered
        return rendered

    def helped(self, rendered: CrawledPage) -> None:
        """The rendered page is the one read: its site's next pages are rendered first."""
        self.hosts.add(_host(rendered.url))
        self.any = True

    def of(self, page: CrawledPage) -> Rendering | None:
        made = self._made.get(id(page))
        return made[1] if made is not None and made[0] is page else None

    def latest(self, page: CrawledPage) -> CrawledPage:
        """The last version of ``page`` read (rendered, if it was)."""
        return self._latest.get(page.url, page)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


_SCRIPT_TYPES: Final = ("", "text/javascript", "application/javascript", "module")


def _runs_scripts(tree: LexborHTMLParser) -> bool:
    return any(
        (node.attributes.get("type") or "").strip().lower() in _SCRIPT_TYPES
        for node in tree.css("script")
    )

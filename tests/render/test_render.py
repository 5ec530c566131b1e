"""Pages built by JavaScript, rendered in the browser of @sparticuz/chromium behind the SSRF
proxy: what a script draws is read, only when a page needs it, and nothing the page does
reaches an address the policy refuses (a canary server counts every attempt)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.engine.pages.fetch import Fetcher
from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
from atlas_codex.extraction.request import JobRequest
from atlas_codex.ground.netguard import DEFAULT_PORTS, NetPolicy
from atlas_codex.render.renderer import Renderer
from atlas_codex.render.result import Rendered, RenderFailed
from tests.site import JS_PRODUCT, PRODUCT_SCHEMA, Site


class Canary:
    """An HTTP server on 127.0.0.2 that counts every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"hi")

            def do_POST(self) -> None:  # a beacon
                self.do_GET()

            def log_message(self, *args: Any) -> None:
                return None

        # A port the policy allows (so the address is what refuses it), when one is free.
        for port in (8080, 8443, 80, 0):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.2", port), Handler)
                break
            except OSError:
                continue
        self.why = (
            "loopback" if self.server.server_address[1] in DEFAULT_PORTS else "is not allowed"
        )
        self.address = f"127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.close()


@pytest.fixture(scope="module")
def canary(site: Site) -> Iterator[Canary]:
    watcher = Canary()
    site.canary = watcher.address
    yield watcher
    watcher.server.shutdown()


class Counting:
    """The renderer, counting what it was asked for."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.asked: list[str] = []

    def render(self, url: str, **kwargs: Any) -> Rendered:
        self.asked.append(url)
        return self.renderer.render(url, **kwargs)


@pytest.fixture(scope="module")
def renderer(site: Site) -> Iterator[Renderer]:
    browser = Renderer(NetPolicy.from_host_ports([site.host_port]))
    yield browser
    browser.close()


def engine(site: Site, renderer: Renderer) -> tuple[Engine, Counting]:
    counting = Counting(renderer)
    return (
        Engine(
            fetcher=Fetcher(policy=NetPolicy.from_host_ports([site.host_port])),
            models_available=False,
            renderer=counting,
        ),
        counting,
    )


def extract(engine: Engine, **request: Any) -> Any:
    return engine.extract(JobRequest.model_validate(request), ExtractionTask.within(60))


# ------------------------------------------------------------------ the renderer


def test_what_a_script_draws_after_a_delay_a_fetch_or_a_route_change_is_read(
    site: Site, renderer: Renderer
) -> None:
    # The renderer is the module's: count this test's launches, not the ones before it.
    launched_before = renderer.launches
    delayed = renderer.render(
        f"{site.url}/js/delayed", wait_for=".price", timeout_s=10, max_bytes=1 << 20
    )
    assert delayed.waited == "selector"
    assert "Desk lamp Vega" in delayed.html
    assert delayed.status == 200

    fetched = renderer.render(
        f"{site.url}/js/fetched", wait_for=None, timeout_s=10, max_bytes=1 << 20
    )
    assert fetched.waited == "network-idle"
    assert "VEG-3" in fetched.html
    assert "/js/product.json" in site.hits  # the script's own request, through the proxy

    routed = renderer.render(
        f"{site.url}/js/routed", wait_for=".price", timeout_s=10, max_bytes=1 << 20
    )
    assert routed.url == f"{site.url}/js/routed/vega-3"  # the client-side route
    assert "Desk lamp Vega" in routed.html
    assert renderer.launches - launched_before == 3  # a browser of its own for every render


def test_a_selector_that_never_appears_ends_at_the_time_limit_and_html_is_size_capped(
    site: Site, renderer: Renderer
) -> None:
    started = time.monotonic()
    late = renderer.render(f"{site.url}/js/delayed", wait_for="#never", timeout_s=2, max_bytes=200)
    assert late.waited == "time-limit"
    assert time.monotonic() - started < 6
    assert late.truncated
    assert len(late.html.encode()) <= 200


def test_a_main_document_the_policy_refuses_is_a_failed_render_with_the_reason(
    site: Site, renderer: Renderer, canary: Canary
) -> None:
    with pytest.raises(RenderFailed) as direct:
        renderer.render(
            "http://169.254.169.254/latest/", wait_for=None, timeout_s=5, max_bytes=1000
        )
    assert direct.value.code == "blocked_target"
    assert "metadata" in direct.value.reason
    with pytest.raises(RenderFailed) as redirected:
        renderer.render(f"{site.url}/js/to-canary", wait_for=None, timeout_s=5, max_bytes=1000)
    assert redirected.value.code == "blocked_target"
    assert canary.why in redirected.value.reason
    assert canary.hits == []


def test_no_request_of_a_hostile_page_reaches_a_refused_address(
    site: Site, renderer: Renderer, canary: Canary
) -> None:
    done = renderer.render(f"{site.url}/js/probe", wait_for=None, timeout_s=8, max_bytes=1 << 20)
    assert "Probe" in done.html
    time.sleep(0.5)  # a late beacon or socket would arrive now
    assert canary.hits == []
    refused = {r.target for r in renderer.refusals()}
    port = canary.address.rsplit(":", 1)[1]
    # The vectors did try: the proxy saw and refused them (plain, tunnelled, named, redirected).
    assert any(t.endswith("/fetch") for t in refused)
    assert any(t.endswith("/frame") for t in refused)
    assert any(t.endswith("/redirected") for t in refused)
    assert f"{canary.address}" in refused  # CONNECT: the HTTPS fetch and the WebSocket
    assert f"localhost:{port}" in refused or any("localhost" in t for t in refused)
    with pytest.raises(RenderFailed) as navigated:
        renderer.render(f"{site.url}/js/probe-navigate", wait_for=None, timeout_s=5, max_bytes=1000)
    assert navigated.value.code == "blocked_target"
    assert canary.hits == []


# ------------------------------------------------------------------ the engine


def test_an_app_shell_whose_html_gives_nothing_is_rendered_and_read(
    site: Site, renderer: Renderer
) -> None:
    built, counting = engine(site, renderer)
    outcome = extract(built, urls=[f"{site.url}/js/fetched"], json_schema=PRODUCT_SCHEMA)
    assert outcome.data == {
        "name": "Desk lamp Vega",
        "price": 39.0,
        "currency": "EUR",
        "sku": "VEG-3",
    }
    [page] = outcome.pages
    assert page.rendered is not None
    assert "app shell" in page.rendered.reason
    assert page.rendered.ms > 0
    assert counting.asked == [f"{site.url}/js/fetched"]


def test_a_page_whose_shipped_data_answers_or_that_runs_no_script_is_not_rendered(
    site: Site, renderer: Renderer
) -> None:
    built, counting = engine(site, renderer)
    shipped = extract(built, urls=[f"{site.url}/app/next"], json_schema=PRODUCT_SCHEMA)
    assert shipped.data["sku"] == "AUR-7"
    assert shipped.pages[0].rendered is None
    with pytest.raises(ExtractionError):
        extract(
            built,
            urls=[f"{site.url}/js/static"],
            json_schema={"type": "object", "properties": {"gtin": {"type": "string"}}},
        )
    assert counting.asked == []  # neither needed a browser


def test_render_always_and_never_are_the_client_s_choice(site: Site, renderer: Renderer) -> None:
    built, counting = engine(site, renderer)
    always = extract(
        built, urls=[f"{site.url}/app/next"], json_schema=PRODUCT_SCHEMA, render="always"
    )
    assert always.pages[0].rendered is not None
    assert "render: always" in always.pages[0].rendered.reason
    with pytest.raises(ExtractionError) as never:
        extract(built, urls=[f"{site.url}/js/fetched"], json_schema=PRODUCT_SCHEMA, render="never")
    assert "render: never" in never.value.message
    assert counting.asked == [f"{site.url}/app/next"]


def test_a_site_that_needed_a_browser_has_its_next_pages_rendered_first(
    site: Site, renderer: Renderer
) -> None:
    built, counting = engine(site, renderer)
    outcome = extract(
        built,
        urls=[f"{site.url}/js/fetched", f"{site.url}/js/delayed"],
        json_schema=PRODUCT_SCHEMA,
        wait_for=".price",
    )
    first, second = outcome.pages
    assert first.rendered is not None
    assert "app shell" in first.rendered.reason
    assert second.rendered is not None
    assert "builds its pages in the browser" in second.rendered.reason
    assert second.rendered.waited == "selector"
    assert [d["data"]["sku"] for d in outcome.data] == [JS_PRODUCT["sku"]] * 2
    assert len(counting.asked) == 2  # each page once: the second was not read unrendered first


def test_render_always_without_a_browser_is_said_not_done(site: Site) -> None:
    built = Engine(
        fetcher=Fetcher(policy=NetPolicy.from_host_ports([site.host_port])),
        models_available=False,
    )
    outcome = extract(
        built, urls=[f"{site.url}/app/next"], json_schema=PRODUCT_SCHEMA, render="always"
    )
    assert outcome.pages[0].rendered is None
    assert any("no browser to render pages in" in w for w in outcome.warnings)


def test_a_quote_says_what_it_leaves_out_of_a_job_that_may_be_rendered(
    site: Site, renderer: Renderer
) -> None:
    built, counting = engine(site, renderer)
    for mode, said in (("always", "every page will be rendered"), ("auto", "may be rendered")):
        request = JobRequest.model_validate(
            {"urls": [f"{site.url}/js/fetched"], "json_schema": PRODUCT_SCHEMA, "render": mode}
        )
        quote = built.quote(request, deadline=time.monotonic() + 30)
        assert any(said in note and "not in aws_usd" in note for note in quote.notes)
    never = JobRequest.model_validate(
        {"urls": [f"{site.url}/js/fetched"], "json_schema": PRODUCT_SCHEMA, "render": "never"}
    )
    assert not any("render" in n for n in built.quote(never, deadline=time.monotonic() + 30).notes)
    assert counting.asked == []  # a quote renders nothing

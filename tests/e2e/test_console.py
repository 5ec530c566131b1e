"""The job console in a real browser (Debian's chromium driven by Playwright) against local
mode: the flows a person goes through, screenshots of each view kept under
``test-artifacts/console/``, and an accessibility check of each view with axe-core."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets.asyncio.server
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from atlas_codex_local.local import spawn, wait_for_info
from atlas_codex_local.paths import ROOT
from tests.site import Site

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts" / "console"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A page the test serves through Playwright's interception has no address, so Chromium
    # takes it for a public one and refuses its connections to loopback (the stand-in
    # WebSocket API): that check is Chromium's, not the console's.
    "--disable-features=LocalNetworkAccessChecks",
]
WRONG_KEY_MESSAGE = "a valid API key is required in the x-api-key header"
CATALOG_FIELDS: dict[str, dict[str, str]] = {
    "name": {"selector": ".name"},
    "price": {"selector": ".price", "type": "number"},
}
CATALOG_SELECTORS: dict[str, Any] = {"base_selector": "article.product", "fields": CATALOG_FIELDS}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("no chromium on PATH: `make test` installs Debian's chromium (apt-get)")
    return found


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.release_slow.set()
    s.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[dict[str, Any]]:
    info = tmp_path_factory.mktemp("console") / "info.json"
    # The shop is the tests' own, on a free port (the demo's fixed port may be in use).
    proc = spawn(info, "--no-demo", "--allow-fetch", site.host_port, capture=True)
    data = wait_for_info(proc, info)
    data["shop"] = site.url
    with api(data) as c:  # one finished job for the list and the views to show
        seeded = {"urls": [f"{site.url}/catalog/1"], "selectors": CATALOG_SELECTORS}
        job = c.post("/extract", json=seeded).json()["job"]
    assert job["status"] == "completed"
    data["seeded_job"] = job["job_id"]
    yield data
    proc.kill()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


class Console:
    """One tab of the console, collecting what the browser complains about."""

    def __init__(self, page: Page, local: dict[str, Any]) -> None:
        self.page = page
        self.local = local
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None,
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def open(self, fragment: str = "") -> Console:
        self.page.goto(f"{self.local['api_url']}/console{fragment}")
        return self

    def signed_in(self) -> Console:
        """Opened from the banner's link, whose key the console offers and the person takes."""
        self.open(f"#key={self.local['api_key']}")
        expect(self.page.locator("#key-offer")).to_be_visible()
        self.page.click("#key-form button[type=submit]")
        expect(self.page.locator("#key-owner")).to_contain_text("signed in as ")
        return self

    def job(self, job_id: str) -> None:
        self.page.evaluate("id => { location.hash = '#/jobs/' + id }", job_id)
        expect(self.page.locator("#job-title")).to_have_text(f"Job {job_id}")

    def status_is(self, status: str, timeout_s: float = 30) -> None:
        expect(self.page.locator("#job-summary dd .status").first).to_have_text(
            status, timeout=timeout_s * 1000
        )

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_complaints(self) -> None:
        # 4xx answers the test provoked on purpose show as failed loads; nothing else may.
        real = [p for p in self.problems if "Failed to load resource" not in p]
        assert real == [], real


@pytest.fixture
def console(context: BrowserContext, local: dict[str, Any]) -> Console:
    return Console(context.new_page(), local)


def api(local: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=local["api_url"], headers={"x-api-key": local["api_key"]}, timeout=30
    )


# ---------------------------------------------------------------------- signing in


def test_a_wrong_key_is_refused_with_the_api_s_message(console: Console) -> None:
    console.open()
    page = console.page
    expect(page.locator("#key-title")).to_be_visible()
    console.shot("sign-in")
    page.fill("#api-key", "ack_wrongwrongwr_" + "x" * 43)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-error")).to_have_text(WRONG_KEY_MESSAGE)
    expect(page.locator("#view-jobs")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_typed_key_signs_in_and_stays_in_the_tab_only(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.open().page
    page.fill("#api-key", local["api_key"])
    page.click("#key-form button[type=submit]")
    expect(page.locator("#jobs-title")).to_be_visible()
    assert page.evaluate("Object.values(sessionStorage)") == [local["api_key"]]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    console.assert_no_complaints()


def test_the_banner_s_key_is_read_once_and_leaves_the_address_bar(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.signed_in().page
    expect(page.locator("#jobs-title")).to_be_visible()
    assert local["api_key"] not in page.url
    assert page.url.endswith("/console#/jobs")
    # The job finished at start-up is listed.
    expect(page.locator("#jobs-table tbody tr").first).to_contain_text("completed")
    console.shot("jobs")
    console.assert_no_complaints()


def test_a_key_from_a_link_is_offered_never_used_unasked(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.open().page
    page.fill("#api-key", local["api_key"])
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-owner")).to_contain_text("signed in as ")
    owner = page.locator("#key-owner").inner_text()
    foreign = "ack_someoneelse1_" + "y" * 43
    sent_with: list[str] = []
    page.on("request", lambda r: sent_with.append(r.headers.get("x-api-key", "")))

    console.open(f"#key={foreign}")  # a link someone else made

    expect(page.locator("#key-offer")).to_contain_text(
        "A link offered the API key ack_someoneelse1"
    )
    expect(page.locator("#key-offer")).to_contain_text(owner.removeprefix("signed in as ")[:20])
    assert foreign not in page.url
    assert foreign not in sent_with
    assert page.evaluate("Object.values(sessionStorage)") == [local["api_key"]]
    console.shot("key-offered")


def test_the_header_always_names_the_key_s_owner(console: Console, local: dict[str, Any]) -> None:
    page = console.signed_in().page
    expect(page.locator("#key-owner")).to_have_text(
        re.compile(r"^signed in as \S+ \(key ack_\w{12}…\)$")
    )
    page.reload()  # a new load of the tab still says whose key is in use
    expect(page.locator("#key-owner")).to_contain_text("signed in as ")


def test_bidirectional_controls_in_a_value_are_shown_escaped(
    console: Console, local: dict[str, Any]
) -> None:
    reversed_text = "h1[title='\u202eevil']"
    with api(local) as c:
        made = c.post(
            "/jobs",
            json={
                "urls": [f"{local['shop']}/catalog/1"],
                "selectors": {"fields": {"name": {"selector": reversed_text}}},
            },
        ).json()
    console.signed_in().job(made["job_id"])

    expect(console.page.locator("#job-request")).to_contain_text("⟨U+202E⟩evil")
    shown = console.page.locator("#job-request").text_content() or ""
    assert "\u202e" not in shown
    assert "⟨U+202E⟩evil" in shown


# ---------------------------------------------------------------------- jobs


def test_a_selector_job_on_a_shop_completes_and_shows_its_evidence(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.signed_in().page
    page.click("#nav-new")
    page.select_option("#new-type", "async")
    page.fill("#new-urls", f"{local['shop']}/catalog/1")
    page.check("#mode-selectors")
    page.fill("#new-spec", json.dumps(CATALOG_SELECTORS))
    page.click("#new-submit")
    expect(page.locator("#job-title")).to_contain_text("job_")
    console.status_is("completed")
    expect(page.locator("#result-data")).to_contain_text("Lamp 1")
    evidence = page.locator("table.evidence tbody tr").first
    expect(evidence).to_contain_text(".name")
    expect(evidence).to_contain_text("verified")
    expect(page.locator("#job-timeline tbody tr")).to_have_count(
        3
    )  # pending, processing, completed
    expect(page.locator("#job-attempts tbody tr").first).to_contain_text("direct-css")
    console.shot("job-detail")
    # Re-extract the stored pages with one more field: a new job, and a diff against this one.
    first = page.locator("#job-title").inner_text().removeprefix("Job ")
    more = {
        **CATALOG_SELECTORS,
        "fields": {**CATALOG_FIELDS, "stock": {"selector": ".stock"}},
    }
    page.fill("#rx-spec", json.dumps(more))
    page.click("#reextract-form button[type=submit]")
    expect(page.locator("#job-title")).not_to_have_text(f"Job {first}")
    console.status_is("completed")
    expect(page.locator("#job-summary")).to_contain_text(first)  # re-extraction of
    expect(page.locator("#result-diff")).to_contain_text("added")
    expect(page.locator("#result-diff")).to_contain_text("stock")
    console.assert_no_complaints()


def test_a_quote_is_shown_before_anything_billable_runs(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.signed_in().page
    page.click("#nav-new")
    page.fill("#new-urls", f"{local['shop']}/product/1")
    page.check("#mode-selectors")
    page.fill("#new-spec", json.dumps({"fields": {"name": {"selector": "h1"}}}))
    page.fill("#new-max-cost", "0.05")
    page.click("#new-quote")
    quote = page.locator("#quote-body")
    expect(quote).to_contain_text("direct-css")
    expect(quote).to_contain_text("1 expected, 1 fetched")
    expect(quote).to_contain_text("$0.050000")
    console.shot("quote")
    console.assert_no_complaints()


def test_bad_input_in_the_form_gets_the_api_s_error_naming_the_field(
    console: Console, local: dict[str, Any]
) -> None:
    page = console.signed_in().page
    page.click("#nav-new")
    page.select_option("#new-type", "webhook")
    page.fill("#new-urls", f"{local['shop']}/product/1")
    page.check("#mode-none")
    page.click("#new-submit")
    expect(page.locator("#new-error")).to_contain_text("field: webhook_url")
    page.check("#mode-selectors")
    page.fill("#new-spec", "{not json")
    page.click("#new-submit")
    expect(page.locator("#new-error")).to_contain_text("Selectors: not valid JSON")


def test_a_slow_job_is_cancelled_from_its_page(
    console: Console, local: dict[str, Any], site: Site
) -> None:
    with api(local) as c:
        job = c.post("/jobs", json={"urls": [f"{site.url}/slow"]}).json()
        end = time.monotonic() + 30
        while c.get(f"/jobs/{job['job_id']}").json()["status"] != "processing":
            assert time.monotonic() < end, "the job never started"
            time.sleep(0.1)
    page = console.signed_in().page
    console.job(job["job_id"])
    console.status_is("processing")
    page.click("#job-cancel")
    console.status_is("cancelled")
    expect(page.locator("#job-cancel")).to_be_hidden()
    expect(page.locator("#job-timeline")).to_contain_text("cancelled")
    with api(local) as c:
        assert c.get(f"/jobs/{job['job_id']}").json()["status"] == "cancelled"
    site.release_slow.set()
    console.assert_no_complaints()


def test_a_partial_job_shows_why(console: Console, local: dict[str, Any]) -> None:
    urls = [f"{local['shop']}/product/1", f"{local['shop']}/product/999"]
    with api(local) as c:
        body = {"urls": urls, "selectors": {"fields": {"name": {"selector": "h1"}}}}
        job = c.post("/extract", json=body).json()["job"]
    assert job["quality"] == "partial"
    page = console.signed_in().page
    console.job(job["job_id"])
    reasons = page.locator("#partial-reasons")
    expect(reasons).to_contain_text("Partial result: why")
    expect(reasons).to_contain_text("1 of 2 pages could not be read")
    expect(page.locator("#result-body")).to_contain_text("answered HTTP 404")
    console.shot("partial")
    console.assert_no_complaints()


def test_a_page_rendered_in_a_browser_says_so_and_why(
    console: Console, local: dict[str, Any]
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "sku": {"type": "string"}},
    }
    with api(local) as c:
        body = {"urls": [f"{local['shop']}/js/fetched"], "json_schema": schema}
        job = c.post("/extract", json=body).json()["job"]
    assert job["status"] == "completed", job
    page = console.signed_in().page
    console.job(job["job_id"])
    result = page.locator("#result-body")
    expect(result).to_contain_text("Desk lamp Vega")
    expect(result).to_contain_text("in a browser")
    expect(result).to_contain_text("app shell")
    console.assert_no_complaints()


def finished_batch(console: Console, local: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A batch of two product pages, finished and open in the console with its children."""
    urls = [f"{local['shop']}/product/{i}" for i in (1, 2)]
    with api(local) as c:
        body = {
            "type": "batch",
            "urls": urls,
            "selectors": {"fields": {"name": {"selector": "h1"}}},
        }
        batch: dict[str, Any] = c.post("/jobs", json=body).json()
    console.signed_in()
    console.job(batch["job_id"])
    console.status_is("completed")
    expect(console.page.locator("#children-table tbody tr")).to_have_count(2)
    return batch, urls


def test_a_batch_lists_its_children(console: Console, local: dict[str, Any]) -> None:
    batch, urls = finished_batch(console, local)
    page = console.page
    for _ in range(3):  # overlapping refreshes (and the page's own polling) draw it once
        page.click("#job-refresh")
    rows = page.locator("#children-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#job-children")).to_contain_text(urls[0])
    rows.first.locator("a").click()
    expect(page.locator("#job-summary")).to_contain_text(batch["job_id"])  # its batch


def test_a_refresh_answered_late_does_not_draw_over_the_next_job(
    console: Console, local: dict[str, Any]
) -> None:
    """A batch's refresh still on its way when a person opens one of its children (whose id
    begins with the batch's) must not draw the batch over the child when it lands."""
    batch, _ = finished_batch(console, local)
    page = console.page
    rows = page.locator("#children-table tbody tr")

    held: list[Route] = []
    page.route(
        lambda url: urlsplit(url).path.endswith(f"/jobs/{batch['job_id']}"),
        lambda route: held.append(route),
    )
    page.click("#job-refresh")
    deadline = time.monotonic() + 5
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert held, "the refresh did not ask for the batch"
    child_id = rows.first.locator("a").inner_text()
    rows.first.locator("a").click()
    expect(page.locator("#job-title")).to_have_text(f"Job {child_id}")
    expect(page.locator("#job-summary")).to_contain_text(batch["job_id"])  # the child's batch

    with page.expect_response(lambda r: urlsplit(r.url).path.endswith(f"/jobs/{batch['job_id']}")):
        held[0].continue_()
    page.wait_for_timeout(300)  # the late answer's handler has run by now
    expect(page.locator("#job-title")).to_have_text(f"Job {child_id}")
    expect(page.locator("#job-summary")).not_to_contain_text("Children")
    console.assert_no_complaints()


class LiveStandIn:
    """A stand-in for a deployed stage's WebSocket API, on loopback: it takes a connection
    that carries the API key, records subscriptions, and pushes status messages in the shape
    ``atlas_codex.notifications.live.status_message`` sends."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.subscribed: list[str] = []
        self.peers: set[Any] = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            async with websockets.asyncio.server.serve(self._peer, "127.0.0.1", 0) as server:
                self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
                ready.set()
                await self.done  # until close()

        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(serve(),), daemon=True
        )
        self.thread.start()
        ready.wait(10)

    async def _peer(self, peer: Any) -> None:
        query = parse_qs(urlsplit(peer.request.path).query)
        if query.get("api_key") != [self.api_key]:
            await peer.close(4001, "unauthorized")
            return
        self.peers.add(peer)
        async for message in peer:
            request = json.loads(message)
            if request.get("action") == "subscribe":
                self.subscribed.append(request["job_id"])
                await peer.send(json.dumps({"subscribed": request["job_id"]}))

    def push(self, job_id: str, status: str) -> None:
        message = json.dumps({"type": "job.status", "job_id": job_id, "status": status})

        async def send() -> None:
            for peer in list(self.peers):
                await peer.send(message)

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.done.set_result, None)
        self.thread.join(10)


def test_a_deployed_console_follows_a_job_over_the_websocket_api_without_polling(
    console: Console, local: dict[str, Any], site: Site
) -> None:
    live = LiveStandIn(local["api_key"])
    page = console.page

    def as_deployed(route: Route) -> None:
        # The page as a stage with a WebSocket API serves it: its URL in the page and the policy.
        response = route.fetch()
        body = response.text().replace(
            '<meta name="atlas-websocket" content="">',
            f'<meta name="atlas-websocket" content="{live.url}">',
        )
        headers = dict(response.headers)
        policy = headers["content-security-policy"]
        headers["content-security-policy"] = policy.replace(
            "connect-src 'self'", f"connect-src 'self' {live.url}"
        )
        route.fulfill(response=response, body=body, headers=headers)

    page.route("**/console", as_deployed)
    try:
        site.release_slow.clear()
        with api(local) as c:
            job = c.post("/jobs", json={"urls": [f"{site.url}/slow"]}).json()
        console.signed_in()
        expect(page.locator("#live-mode")).to_have_text("live updates: WebSocket")
        console.job(job["job_id"])
        end = time.monotonic() + 20
        while job["job_id"] not in live.subscribed:
            assert time.monotonic() < end, f"the page never subscribed: {console.problems}"
            time.sleep(0.05)
        reads: list[str] = []
        page.on("request", lambda r: reads.append(r.url) if job["job_id"] in r.url else None)
        page.wait_for_timeout(2500)
        assert reads == []  # subscribed: no polling
        site.release_slow.set()
        with api(local) as c:
            while c.get(f"/jobs/{job['job_id']}").json()["status"] != "completed":
                assert time.monotonic() < end + 30, "the job did not finish"
                time.sleep(0.1)
        live.push(job["job_id"], "completed")
        console.status_is("completed")
        assert reads  # the push made the page read the job again
        console.assert_no_complaints()
    finally:
        live.close()


# ---------------------------------------------------------------------- accessibility

VIEWS = ("sign-in", "jobs", "job", "new")


def _axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}
        })"""
    )
    assert len(result["passes"]) > 10, "axe checked next to nothing: is the page empty?"
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_passes_the_accessibility_check(
    browser: Browser, local: dict[str, Any], view: str
) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make setup` installs axe-core from package.json")
    # axe is injected as a script: this context alone lets it past the page's policy.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        c = Console(ctx.new_page(), local)
        page = c.page
        if view == "sign-in":
            c.open()
            expect(page.locator("#key-title")).to_be_visible()
        else:
            c.signed_in()
            expect(page.locator("#jobs-title")).to_be_visible()
        if view == "job":
            c.job(local["seeded_job"])  # a finished job: its result and evidence are shown
            expect(page.locator("table.evidence").first).to_be_visible()
        elif view == "new":
            page.click("#nav-new")
            expect(page.locator("#new-title")).to_be_visible()
        assert _axe(page) == []
    finally:
        ctx.close()


def test_the_new_job_form_is_reached_by_keyboard_in_reading_order(console: Console) -> None:
    page = console.signed_in().page
    page.click("#nav-new")
    page.focus("#new-type")
    order = ["new-type"]
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert (
        order
        == [
            "new-type",
            "new-urls",
            "mode-selectors",  # a radio group is one stop
            "new-spec",
            "new-max-pages",
            "new-max-cost",
            "new-webhook",
            "new-evidence",
            "new-quote",
            "new-submit",
            "",  # out of the form, to the page
        ][: len(order)]
    )

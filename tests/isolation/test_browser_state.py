"""A render leaves nothing behind for the next one, and no page stops the renders after it.

Each render runs in a fresh, disposable browser context: a service worker, cookies,
localStorage, IndexedDB and CacheStorage set by one owner's page are gone for the next
owner's. A page that never yields (a busy loop), one that eats memory, or one whose https
frame fails to load ends its own render at most; the next render works."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.render.renderer import Renderer
from atlas_codex.render.result import Rendered, RenderFailed

SETTER = """<!doctype html><html><head><title>A</title></head><body><h1>Owner A</h1><script>
(async () => {
  localStorage.setItem('who', 'A');
  document.cookie = 'js=A; path=/; max-age=3600';
  await (await caches.open('v1')).put('/cached', new Response('A-cache'));
  await new Promise((done) => {
    const open = indexedDB.open('db', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('s');
    open.onsuccess = () => {
      const tx = open.result.transaction('s', 'readwrite');
      tx.objectStore('s').put('A', 'who');
      tx.oncomplete = done;
    };
  });
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  document.body.insertAdjacentHTML('beforeend', '<div id="done">set</div>');
})();
</script></body></html>"""

WORKER = """self.addEventListener('install', (e) => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).pathname === '/reader') {
    e.respondWith(new Response('<html><body><h1 id="forged">FORGED-BY-SW</h1></body></html>',
      {headers: {'content-type': 'text/html'}}));
  }
});"""

READER = """<!doctype html><html><head><title>B</title></head><body><h1>Owner B</h1><script>
(async () => {
  const seen = {
    local: localStorage.getItem('who'),
    cookie: document.cookie,
    caches: await caches.keys(),
    workers: (await navigator.serviceWorker.getRegistrations()).length,
    idb: (await indexedDB.databases()).map((d) => d.name),
  };
  document.body.insertAdjacentHTML(
    'beforeend', '<pre id="state">' + JSON.stringify(seen) + '</pre>');
})();
</script></body></html>"""

PLAIN = "<!doctype html><html><head><title>Fine</title></head><body><h1>A normal page</h1></body></html>"

BUSY = "<!doctype html><html><body><h1>Busy</h1><script>while (true) {}</script></body></html>"

HUNGRY = """<!doctype html><html><body><h1>Hungry</h1><script>
const hoard = [];
for (;;) { hoard.push(new Array(1 << 20).fill(hoard.length)); }
</script></body></html>"""


class StateSite:
    """The pages above on loopback; ``hits`` counts what reached the server."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                site.hits.append(path)
                body, kind, extra = site.page(path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str) -> tuple[bytes, str, dict[str, str]]:
        html = "text/html; charset=utf-8"
        framed = (
            f"<!doctype html><html><body><h1>Framed page</h1><p>Its own text.</p>"
            f"<iframe src='https://127.0.0.1:{self.port}/frame'></iframe></body></html>"
        )
        pages: dict[str, tuple[str, str, dict[str, str]]] = {
            "/setter": (SETTER, html, {"Set-Cookie": "server=A; Path=/; HttpOnly"}),
            "/sw.js": (WORKER, "text/javascript", {}),
            "/reader": (READER, html, {}),
            "/plain": (PLAIN, html, {}),
            "/busy": (BUSY, html, {}),
            "/hungry": (HUNGRY, html, {}),
            "/framed": (framed, html, {}),
        }
        body, kind, extra = pages.get(path, ("", html, {}))
        return body.encode(), kind, extra

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[StateSite]:
    served = StateSite()
    yield served
    served.close()


@pytest.fixture(scope="module")
def renderer(site: StateSite) -> Iterator[Renderer]:
    """One browser for every render, as the render function keeps it."""
    browser = Renderer(NetPolicy.from_host_ports([f"127.0.0.1:{site.port}"]))
    yield browser
    browser.close()


def _outcome(renderer: Renderer, url: str, *, timeout_s: float) -> Rendered | RenderFailed:
    try:
        return renderer.render(url, wait_for=None, timeout_s=timeout_s, max_bytes=1_000_000)
    except RenderFailed as failed:
        return failed


def _plain_render_works(renderer: Renderer, site: StateSite) -> None:
    started = time.monotonic()
    rendered = renderer.render(
        f"{site.url}/plain", wait_for="h1", timeout_s=10, max_bytes=1_000_000
    )
    assert "A normal page" in rendered.html
    assert time.monotonic() - started < 10


def test_nothing_one_owners_render_stores_reaches_the_next_owners(
    renderer: Renderer, site: StateSite
) -> None:
    set_by_a = renderer.render(
        f"{site.url}/setter", wait_for="#done", timeout_s=15, max_bytes=1_000_000
    )
    assert set_by_a.waited == "selector"  # A's page stored everything, its worker is active
    hits = len(site.hits)

    read_by_b = renderer.render(
        f"{site.url}/reader", wait_for="#state", timeout_s=15, max_bytes=1_000_000
    )

    assert "FORGED-BY-SW" not in read_by_b.html
    assert "/reader" in site.hits[hits:]  # B's request reached the site, no worker answered
    assert '{"local":null,"cookie":"","caches":[],"workers":0,"idb":[]}' in read_by_b.html, (
        read_by_b.html
    )


def test_a_page_that_never_yields_is_stopped_and_the_next_render_works(
    renderer: Renderer, site: StateSite
) -> None:
    started = time.monotonic()
    busy = _outcome(renderer, f"{site.url}/busy", timeout_s=3)
    if isinstance(busy, RenderFailed):
        assert busy.code == "render_failed"
        assert "/busy" in busy.reason
    else:  # stopped, then read: what it showed at the limit
        assert busy.waited == "time-limit"
        assert "Busy" in busy.html
    assert time.monotonic() - started < 3 + 10  # the wall, and the bounded stop after it

    _plain_render_works(renderer, site)
    _plain_render_works(renderer, site)


def test_a_page_that_eats_memory_ends_its_own_render_only(
    renderer: Renderer, site: StateSite
) -> None:
    hungry = _outcome(renderer, f"{site.url}/hungry", timeout_s=5)
    if isinstance(hungry, RenderFailed):
        assert "/hungry" in hungry.reason

    _plain_render_works(renderer, site)


def test_a_frame_that_fails_to_load_never_fails_the_page(
    renderer: Renderer, site: StateSite
) -> None:
    rendered = renderer.render(
        f"{site.url}/framed", wait_for=None, timeout_s=10, max_bytes=1_000_000
    )

    assert "Its own text." in rendered.html
    _plain_render_works(renderer, site)


def test_each_render_keeps_its_profile_and_log_private_and_removes_them(
    site: StateSite, tmp_path: Path
) -> None:
    renderer = Renderer(
        NetPolicy.from_host_ports([f"127.0.0.1:{site.port}"]), work_dir=str(tmp_path)
    )
    seen: dict[str, int] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for path in tmp_path.rglob("*"):
                if path.name in ("browser.log", "profile") or path.parent == tmp_path:
                    seen.setdefault(path.name, stat.S_IMODE(path.stat().st_mode))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        renderer.render(f"{site.url}/plain", wait_for="#never", timeout_s=2, max_bytes=1_000_000)
        renderer.render(f"{site.url}/plain", wait_for="h1", timeout_s=5, max_bytes=1_000_000)
    finally:
        done.set()
        watcher.join()
        renderer.close()

    folders = {name: mode for name, mode in seen.items() if name.startswith("atlas-render-")}
    assert len(folders) == 2  # one folder a render
    assert set(folders.values()) == {0o700}
    assert seen["browser.log"] == 0o600
    assert list(tmp_path.iterdir()) == []  # nothing left behind

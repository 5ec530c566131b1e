"""One page rendered in the browser: the final URL, status and HTML, under a hard limit.

The browser is launched on the first render and kept for the execution environment (one
browser context: ``--single-process`` allows no other); each render opens a page, and
closes it and forgets the origins' cookies and storage after. Images, fonts and media are
never loaded. The render waits for the job's CSS selector, or for the network to be idle,
within the time limit; what the page shows at the limit is returned, marked so.
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from atlas_codex.netguard import (
    USER_AGENT,
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    check_url,
    system_resolver,
)
from atlas_codex.render import chromium
from atlas_codex.render.cdp import Browser, ProtocolError
from atlas_codex.render.proxy import GuardedProxy
from atlas_codex.render.result import Rendered, RenderFailed, Waited

BLOCKED_TYPES: Final = ("Image", "Media", "Font")
IDLE_MS: Final = 500
"""The network counts as idle after this long with no request in flight."""
POLL_S: Final = 0.05


class Renderer:
    """Renders pages one at a time in a browser started on first use."""

    def __init__(
        self,
        policy: NetPolicy,
        *,
        chromium_dir: str | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.policy = policy
        self.chromium_dir = chromium_dir
        self.resolver = resolver
        self._browser: Browser | None = None
        self._proxy: GuardedProxy | None = None
        self._lock = threading.Lock()
        self.launches = 0

    def _ensure(self) -> tuple[Browser, GuardedProxy]:
        if self._browser is not None and not self._browser.closed.is_set():
            assert self._proxy is not None
            return self._browser, self._proxy
        if self._browser is not None:
            self._browser.close()
        installed = chromium.install(chromium.locate(self.chromium_dir))
        if self._proxy is None:
            self._proxy = GuardedProxy(self.policy, self.resolver)
        profile = tempfile.mkdtemp(prefix="atlas-chromium-profile-")
        args = [
            *chromium.FLAGS,
            f"--user-data-dir={profile}",
            f"--user-agent={USER_AGENT}",
            # Every request through the guard, loopback too; the browser resolves no name
            # itself (the proxy does), and WebRTC may not go around it.
            f"--proxy-server=http://127.0.0.1:{self._proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
            "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        ]
        log = str(Path(tempfile.gettempdir()) / "atlas-chromium.log")
        self._browser = Browser(str(installed.executable), args, installed.environment(), log)
        self.launches += 1
        return self._browser, self._proxy

    def refusals(self) -> list[Any]:
        """What the SSRF proxy refused during the last render (target and reason)."""
        return self._proxy.refusals() if self._proxy is not None else []

    def close(self) -> None:
        with self._lock:
            if self._browser is not None:
                self._browser.close()
                self._browser = None
            if self._proxy is not None:
                self._proxy.close()
                self._proxy = None

    def render(
        self, url: str, *, wait_for: str | None, timeout_s: float, max_bytes: int
    ) -> Rendered:
        try:
            check_url(url, self.policy, self.resolver)
        except BlockedTarget as exc:
            raise RenderFailed("blocked_target", exc.reason) from None
        except DnsError as exc:
            raise RenderFailed("dns_error", exc.reason) from None
        with self._lock:
            try:
                browser, proxy = self._ensure()
            except chromium.ChromiumMissing as exc:
                raise RenderFailed("render_unavailable", str(exc)) from None
            except (OSError, ProtocolError) as exc:
                raise RenderFailed(
                    "render_unavailable", f"the browser did not start: {exc}"
                ) from None
            proxy.forget()
            try:
                return _render(browser, proxy, url, wait_for, timeout_s, max_bytes)
            except ProtocolError as exc:
                if browser.closed.is_set():  # crashed: the next render starts a new one
                    self._browser = None
                raise RenderFailed("render_failed", str(exc)) from None


def _render(
    browser: Browser,
    proxy: GuardedProxy,
    url: str,
    wait_for: str | None,
    timeout_s: float,
    max_bytes: int,
) -> Rendered:
    started = time.monotonic()
    deadline = started + timeout_s
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    events = browser.subscribe(session)
    documents: list[str] = []
    try:
        for method, params in (
            ("Page.enable", {}),
            ("Network.enable", {}),
            (
                "Fetch.enable",
                {
                    "patterns": [
                        {"resourceType": t, "requestStage": "Request"} for t in BLOCKED_TYPES
                    ]
                },
            ),
        ):
            browser.send(method, params, session=session)
        navigated = browser.send("Page.navigate", {"url": url}, session=session, timeout=timeout_s)
        main_frame = navigated.get("frameId", "")
        state = _Watch(main_frame)
        if navigated.get("errorText"):
            state.error = str(navigated["errorText"])
        waited: Waited = "time-limit"
        while time.monotonic() < deadline and state.error is None:
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                event = None
            if event is not None:
                state.see(event, browser, session)
                continue
            if not state.loaded:
                continue
            if wait_for is not None:
                if _has(browser, session, wait_for):
                    waited = "selector"
                    break
            elif state.idle_for() >= IDLE_MS / 1000:
                waited = "network-idle"
                break
        documents = state.documents
        for document in documents:
            reason = proxy.refused(document)
            if reason is not None:
                raise RenderFailed("blocked_target", f"{document}: {reason}")
        if state.error is not None and not state.loaded:
            raise RenderFailed("fetch_failed", f"the browser could not load {url}: {state.error}")
        html = _evaluate(browser, session, "document.documentElement.outerHTML") or ""
        final = _evaluate(browser, session, "location.href") or url
        body = html.encode("utf-8")
        truncated = len(body) > max_bytes
        if truncated:
            html = body[:max_bytes].decode("utf-8", "ignore")
        return Rendered(
            url=str(final),
            status=state.status,
            html=str(html),
            truncated=truncated,
            elapsed_ms=int((time.monotonic() - started) * 1000),
            waited=waited,
            blocked_requests=state.blocked + len(proxy.refusals()),
        )
    finally:
        browser.unsubscribe(session)
        try:
            browser.send("Target.closeTarget", {"targetId": target}, timeout=3)
            browser.send("Network.clearBrowserCookies", {}, timeout=3)
            for origin in {_origin(d) for d in documents} - {""}:
                browser.send(
                    "Storage.clearDataForOrigin",
                    {"origin": origin, "storageTypes": "all"},
                    timeout=3,
                )
        except ProtocolError:
            pass


class _Watch:
    """What the events of one page tell: its documents, status, load and requests."""

    def __init__(self, main_frame: str) -> None:
        self.main_frame = main_frame
        self.documents: list[str] = []
        self.status: int | None = None
        self.loaded = False
        self.error: str | None = None
        self.blocked = 0
        self.inflight: set[str] = set()
        self.quiet_since = time.monotonic()

    def idle_for(self) -> float:
        return 0.0 if self.inflight else time.monotonic() - self.quiet_since

    def see(self, event: dict[str, Any], browser: Browser, session: str) -> None:
        method, params = event.get("method", ""), event.get("params", {})
        if method == "Fetch.requestPaused":
            self.blocked += 1
            browser.send(
                "Fetch.failRequest",
                {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                session=session,
            )
        elif method == "Network.requestWillBeSent":
            self.inflight.add(params.get("requestId", ""))
            if params.get("type") == "Document" and params.get("frameId") == self.main_frame:
                self.documents.append(str(params.get("request", {}).get("url", "")))
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            if params.get("type") == "Document" and params.get("frameId") == self.main_frame:
                self.status = int(response.get("status") or 0) or None
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.inflight.discard(params.get("requestId", ""))
            if not self.inflight:
                self.quiet_since = time.monotonic()
            if (
                method == "Network.loadingFailed"
                and params.get("type") == "Document"
                and not self.loaded
                and not params.get("canceled")
            ):
                self.error = str(params.get("errorText") or "the document failed to load")
        elif method in ("Page.loadEventFired", "Page.domContentEventFired"):
            self.loaded = self.loaded or method == "Page.loadEventFired"
            if not self.inflight:
                self.quiet_since = time.monotonic()


def _evaluate(browser: Browser, session: str, expression: str) -> Any:
    result = browser.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
    )
    return result.get("result", {}).get("value")


def _has(browser: Browser, session: str, selector: str) -> bool:
    return bool(_evaluate(browser, session, f"!!document.querySelector({json.dumps(selector)})"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""

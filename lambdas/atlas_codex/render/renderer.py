"""One page rendered in the browser: the final URL, status and HTML, under a hard limit.

The render function's execution environment serves many owners' jobs in turn, so no render
shares a browser with another: each launches its own browser on a fresh, private profile
(a folder of its own, 0700, with the browser's log, 0600), and kills it and removes the
folder when the page is read. Cookies, localStorage, IndexedDB, CacheStorage and service
workers a page sets die with that browser; the page's own requests bypass service workers.
(``--single-process``, which Lambda needs, allows one renderer per browser, so a disposable
context per render inside one long-lived browser is not available; a launch and kill cost
about 0.05 s, a warm render about 0.1 s more than on a kept browser: docs/PERFORMANCE.md.)

No page can hold the renders after it: every command is bounded; a page whose scripts do not
yield at the limit is stopped (``Runtime.terminateExecution``) so what it shows can be read,
and its browser is killed whatever it does. A page's JavaScript heap is capped
(:data:`~atlas_codex.ground.limits.RENDER_PAGE_HEAP_MB`). A frame that fails to load fails only
itself, never the page. Images, fonts and media are never loaded. The render waits for the
job's CSS selector, or for the network to be idle, within the time limit; what the page
shows at the limit is returned, marked so.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from atlas_codex.ground.limits import RENDER_ANSWER_S, RENDER_PAGE_HEAP_MB
from atlas_codex.ground.netguard import (
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
COMMAND_S: Final = 10.0
"""The longest any one command of a render may wait (less when the render's time is short)."""


LAUNCH_TRIES: Final = 2
"""A browser that dies before opening any page is launched once more (a start can fail when
the machine is short of memory for a moment); a page that fails is never rendered twice."""


class _NotStarted(ProtocolError):
    """The browser went away before it opened the page: nothing of the page ran yet."""


class _Stuck(ProtocolError):
    """The page stopped answering, even after its scripts were told to stop."""


class Renderer:
    """Renders pages one at a time, each in a browser of its own."""

    def __init__(
        self,
        policy: NetPolicy,
        *,
        chromium_dir: str | None = None,
        resolver: Resolver = system_resolver,
        work_dir: str | None = None,
    ) -> None:
        """``work_dir``: where each render's private folder is made (the system's
        temporary folder when None)."""
        self.policy = policy
        self.chromium_dir = chromium_dir
        self.resolver = resolver
        self.work_dir = work_dir
        self._proxy: GuardedProxy | None = None
        self._lock = threading.Lock()
        self.launches = 0
        self.peak_mb = 0.0
        """The last render's browser: its resident memory's high-water mark (Linux)."""

    def refusals(self) -> list[Any]:
        """What the SSRF proxy refused during the last render (target and reason)."""
        return self._proxy.refusals() if self._proxy is not None else []

    def close(self) -> None:
        with self._lock:
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
            if self._proxy is None:
                self._proxy = GuardedProxy(self.policy, self.resolver)
            proxy = self._proxy
            for launch in range(1, LAUNCH_TRIES + 1):
                proxy.forget()
                with tempfile.TemporaryDirectory(
                    prefix="atlas-render-", dir=self.work_dir
                ) as folder:
                    browser = self._launch(proxy, Path(folder))
                    try:
                        return _render(browser, proxy, url, wait_for, timeout_s, max_bytes)
                    except _NotStarted as exc:
                        if launch == LAUNCH_TRIES:  # a browser that died before any page
                            raise RenderFailed(
                                "render_unavailable", f"the browser did not start: {exc}"
                            ) from None
                    except ProtocolError as exc:
                        raise RenderFailed("render_failed", f"{url}: {exc}") from None
                    finally:
                        self.peak_mb = _peak_mb(browser.process.pid)
                        browser.kill()
            raise AssertionError("unreachable: the last launch returns or raises")

    def _launch(self, proxy: GuardedProxy, folder: Path) -> Browser:
        """A browser on a fresh profile in ``folder``, answering, or ``render_unavailable``."""
        try:
            installed = chromium.install(chromium.locate(self.chromium_dir))
        except chromium.ChromiumMissing as exc:
            raise RenderFailed("render_unavailable", str(exc)) from None
        log = folder / "browser.log"
        os.close(os.open(log, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        args = [
            *chromium.FLAGS,
            f"--user-data-dir={folder / 'profile'}",
            f"--user-agent={USER_AGENT}",
            f"--js-flags=--max-old-space-size={RENDER_PAGE_HEAP_MB}",
            # Every request through the guard, loopback too; the browser resolves no name
            # itself (the proxy does), and WebRTC may not go around it.
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
            "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        ]
        try:
            browser = Browser(str(installed.executable), args, installed.environment(), str(log))
        except OSError as exc:
            raise RenderFailed("render_unavailable", f"the browser did not start: {exc}") from None
        self.launches += 1
        return browser


def _peak_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _render(
    browser: Browser,
    proxy: GuardedProxy,
    url: str,
    wait_for: str | None,
    timeout_s: float,
    max_bytes: int,
) -> Rendered:
    """``url`` in ``browser`` (its own, killed after); :class:`_Stuck` when the page did
    not answer."""
    started = time.monotonic()
    deadline = started + timeout_s

    def bound() -> float:
        """A command's wait: what is left of the render, at least a short answer's time."""
        return max(min(COMMAND_S, deadline - time.monotonic()), RENDER_ANSWER_S)

    try:
        target = browser.send(
            "Target.createTarget", {"url": "about:blank"}, timeout=RENDER_ANSWER_S
        )["targetId"]
    except ProtocolError as exc:
        raise _NotStarted(str(exc)) from None
    session = ""
    try:
        session = browser.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, timeout=RENDER_ANSWER_S
        )["sessionId"]
        events = browser.subscribe(session)
        for method, params in (
            ("Page.enable", {}),
            ("Network.enable", {}),
            # No service worker answers the page's requests, its own neither.
            ("Network.setBypassServiceWorker", {"bypass": True}),
            (
                "Fetch.enable",
                {
                    "patterns": [
                        {"resourceType": t, "requestStage": "Request"} for t in BLOCKED_TYPES
                    ]
                },
            ),
        ):
            browser.send(method, params, session=session, timeout=bound())
        navigated = browser.send("Page.navigate", {"url": url}, session=session, timeout=bound())
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
                if _has(browser, session, wait_for, timeout_s):
                    waited = "selector"
                    break
            elif state.idle_for() >= IDLE_MS / 1000:
                waited = "network-idle"
                break
        for document in state.documents:
            reason = proxy.refused(document)
            if reason is not None:
                raise RenderFailed("blocked_target", f"{document}: {reason}")
        if state.error is not None and not state.loaded:
            raise RenderFailed("fetch_failed", f"the browser could not load {url}: {state.error}")
        html, final = _read(browser, session, timeout_s)
        body = html.encode("utf-8")
        truncated = len(body) > max_bytes
        if truncated:
            html = body[:max_bytes].decode("utf-8", "ignore")
        return Rendered(
            url=final or url,
            status=state.status,
            html=html,
            truncated=truncated,
            elapsed_ms=int((time.monotonic() - started) * 1000),
            waited=waited,
            blocked_requests=state.blocked + len(proxy.refusals()),
        )
    finally:
        if session:
            browser.unsubscribe(session)


def _read(browser: Browser, session: str, timeout_s: float) -> tuple[str, str]:
    """The page's HTML and its address as it is now. A page whose scripts do not yield is
    stopped first; one that still does not answer is :class:`_Stuck`."""
    script = "[document.documentElement.outerHTML, location.href]"
    try:
        read = _evaluate(browser, session, script, timeout=RENDER_ANSWER_S)
    except ProtocolError:
        if browser.closed.is_set():
            raise
        try:
            browser.send("Runtime.terminateExecution", session=session, timeout=RENDER_ANSWER_S)
            read = _evaluate(browser, session, script, timeout=RENDER_ANSWER_S)
        except ProtocolError:
            raise _Stuck(
                f"the page's scripts did not yield within the {timeout_s:.0f} s render limit "
                "and could not be stopped"
            ) from None
        if not read:
            raise _Stuck(
                f"the page's scripts did not yield within the {timeout_s:.0f} s render limit; "
                "they were stopped"
            ) from None
    if not isinstance(read, list) or len(read) != 2:
        return "", ""
    return str(read[0] or ""), str(read[1] or "")


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
        self.main_requests: set[str] = set()
        """The main frame's document requests: only their failure fails the page."""
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
                self.main_requests.add(params.get("requestId", ""))
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
                and params.get("requestId", "") in self.main_requests
                and not self.loaded
                and not params.get("canceled")
            ):
                self.error = str(params.get("errorText") or "the document failed to load")
        elif method in ("Page.loadEventFired", "Page.domContentEventFired"):
            self.loaded = self.loaded or method == "Page.loadEventFired"
            if not self.inflight:
                self.quiet_since = time.monotonic()


def _evaluate(
    browser: Browser, session: str, expression: str, *, timeout: float = RENDER_ANSWER_S
) -> Any:
    result = browser.send(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True},
        session=session,
        timeout=timeout,
    )
    return result.get("result", {}).get("value")


def _has(browser: Browser, session: str, selector: str, timeout_s: float) -> bool:
    """Whether the page shows ``selector`` now; a page too busy to say is stopped."""
    try:
        return bool(
            _evaluate(browser, session, f"!!document.querySelector({json.dumps(selector)})")
        )
    except ProtocolError:
        if browser.closed.is_set():
            raise
        with contextlib.suppress(ProtocolError):
            browser.send("Runtime.terminateExecution", session=session, timeout=RENDER_ANSWER_S)
        raise _Stuck(
            f"the page's scripts did not yield while the {timeout_s:.0f} s render waited "
            "for its selector; they were stopped"
        ) from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""

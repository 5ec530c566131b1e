"""The safe fetcher: every page the engine reads comes through here.

Each hop (the first request and every redirect) passes the SSRF guard and connects to the
exact address the guard checked. Bodies stop at a size limit, the whole fetch at a total
deadline; robots.txt is honoured unless the job opts out; each host gets a bounded number
of concurrent requests. Every refusal is a :class:`FetchError` with a code the job records.

One :class:`Fetcher` serves every job of a process (its connection pool, robots.txt cache and
host slots carry no site state), and it keeps no cookie: what a site sets lives in a
:class:`FetchSession`, one per job (a crawl keeps its session across its pages), and is gone
with it. A fetch outside a session keeps cookies for its own redirects only.
"""

from __future__ import annotations

import codecs
import email.message
import http.cookiejar
import re
import threading
import time
import urllib.request
import urllib.robotparser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from atlas_codex.ground import limits
from atlas_codex.ground.netguard import (
    USER_AGENT,
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    Target,
    check_url,
    pinned_url,
    system_resolver,
)

ROBOTS_AGENT: Final = "AtlasCodexBot"
ROBOTS_TTL_S: Final = 3600.0
"""How long a site's robots.txt is kept before it is read again (RFC 9309 allows at most a
day): a process serves jobs for hours, and a site may change its rules meanwhile."""
REDIRECT_CODES: Final = frozenset({301, 302, 303, 307, 308})
BUSY_CODES: Final = frozenset({429, 503})
"""Answers that may say when to come back (``Retry-After``)."""
MAX_RETRY_AFTER_WAIT_S: Final = 10.0
"""A site's ``Retry-After`` is waited for, once, when it is at most this long and the fetch's
time allows; longer, the page fails retryable and says when the site asked to be asked again."""
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class FetchError(Exception):
    """A page that could not be fetched; ``code`` is recorded on the job."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        """When the site asked to be asked again (its ``Retry-After``), in seconds."""
        super().__init__(f"{code}: {message}")


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds from now (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils
        from datetime import UTC, datetime

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = limits.PAGE_FETCH_TIMEOUT_S
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    per_host_concurrency: int = 4


@dataclass(frozen=True)
class Page:
    url: str
    """The final URL, after redirects."""
    status: int
    content_type: str
    text: str
    encoding: str
    redirects: tuple[str, ...] = field(default=())
    elapsed_ms: float = 0.0


DOCUMENT_TYPES: Final = ("text/", "application/xhtml+xml", "application/xml", "application/json")
"""Media types read as documents (``+xml`` and ``+json`` suffixes too); a missing one is sniffed."""
_BINARY_STARTS: Final = ("%PDF-", "\x89PNG", "GIF8", "\xff\xd8\xff", "PK\x03\x04", "\x1f\x8b")


def not_a_document(page: Page) -> str | None:
    """Why ``page`` is not a document to extract from, or None when it is one."""
    media = page.content_type.split(";", 1)[0].strip().lower()
    if media and not (media.startswith(DOCUMENT_TYPES) or media.endswith(("+xml", "+json"))):
        return f"is {media}"
    head = page.text[:1024]
    if head.startswith(_BINARY_STARTS) or "\x00" in head:
        return f"is binary data ({media or 'no content type'})"
    return None


def decode(body: bytes, content_type: str) -> tuple[str, str]:
    """Text and encoding: the header's charset, else a <meta> charset, else UTF-8 (or Latin-1)."""
    candidates: list[str] = []
    match = re.search(r"charset=([\w.:-]+)", content_type, re.I)
    if match:
        candidates.append(match[1])
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta[1].decode("ascii", "ignore"))
    for name in candidates:
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError:
            continue
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace"), "cp1252"


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The shared client's policy: it keeps and sends no cookie (jobs keep their own)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


class _SetCookies:
    """A response as :meth:`http.cookiejar.CookieJar.extract_cookies` reads one."""

    def __init__(self, values: list[str]) -> None:
        self._headers = email.message.Message()
        for value in values:
            self._headers["Set-Cookie"] = value

    def info(self) -> email.message.Message:
        return self._headers


class PageSource(Protocol):
    """What the crawler and the quote read pages through: a job's :class:`FetchSession`
    (or the :class:`Fetcher` itself, with no cookie kept between fetches)."""

    def fetch(
        self, url: str, *, respect_robots: bool = True, deadline: float | None = None
    ) -> Page: ...

    def fetch_document(
        self, url: str, *, respect_robots: bool = True, deadline: float | None = None
    ) -> Page: ...

    def allowed_by_robots(self, url: str, *, deadline: float | None = None) -> bool: ...

    def crawl_delay(self, url: str) -> float: ...


class Fetcher:
    def __init__(
        self,
        *,
        policy: NetPolicy,
        resolver: Resolver = system_resolver,
        limits: FetchLimits | None = None,
        client: httpx.Client | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.limits = limits or FetchLimits()
        timeout = httpx.Timeout(self.limits.read_timeout_s, connect=self.limits.connect_timeout_s)
        self.client = client or httpx.Client(
            follow_redirects=False, timeout=timeout, trust_env=False
        )
        # The pool serves every job: it keeps no cookie (an injected client neither).
        # (A jar itself is kept as it is: an httpx.Cookies would be copied into a plain one.)
        self.client.cookies = http.cookiejar.CookieJar(policy=_NoCookies())
        self.user_agent = user_agent
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None]] = {}
        """By origin: when it was read (monotonic) and its rules (None: none, all allowed)."""
        self.clock = time.monotonic
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public

    def session(self) -> FetchSession:
        """A job's own fetch state: the cookies its sites set, dropped with it."""
        return FetchSession(self)

    def fetch(
        self,
        url: str,
        *,
        respect_robots: bool = True,
        deadline: float | None = None,
        cookies: http.cookiejar.CookieJar | None = None,
    ) -> Page:
        """``url`` after its redirects. ``cookies``: the job's jar, which sends and keeps
        what the sites set (None: a jar for this fetch's redirects only)."""
        jar = cookies if cookies is not None else http.cookiejar.CookieJar()
        started = time.monotonic()
        stop = min(deadline or float("inf"), started + self.limits.total_timeout_s)
        if respect_robots and not self.allowed_by_robots(url, deadline=stop):
            raise FetchError(
                "robots_disallowed", f"robots.txt of {urlsplit(url).netloc} disallows {url}"
            )
        redirects: list[str] = []
        current = url
        waited = False
        hops = 0
        while hops <= self.limits.max_redirects:
            target = self._check(current)
            status, headers, body = self._request(target, stop, jar)
            if status in REDIRECT_CODES and "location" in headers:
                nxt = urljoin(current, headers["location"])
                redirects.append(nxt)
                current = nxt
                hops += 1
                continue
            wait = retry_after(headers.get("retry-after")) if status in BUSY_CODES else None
            if (
                wait is not None
                and not waited
                and wait <= MAX_RETRY_AFTER_WAIT_S
                and time.monotonic() + wait + 1 < stop
            ):
                waited = True  # the site said when: once, within this fetch's time
                time.sleep(wait)
                continue
            if status >= 400:
                retryable = status == 429 or status >= 500
                later = f"; it asks to be asked again in {wait:.0f} s" if wait else ""
                raise FetchError(
                    "http_error",
                    f"{current} answered HTTP {status}{later}",
                    retryable=retryable,
                    status=status,
                    retry_after_s=wait,
                )
            content_type = headers.get("content-type", "")
            text, encoding = decode(body, content_type)
            return Page(
                url=current,
                status=status,
                content_type=content_type,
                text=text,
                encoding=encoding,
                redirects=tuple(redirects),
                elapsed_ms=(time.monotonic() - started) * 1000,
            )
        raise FetchError(
            "too_many_redirects", f"more than {self.limits.max_redirects} redirects from {url}"
        )

    def fetch_document(
        self,
        url: str,
        *,
        respect_robots: bool = True,
        deadline: float | None = None,
        cookies: http.cookiejar.CookieJar | None = None,
    ) -> Page:
        """A page to extract from: :meth:`fetch`, then refused with ``unsupported_content``
        when what came back is not a document (an image, a PDF, an archive, random bytes):
        a clear error at fetch, not an empty extraction after a parse."""
        page = self.fetch(url, respect_robots=respect_robots, deadline=deadline, cookies=cookies)
        why = not_a_document(page)
        if why is not None:
            raise FetchError("unsupported_content", f"{page.url} {why}; only web pages are read")
        return page

    def allowed_by_robots(self, url: str, *, deadline: float | None = None) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            cached = self._robots.get(origin)
        if cached is not None and self.clock() - cached[0] < ROBOTS_TTL_S:
            parser = cached[1]
        else:
            parser = self._load_robots(origin, deadline)
            with self._lock:
                self._robots[origin] = (self.clock(), parser)
        return parser is None or parser.can_fetch(ROBOTS_AGENT, url)

    def crawl_delay(self, url: str) -> float:
        parts = urlsplit(url)
        with self._lock:
            cached = self._robots.get(f"{parts.scheme}://{parts.netloc}")
        parser = cached[1] if cached is not None else None
        delay = parser.crawl_delay(ROBOTS_AGENT) if parser is not None else None
        return float(delay) if delay else 0.0

    # ------------------------------------------------------------------ internals

    def _check(self, url: str) -> Target:
        try:
            return check_url(url, self.policy, self.resolver)
        except BlockedTarget as exc:
            raise FetchError("blocked_target", exc.reason) from None
        except DnsError as exc:
            raise FetchError(exc.code, exc.reason, retryable=True) from None

    @contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        with self._lock:
            slot = self._slots.setdefault(
                host, threading.BoundedSemaphore(self.limits.per_host_concurrency)
            )
        with slot:
            yield

    def _request(
        self, target: Target, stop: float, jar: http.cookiejar.CookieJar
    ) -> tuple[int, dict[str, str], bytes]:
        url, host_header, extensions = pinned_url(target)
        headers = {
            **host_header,
            "User-Agent": self.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
            "Accept-Encoding": "gzip, deflate",
        }
        # Cookies are matched on the URL's own name (the connection goes to its address).
        asked = urllib.request.Request(target.url)  # noqa: S310 - a checked http(s) URL
        jar.add_cookie_header(asked)
        cookie = asked.get_header("Cookie")
        if cookie:
            headers["Cookie"] = cookie
        with self._slot(target.host):
            if time.monotonic() > stop:
                raise FetchError("timeout", f"no time left to fetch {target.url}", retryable=True)
            try:
                with self.client.stream(
                    "GET", url, headers=headers, extensions=extensions
                ) as response:
                    jar.extract_cookies(
                        _SetCookies(response.headers.get_list("set-cookie")),  # type: ignore[arg-type]
                        asked,
                    )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
                        raise FetchError(
                            "too_large",
                            f"{target.url} is {declared} bytes; the limit is {self.limits.max_bytes}",
                        )
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.limits.max_bytes:
                            raise FetchError(
                                "too_large",
                                f"{target.url} is larger than {self.limits.max_bytes} bytes",
                            )
                        if time.monotonic() > stop:
                            raise FetchError(
                                "timeout",
                                f"{target.url} took longer than the fetch allows",
                                retryable=True,
                            )
                        chunks.append(chunk)
                    return (
                        response.status_code,
                        {k.lower(): v for k, v in response.headers.items()},
                        b"".join(chunks),
                    )
            except httpx.TimeoutException:
                raise FetchError(
                    "timeout", f"{target.url} did not answer in time", retryable=True
                ) from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    "connection_error", f"{target.url}: {type(exc).__name__}", retryable=True
                ) from None

    def _load_robots(
        self, origin: str, deadline: float | None
    ) -> urllib.robotparser.RobotFileParser | None:
        """robots.txt of ``origin``; None (everything allowed) when there is none (4xx)."""
        try:
            page = self.fetch(f"{origin}/robots.txt", respect_robots=False, deadline=deadline)
        except FetchError as exc:
            if exc.code == "http_error" and exc.status is not None and 400 <= exc.status < 500:
                return None
            if exc.code in ("blocked_target", "dns_error"):
                raise  # the site itself is refused or does not resolve: say so, not robots.txt
            # unreachable robots.txt: treat as a temporary failure of the site
            raise FetchError(
                "robots_unavailable",
                f"robots.txt of {origin} could not be read: {exc.message}",
                retryable=True,
            ) from None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(page.text.splitlines())
        return parser


class FetchSession:
    """One job's fetch state over the shared :class:`Fetcher`: the cookies its sites set
    (a crawl keeps its session across its pages). Nothing in it outlives the job, and no
    other job reads it."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.cookies = http.cookiejar.CookieJar()

    def fetch(
        self, url: str, *, respect_robots: bool = True, deadline: float | None = None
    ) -> Page:
        return self.fetcher.fetch(
            url, respect_robots=respect_robots, deadline=deadline, cookies=self.cookies
        )

    def fetch_document(
        self, url: str, *, respect_robots: bool = True, deadline: float | None = None
    ) -> Page:
        return self.fetcher.fetch_document(
            url, respect_robots=respect_robots, deadline=deadline, cookies=self.cookies
        )

    def allowed_by_robots(self, url: str, *, deadline: float | None = None) -> bool:
        return self.fetcher.allowed_by_robots(url, deadline=deadline)

    def crawl_delay(self, url: str) -> float:
        return self.fetcher.crawl_delay(url)

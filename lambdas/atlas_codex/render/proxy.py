"""The forward proxy between the browser and the network: the SSRF guard of rendering.

Chromium is launched with every request going through this proxy (loopback included, and
with no name resolution of its own), so a page's redirects, frames, scripts, sockets and
navigations are all checked here the way the fetcher checks a URL: the host is resolved
once, every address is checked with the job's :class:`NetPolicy`, and the connection goes
to a checked address only (no second lookup a rebinding name could answer differently).
HTTPS and WebSockets arrive as ``CONNECT host:port`` and are tunnelled, so certificates are
still checked by the browser against the name; plain HTTP arrives in absolute form and is
sent on with ``Connection: close``: one checked request per connection. Its body (by
``Content-Length``) goes up, its answer comes back, and the connection ends; nothing else the
client sends on it is ever relayed, so a second request on a kept-alive connection is never
sent on unchecked. A refusal answers 403 and is recorded with its reason.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from atlas_codex.ground.netguard import (
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    check_url,
    system_resolver,
)

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 10 * 1024 * 1024
"""The largest request body a page may send through the proxy (plain HTTP)."""
CONNECT_TIMEOUT_S: Final = 10.0
IDLE_TIMEOUT_S: Final = 60.0
_HOP_BY_HOP: Final = frozenset(
    {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}
)


@dataclass(frozen=True)
class Refusal:
    target: str
    """The URL (plain HTTP) or ``host:port`` (a tunnel) that was refused."""
    reason: str


class GuardedProxy:
    """A threaded proxy on 127.0.0.1 (an ephemeral port) enforcing ``policy``."""

    def __init__(self, policy: NetPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self._refusals: list[Refusal] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, name="render-proxy", daemon=True
        ).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    def forget(self) -> None:
        with self._lock:
            self._refusals.clear()

    def refused(self, url: str) -> str | None:
        """Why a request for ``url`` was refused, or None."""
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        tunnel = f"{(parts.hostname or '').lower()}:{port}"
        for refusal in self.refusals():
            if refusal.target in (url, tunnel):
                return refusal.reason
        return None

    # ------------------------------------------------------------------ one connection

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(IDLE_TIMEOUT_S)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(8192)
                if not chunk:
                    return
                head += chunk
                if len(head) > MAX_HEAD_BYTES:
                    self._answer(client, 431, "request head too large")
                    return
        except OSError:
            return
        raw_head, rest = head.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._answer(client, 400, "malformed request line")
            return
        if method.upper() == "CONNECT":
            self._tunnel(client, target, rest)
        elif target.lower().startswith("http://"):
            self._forward(client, method, target, version, lines[1:], rest)
        else:
            self._answer(client, 400, "only CONNECT and absolute http:// requests are proxied")

    def _check(self, url: str, target: str, client: socket.socket) -> list[str] | None:
        """The checked addresses of ``url``, or None after answering the refusal."""
        try:
            return list(check_url(url, self.policy, self.resolver).addresses)
        except BlockedTarget as exc:
            with self._lock:
                self._refusals.append(Refusal(target, exc.reason))
            self._answer(client, 403, exc.reason)
        except DnsError as exc:
            self._answer(client, 502, exc.reason)
        return None

    def _connect(self, addresses: list[str], port: int) -> socket.socket | None:
        for address in addresses:
            try:
                upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                continue
            upstream.settimeout(IDLE_TIMEOUT_S)
            return upstream
        return None

    def _tunnel(self, client: socket.socket, target: str, rest: bytes) -> None:
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]").lower()
        if not host or not port_text.isdigit():
            self._answer(client, 400, "CONNECT needs host:port")
            return
        port = int(port_text)
        literal = f"[{host}]" if ":" in host else host
        addresses = self._check(f"https://{literal}:{port}/", f"{host}:{port}", client)
        if addresses is None:
            return
        upstream = self._connect(addresses, port)
        if upstream is None:
            self._answer(client, 502, f"could not connect to {host}:{port}")
            return
        client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        _relay(client, upstream)

    def _forward(
        self,
        client: socket.socket,
        method: str,
        url: str,
        version: str,
        headers: list[str],
        rest: bytes,
    ) -> None:
        addresses = self._check(url, url, client)
        if addresses is None:
            return
        parts = urlsplit(url)
        port = parts.port or 80
        upstream = self._connect(addresses, port)
        if upstream is None:
            self._answer(client, 502, f"could not connect to {parts.hostname}:{port}")
            return
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        named = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[-1].strip() for h in headers}
        if "chunked" in named.get("transfer-encoding", "").lower():
            upstream.close()
            self._answer(client, 411, "a request body needs a Content-Length")
            return
        length_text = named.get("content-length", "0") or "0"
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            upstream.close()
            self._answer(client, 413, "the request body is too large or its length unclear")
            return
        body = _read_exactly(client, rest, int(length_text))
        if body is None:
            upstream.close()
            return
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        head = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        try:
            upstream.sendall(head.encode("latin-1") + body)
            _answer_back(upstream, client)
        except OSError:
            return
        finally:
            upstream.close()

    @staticmethod
    def _answer(client: socket.socket, status: int, reason: str) -> None:
        body = reason.encode("utf-8", "replace")
        head = (
            f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            client.sendall(head.encode() + body)


def _read_exactly(client: socket.socket, start: bytes, length: int) -> bytes | None:
    """The request's body of ``length`` bytes (``start`` came with its head); anything after
    it is dropped. None when the client stopped before the end."""
    body = bytearray(start[:length])
    try:
        while len(body) < length:
            chunk = client.recv(min(65536, length - len(body)))
            if not chunk:
                return None
            body += chunk
    except OSError:
        return None
    return bytes(body)


def _answer_back(upstream: socket.socket, client: socket.socket) -> None:
    """The upstream's answer to the client, until it closes (it was asked to) or idles."""
    while True:
        readable, _, _ = select.select([upstream], [], [], IDLE_TIMEOUT_S)
        if not readable:
            return
        data = upstream.recv(65536)
        if not data:
            return
        client.sendall(data)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until either side closes or both are idle for IDLE_TIMEOUT_S."""
    pair = {a: b, b: a}
    try:
        while True:
            readable, _, _ = select.select(list(pair), [], [], IDLE_TIMEOUT_S)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                pair[source].sendall(data)
    except OSError:
        return
    finally:
        b.close()

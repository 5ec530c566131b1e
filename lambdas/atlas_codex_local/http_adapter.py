"""Serves a REST-proxy Lambda handler over plain HTTP, as API Gateway would."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from atlas_codex.ground import limits
from atlas_codex_local.apigw import context, rest_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_GATEWAY_MAX_PAYLOAD = 10 * 1024 * 1024
BODY_READ_TIMEOUT_S = 10.0
LISTEN_BACKLOG = 256
"""Connections the kernel holds for the server while its threads are busy: a burst of
clients connecting at once is queued, never reset (the standard library's default is 5)."""


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG


class _Refused(Exception):
    """A request refused before it reaches the handler, as API Gateway would refuse it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def _too_large(length: int) -> str:
    return f"the body is {length} bytes; the limit is {limits.MAX_REQUEST_BODY_BYTES}"


class Environments:
    """Like Lambda, one request at a time per environment: a handler module keeps per-request
    state (Powertools' resolver), so concurrent requests each get an environment of their
    own, made on demand by ``factory`` up to ``limit``, and wait for a free one beyond it."""

    def __init__(self, first: Handler, factory: Callable[[], Handler] | None, limit: int) -> None:
        self.free: list[Handler] = [first]
        self.made = 1
        self.factory = factory
        self.limit = limit if factory is not None else 1
        self.cond = threading.Condition()

    def __call__(self, event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        handler = self._take()
        try:
            return handler(event, ctx)
        finally:
            with self.cond:
                self.free.append(handler)
                self.cond.notify()

    def _take(self) -> Handler:
        with self.cond:
            while True:
                if self.free:
                    return self.free.pop()
                if self.made < self.limit and self.factory is not None:
                    self.made += 1
                    break
                self.cond.wait()
        return self.factory()


def fresh_handler(module_name: str) -> Handler:
    """A new copy of a handler module (its own resolver and domain objects), as a new Lambda
    environment would load it; shared libraries stay imported once."""
    import importlib.util

    spec = importlib.util.find_spec(module_name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


class ApiServer:
    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "local",
        environments: Callable[[], Handler] | None = None,
        max_environments: int = 8,
    ) -> None:
        api = Environments(handler, environments, max_environments)

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                try:
                    body = self._read_body()
                except _Refused as refused:
                    self._refuse(refused.status, refused.code, refused.message)
                    return
                parts = urlsplit(self.path)
                event = rest_event(
                    self.command,
                    parts.path,
                    headers=dict(self.headers.items()),
                    query=parts.query,
                    body=body,
                    stage=stage,
                    source_ip=self.client_address[0],
                )
                out = api(event, context(28_000, "atlas-codex-api-local"))
                payload = out.get("body") or ""
                data = base64.b64decode(payload) if out.get("isBase64Encoded") else payload.encode()
                self.send_response(out.get("statusCode", 500))
                headers: dict[str, str] = dict(out.get("headers") or {})
                for key, values in (out.get("multiValueHeaders") or {}).items():
                    headers.setdefault(key, ", ".join(values))
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not getattr(self, "_head_only", False):
                    self.wfile.write(data)
                self._head_only = False

            def _read_body(self) -> bytes | None:
                """The body as API Gateway would take it: by Content-Length, or chunked; a
                client that sends less than it announced is refused, not waited for."""
                self.connection.settimeout(BODY_READ_TIMEOUT_S)
                try:
                    return self._body()
                finally:
                    self.connection.settimeout(None)  # an idle keep-alive connection may wait

            def _body(self) -> bytes | None:
                chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
                if chunked:
                    return self._read_chunked() or None
                announced = (self.headers.get("Content-Length") or "0").strip()
                if not announced.isdigit():
                    raise _Refused(400, "bad_request", "Content-Length must be a whole number")
                length = int(announced)
                if length > API_GATEWAY_MAX_PAYLOAD:  # API Gateway itself refuses these
                    raise _Refused(413, "body_too_large", _too_large(length))
                if not length:
                    return None
                try:
                    body = self.rfile.read(length)
                except TimeoutError:
                    body = b""
                if len(body) < length:
                    raise _Refused(
                        400,
                        "bad_request",
                        f"the body ended after {len(body)} of the {length} bytes announced",
                    )
                return body

            def _read_chunked(self) -> bytes:
                data = bytearray()
                try:
                    while True:
                        line = self.rfile.readline(64).split(b";", 1)[0].strip()
                        try:
                            size = int(line, 16)
                        except ValueError:
                            raise _Refused(400, "bad_request", "malformed chunked body") from None
                        if size == 0:
                            while self.rfile.readline(1024).strip():  # trailers
                                pass
                            return bytes(data)
                        if len(data) + size > API_GATEWAY_MAX_PAYLOAD:
                            raise _Refused(413, "body_too_large", _too_large(len(data) + size))
                        chunk = self.rfile.read(size)
                        if len(chunk) < size:
                            raise _Refused(400, "bad_request", "the chunked body ended early")
                        data += chunk
                        self.rfile.readline(8)  # the CRLF after each chunk
                except TimeoutError:
                    raise _Refused(400, "bad_request", "the chunked body ended early") from None

            def _refuse(self, status: int, code: str, message: str) -> None:
                data = json.dumps(
                    {"error": {"code": code, "message": message, "correlation_id": "gateway"}}
                ).encode()
                self.close_connection = True
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _serve  # noqa: N815

            def do_HEAD(self) -> None:
                """A GET's status and headers, without its body (RFC 9110 9.3.2)."""
                self.command = "GET"
                self._head_only = True
                self._serve()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = _Server((host, port), RequestHandler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

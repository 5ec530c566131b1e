"""Serves a REST-proxy Lambda handler over plain HTTP, as API Gateway would."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from atlas_codex import limits
from atlas_codex_local.apigw import context, rest_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_GATEWAY_MAX_PAYLOAD = 10 * 1024 * 1024


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
                length = int(self.headers.get("Content-Length") or 0)
                if length > API_GATEWAY_MAX_PAYLOAD:  # API Gateway itself refuses these
                    self._refuse_oversized(length)
                    return
                body = self.rfile.read(length) if length else None
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
                self.wfile.write(data)

            def _refuse_oversized(self, length: int) -> None:
                message = (
                    f"the body is {length} bytes; the limit is {limits.MAX_REQUEST_BODY_BYTES}"
                )
                data = json.dumps(
                    {
                        "error": {
                            "code": "body_too_large",
                            "message": message,
                            "correlation_id": "gateway",
                        }
                    }
                ).encode()
                self.close_connection = True
                self.send_response(413)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

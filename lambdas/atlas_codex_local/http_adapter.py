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


class ApiServer:
    def __init__(
        self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0, stage: str = "local"
    ) -> None:
        api = handler

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

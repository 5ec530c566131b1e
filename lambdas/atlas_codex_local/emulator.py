"""The AWS emulator for local mode and the tests: a moto server on loopback, made atomic.

moto's in-memory backends take no locks, so two concurrent conditional writes to one item
can both pass their condition (seen in our cancel-vs-complete race test). Real DynamoDB
applies each conditional write atomically, and SQS hands a message to one receiver at a
time. The emulator serializes requests through one lock to give the same guarantees; the
HTTP server stays threaded, so clients still overlap on the wire and in their own code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _serialized(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            # Drain the body inside the lock: the backend's work may be lazy.
            return list(app(environ, start_response))

    return wrapped


@dataclass
class Emulator:
    host: str = "127.0.0.1"
    port: int = 0
    _server: BaseWSGIServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = _serialized(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

"""The AWS emulator for local mode and the tests: a moto server on loopback, made atomic.

moto's in-memory backends take no locks, so two concurrent conditional writes to one item
can both pass their condition (seen in our cancel-vs-complete race test). Real DynamoDB
applies each conditional write atomically, and SQS hands a message to one receiver at a
time. The emulator serializes the requests to each service through a lock of its own to
give the same guarantees; the HTTP server stays threaded, so clients still overlap on the
wire and in their own code. Clients must not long-poll SQS here (``WaitTimeSeconds`` would
hold the SQS lock): the local pollers poll with a wait of 0 and sleep between empty polls.

No browser page may use it: moto answers every origin's CORS preflight, so any web page the
machine's user opened could read the local jobs' pages and results. A request that carries
an ``Origin`` header (only browsers send one; the AWS SDKs never do) is refused, and no
``Access-Control-*`` header leaves. It takes any credentials: any user of this machine can
reach it on loopback (README, "Local mode").
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


_SERVICE_RE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([a-z0-9-]+)/aws4_request")


def _serialized(app: WsgiApp) -> WsgiApp:
    """One lock per AWS service: requests to one service are applied one at a time, as
    DynamoDB applies conditional writes atomically; different services run side by side."""
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def lock_for(environ: dict[str, Any]) -> threading.Lock:
        match = _SERVICE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match[1] if match else "other"
        with guard:
            return locks.setdefault(service, threading.Lock())

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock_for(environ):
            # Drain the body inside the lock: the backend's work may be lazy.
            return list(app(environ, start_response))

    return wrapped


def _no_browsers(app: WsgiApp) -> WsgiApp:
    """Refuses what a browser page sends (an ``Origin`` header) and drops CORS headers."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_ORIGIN") is not None:
            body = b"the local AWS emulator answers no browser page (the request has an Origin)"
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *rest)

        return app(environ, without_cors)

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
        app = _no_browsers(_serialized(DomainDispatcherApplication(create_backend_app)))
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


def _die_with_parent() -> None:
    """In the emulator's process, before it runs: it is sent SIGTERM when the process that
    started it dies (Linux ``PR_SET_PDEATHSIG``), so a ``local up`` killed with -9 leaves no
    emulator behind. Elsewhere the emulator's own watch of its parent (:func:`main`) serves."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class EmulatorProcess:
    """The emulator in its own process: its work does not share a GIL with the service's."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log = log
        """Where the emulator's own output goes (its stderr); None: inherited."""
        self._proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self, timeout_s: float = 30) -> EmulatorProcess:
        log = self.log.open("a") if self.log is not None else None
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas_codex_local.emulator",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            preexec_fn=_die_with_parent,
        )
        if log is not None:
            log.close()  # the child holds its own descriptor
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        line = self._proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the AWS emulator did not start: {line or 'no answer'}")
        self.endpoint = line
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it has stopped."""
        return self._proc.poll() if self._proc is not None else None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Serve the AWS emulator; print its endpoint when ready."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    emulator = Emulator(args.host, args.port).start()
    print(emulator.endpoint, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    parent = os.getppid()
    while not stopped.wait(0.25):
        if os.getppid() != parent:  # the process that started it is gone: so is its use
            break
    # Its state lives in memory only, so nothing is lost by not waiting long: a request
    # still in flight (a long poll) gets two seconds, then the process ends regardless.
    closing = threading.Thread(target=emulator.stop, name="aws-emulator-stop", daemon=True)
    closing.start()
    closing.join(timeout=2)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

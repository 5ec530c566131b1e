"""Pages on loopback for the benchmarks, served from a process of their own (serving them
is neither the crawler's nor the functions' CPU time)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[str], tuple[int, bytes]]
"""A request's path (without its query) to the status and the HTML body to answer."""


def _serve_forever(route: Route, ports: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, body = route(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ports.put(server.server_address[1])
    server.serve_forever()


def start(route: Route) -> tuple[multiprocessing.Process, int]:
    """A server process answering every GET through ``route`` (a picklable callable: a
    module-level function, or a ``functools.partial`` of one), and its port."""
    ports: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve_forever, args=(route, ports), daemon=True)
    process.start()
    return process, int(ports.get(timeout=30))

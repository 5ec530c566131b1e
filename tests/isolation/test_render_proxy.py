"""The render proxy checks every request: a second request a page sends down a kept-alive
plain-HTTP connection is never relayed unchecked, even to an upstream that keeps the
connection open against our ``Connection: close``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.render.proxy import GuardedProxy


class StubbornUpstream:
    """A server that answers every request line it reads on a connection and never closes
    first; ``lines`` is what reached it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(5)
        try:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    self.lines.append(head.split(b"\r\n", 1)[0].decode())
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            return
        finally:
            conn.close()


@pytest.fixture
def upstream() -> Iterator[StubbornUpstream]:
    served = StubbornUpstream()
    yield served
    served.sock.close()


def test_a_second_request_on_one_connection_is_never_relayed(upstream: StubbornUpstream) -> None:
    proxy = GuardedProxy(NetPolicy.from_host_ports([f"127.0.0.1:{upstream.port}"]))
    first = f"GET http://127.0.0.1:{upstream.port}/first HTTP/1.1\r\nHost: x\r\n\r\n"
    second = "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: y\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(first.encode())
            answer = client.recv(4096)
            client.sendall(second.encode())
            client.settimeout(3)
            try:
                while client.recv(4096):
                    pass
            except TimeoutError:
                pass
    finally:
        proxy.close()

    assert answer.startswith(b"HTTP/1.1 200")
    assert upstream.lines == ["GET /first HTTP/1.1"]

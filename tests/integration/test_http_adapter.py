"""The local HTTP adapter answers like API Gateway at the socket: a malformed or short body
is a 400 in the error shape (never a hang), and a chunked body reaches the handler whole."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from atlas_codex_local import http_adapter
from atlas_codex_local.http_adapter import ApiServer


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """An adapter in front of a handler that answers with the body it was given."""
    monkeypatch.setattr(http_adapter, "BODY_READ_TIMEOUT_S", 1.0)

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": json.dumps({"body": event.get("body")})}

    server = ApiServer(handler).start()
    yield server
    server.close()


def exchange(server: ApiServer, raw: bytes) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3"])
def test_a_malformed_content_length_is_400(echo: ApiServer, length: bytes) -> None:
    status, data = exchange(
        echo, b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    assert status == 400
    assert data["error"]["code"] == "bad_request"


def test_a_body_shorter_than_announced_is_400_not_a_hang(echo: ApiServer) -> None:
    status, data = exchange(
        echo, b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}"
    )
    assert status == 400
    assert "of the 100 bytes announced" in data["error"]["message"]


def test_a_chunked_body_reaches_the_handler_whole(echo: ApiServer) -> None:
    body = b'{"urls": ["https://shop.example/a"]}'
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:10], body[10:])
    )
    status, data = exchange(
        echo,
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n",
    )
    assert status == 200
    assert data["body"] == body.decode()


def test_a_malformed_chunked_body_is_400(echo: ApiServer) -> None:
    status, data = exchange(
        echo, b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    assert status == 400
    assert data["error"]["code"] == "bad_request"

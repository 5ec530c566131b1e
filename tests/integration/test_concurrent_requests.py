"""Requests side by side in one process never meet: each job is stored exactly as its own
client sent it (owner, Idempotency-Key, URL, selectors), no request is refused for another's
key, and a burst of connections is queued, never reset.

The local HTTP adapter serves the real api handler from several environments in threads,
as local mode does; every environment shares the process's libraries (Powertools included).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.manager import JobManager
from atlas_codex_local.http_adapter import ApiServer
from tests.fakes import ScriptedExtractor
from tests.support.functions import api_with

CLIENTS = 32
REQUESTS_EACH = max(1, -(-int(os.environ.get("ATLAS_CONCURRENT_REQUESTS", "256")) // CLIENTS))
"""256 requests in the test suite; `make bench` sends 2,000 (docs/PERFORMANCE.md)."""


@pytest.fixture
def server(config: RuntimeConfig) -> Iterator[tuple[ApiServer, list[str]]]:
    first = api_with(config, ScriptedExtractor())
    keys = [first.keys.issue(f"owner-{n:02d}").key for n in range(CLIENTS)]
    served = ApiServer(
        first.handler,
        environments=lambda: api_with(config, ScriptedExtractor()).handler,
        max_environments=8,
    ).start()
    yield served, keys
    served.close()


def _client_sends(url: str, key: str, n: int) -> list[tuple[int, dict[str, Any], str, str]]:
    """Client ``n``'s jobs, each with its own URL, field name and Idempotency-Key."""
    sent: list[tuple[int, dict[str, Any], str, str]] = []
    with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60) as client:
        for i in range(REQUESTS_EACH):
            job_url = f"https://shop.example/c{n:02d}/item-{i}"
            field = f"f{n:02d}x{i}"
            idem = f"client-{n:02d}-request-{i}"
            try:
                response = client.post(
                    "/jobs",
                    json={"urls": [job_url], "selectors": {"fields": {field: {"selector": "h1"}}}},
                    headers={"Idempotency-Key": idem},
                )
            except httpx.TransportError:  # a reset connection: counted, never retried here
                sent.append((0, {}, job_url, field))
                continue
            sent.append((response.status_code, response.json(), job_url, field))
    return sent


def test_requests_side_by_side_are_each_stored_as_their_own_client_sent_them(
    server: tuple[ApiServer, list[str]], manager: JobManager, capsys: pytest.CaptureFixture[str]
) -> None:
    api, keys = server
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda n: _client_sends(api.url, keys[n], n), range(CLIENTS)))

    elapsed = time.perf_counter() - started
    answered = [r for client in results for r in client]
    mixed = 0
    for n, client in enumerate(results):
        for i, (status, body, job_url, _field) in enumerate(client):
            if status != 202:
                continue
            stored = manager.get(body["job_id"])
            mixed += (
                stored.owner_id != f"owner-{n:02d}"
                or stored.idempotency_key != f"client-{n:02d}-request-{i}"
                or list(stored.request.urls) != [job_url]
            )
    with capsys.disabled():
        print(
            f"\nrequests: {len(answered)} POST /jobs from {CLIENTS} clients (unique owners, "
            f"bodies and Idempotency-Keys) in {elapsed:.1f} s ({len(answered) / elapsed:.0f}/s): "
            f"{sum(1 for s, *_ in answered if s == 202)} accepted, "
            f"{sum(1 for s, *_ in answered if s == 409)} answered 409, "
            f"{sum(1 for s, *_ in answered if s == 0)} connections reset, {mixed} stored mixed up"
        )
    assert len(answered) == CLIENTS * REQUESTS_EACH
    assert {status for status, *_ in answered} == {202}, [
        (status, body) for status, body, *_ in answered if status != 202
    ][:3]
    for n, client in enumerate(results):
        for i, (_, body, job_url, field) in enumerate(client):
            stored = manager.get(body["job_id"])
            assert stored.owner_id == f"owner-{n:02d}"
            assert stored.idempotency_key == f"client-{n:02d}-request-{i}"
            assert list(stored.request.urls) == [job_url]
            assert stored.request.selectors is not None
            assert list(stored.request.selectors.fields) == [field]


def test_a_burst_of_connections_is_queued_not_reset() -> None:
    def answer(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        time.sleep(0.01)
        return {"statusCode": 200, "body": "{}"}

    served = ApiServer(answer).start()
    start = threading.Barrier(64)

    def one(_: int) -> str:
        start.wait()
        try:
            with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = sock.recv(1024)
        except OSError as exc:
            return type(exc).__name__
        return data.split(b" ", 2)[1].decode() if data else "closed"

    try:
        for _ in range(3):  # three bursts of 64 clients connecting at the same instant
            with ThreadPoolExecutor(64) as pool:
                statuses = list(pool.map(one, range(64)))
            assert statuses == ["200"] * 64, sorted(set(statuses))
    finally:
        served.close()

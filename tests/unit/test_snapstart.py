"""SnapStart hooks: registered with the runtime's library, and doing what a restored
environment needs (fresh randomness, no connection opened before the snapshot)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import snapshot_restore_py

from atlas_codex.ground import aws, snapstart


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch) -> tuple[list[object], list[object]]:
    before: list[object] = []
    after: list[object] = []
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", before)
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", after)
    return before, after


def _run_as_the_runtime(entries: list[Any]) -> None:
    for func, args, kwargs in entries:
        func(*args, **kwargs)


def test_the_hooks_are_registered_with_the_runtime_s_library(
    registries: tuple[list[object], list[object]],
) -> None:
    assert snapstart.register() is True
    before = [f for f, _, _ in snapshot_restore_py.get_before_snapshot()]
    after = [f for f, _, _ in snapshot_restore_py.get_after_restore()]
    assert before == [snapstart.before_snapshot]
    assert after == [snapstart.after_restore]


def test_a_restored_environment_draws_different_random_numbers(
    registries: tuple[list[object], list[object]],
) -> None:
    snapstart.register()
    random.seed(42)  # the state every environment restored from one snapshot would share
    snapshot = random.getstate()
    first = [random.random() for _ in range(4)]
    random.setstate(snapshot)
    _run_as_the_runtime(snapshot_restore_py.get_after_restore())
    assert [random.random() for _ in range(4)] != first


def test_connections_made_before_the_snapshot_are_dropped_and_clients_still_work(
    registries: tuple[list[object], list[object]], moto_endpoint: str
) -> None:
    snapstart.register()
    client: Any = aws.sqs(moto_endpoint)
    client.list_queues()
    pools = client._endpoint.http_session._manager.pools  # urllib3's pools of this client
    assert len(pools) == 1
    _run_as_the_runtime(snapshot_restore_py.get_before_snapshot())
    assert len(pools) == 0  # nothing open goes into the snapshot
    client.list_queues()
    assert len(pools) == 1
    _run_as_the_runtime(snapshot_restore_py.get_after_restore())
    assert len(pools) == 0  # and what a restored environment finds is not reused
    client.list_queues()  # a new connection


def test_without_the_library_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert snapstart.register() is False

"""Bad input never breaks the API: schemathesis generates requests from our own OpenAPI
document — conforming ones and deliberately invalid ones (its negative mode) — and sends
them over loopback to the real handler; no answer may be a 5xx, and every 4xx has the
documented error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from atlas_codex.config import RuntimeConfig
from atlas_codex_local.http_adapter import ApiServer
from tests.fakes import ScriptedExtractor

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 150


@pytest.fixture
def served(
    config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, str, str]]:
    from atlas_codex.handlers import api

    monkeypatch.setattr(api.service, "_extractor", lambda: ScriptedExtractor())
    server = ApiServer(api.handler).start()
    key = api.keys.issue("fuzz-owner").key
    yield api, server.url, key
    server.close()


def assert_error_shape(status: int, body: bytes) -> None:
    data = json.loads(body)
    assert set(data) == {"error"}, data
    error = data["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["correlation_id"], str)
    assert set(error) <= {"code", "message", "field", "correlation_id"}


def test_no_generated_request_gets_a_5xx_and_every_4xx_has_the_error_shape(
    served: tuple[ModuleType, str, str],
) -> None:
    api, url, key = served
    schema = schemathesis.openapi.from_dict(json.loads(api.openapi_document()))
    statuses: list[int] = []
    operations = []
    for result in schema.get_all_operations():
        ok = getattr(result, "ok", None)
        assert ok is not None, f"our OpenAPI document has an invalid operation: {result}"
        operations.append(ok())
    assert len(operations) >= 8

    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in [(op, mode) for op in operations for mode in modes]:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            headers = {**(case.headers or {}), "x-api-key": key}
            response = case.call(base_url=url, headers=headers)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.content[:500])
            if 400 <= response.status_code < 500:
                assert_error_shape(response.status_code, response.content)

        try:
            check()
        except Unsatisfiable:
            continue  # an operation without inputs has no invalid form to generate
    assert len(statuses) >= 1000, f"only {len(statuses)} cases were generated"
    assert any(400 <= s < 500 for s in statuses)
    assert any(200 <= s < 300 for s in statuses)

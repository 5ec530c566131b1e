"""Bad input never breaks the API: schemathesis generates requests from our own OpenAPI
document — conforming ones and deliberately invalid ones (its negative mode) — and our own
strategies add what its generators do not reach (nesting thousands deep, numbers DynamoDB
cannot store or Python cannot parse, IDNA and over-long host labels, forged cursors, CSS
that does not compile, webhook targets inside the network). Everything goes over loopback to
the real handler: no answer may be a 5xx, every status is one the document declares for that
operation, and every 4xx has the documented error shape. More than 5,000 cases in all."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex_local.http_adapter import ApiServer
from tests.fakes import ScriptedExtractor
from tests.support.functions import ApiFunction, api_with

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 180
HOSTILE_EXAMPLES = 1400
MIN_CASES = 5000


@pytest.fixture
def served(
    config: RuntimeConfig,
) -> Iterator[tuple[ApiFunction, str, str]]:
    api = api_with(config, ScriptedExtractor())
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
    served: tuple[ApiFunction, str, str],
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
        try:
            generated_cases(operation, mode, url, key, statuses)()
        except Unsatisfiable:
            continue  # an operation without inputs has no invalid form to generate
    statuses.extend(hostile_cases(url, key, HOSTILE_EXAMPLES))
    assert len(statuses) >= MIN_CASES, f"only {len(statuses)} cases were generated"
    assert any(400 <= s < 500 for s in statuses)
    assert any(200 <= s < 300 for s in statuses)


GATEWAY_STATUSES = frozenset({405})
"""Answered for a method the path does not serve, which no operation can declare."""


def generated_cases(
    operation: Any, mode: Any, url: str, key: str, statuses: list[int]
) -> Callable[[], None]:
    """Schemathesis's cases for one operation in one mode, each checked as it is answered."""
    documented = {int(s) for s in operation.definition.raw["responses"]} | GATEWAY_STATUSES

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
        assert response.status_code in documented, (
            case.method,
            case.path,
            response.status_code,
            response.content[:300],
        )
        if 400 <= response.status_code < 500:
            assert_error_shape(response.status_code, response.content)

    return check


# ---------------------------------------------------------------------- hostile strategies

_LABEL = st.text(alphabet=st.sampled_from("abcxyz09-é日ßΩ_."), min_size=0, max_size=80)
HOSTS = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=5).map(".".join),
    st.integers(60, 70).map(lambda n: "a" * n + ".example"),
    st.integers(120, 140).map(lambda n: "a." * n + "example"),
    st.sampled_from(
        [
            "169.254.169.254",
            "127.0.0.1:8080",
            "[::1]",
            "0x7f000001",
            "10.0.0.1",
            "[::ffff:10.0.0.1]",
        ]
    ),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e-300", "1e200", "-1e-200", "1e999", "NaN", "Infinity", "-0.0"]),
    st.integers(-(10**60), 10**60).map(str),
    st.integers(39, 6000).map(lambda n: "9" * n),
)


def _nested(depth: int, inner: str) -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(method, path with query, raw body)."""
    kind = draw(st.sampled_from(["nest", "number", "host", "webhook", "css", "cursor"]))
    route = draw(st.sampled_from(["/jobs", "/extract", "/jobs/quote"]))
    url = '"https://shop.example/ok/1"'
    if kind == "nest":
        depth = draw(st.integers(1, 3000))
        field = draw(st.sampled_from(["json_schema", "urls", "crawl", "selectors"]))
        return "POST", route, f'{{"urls": [{url}], "{field}": {_nested(depth, "")}}}'
    if kind == "number":
        number = draw(NUMBERS)
        where = draw(st.sampled_from(["max_cost_usd", "schema", "crawl"]))
        if where == "max_cost_usd":
            return "POST", route, f'{{"urls": [{url}], "max_cost_usd": {number}}}'
        if where == "crawl":
            return "POST", route, f'{{"urls": [{url}], "crawl": {{"max_pages": {number}}}}}'
        schema = f'{{"type": "object", "properties": {{"p": {{"type": "number", "maximum": {number}}}}}}}'
        return "POST", route, f'{{"urls": [{url}], "json_schema": {schema}}}'
    if kind in ("host", "webhook"):
        host = json.dumps(f"https://{draw(HOSTS)}/path")
        if kind == "host":
            return "POST", route, f'{{"urls": [{host}]}}'
        return "POST", "/jobs", f'{{"urls": [{url}], "webhook_url": {host}}}'
    if kind == "css":
        selector = json.dumps(draw(st.text(max_size=40)))
        body = (
            f'{{"urls": [{url}], "selectors": {{"fields": {{"t": {{"selector": {selector}}}}}}}}}'
        )
        return "POST", route, body
    forged = draw(
        st.one_of(
            st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()),
            st.dictionaries(
                st.sampled_from(["job_id", "owner_id", "created_at", "status", "x"]),
                st.one_of(st.text(max_size=30), st.integers(), st.none()),
                max_size=5,
            ).map(lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")),
        )
    )
    return "GET", f"/jobs?cursor={forged}", None


def hostile_cases(url: str, key: str, examples: int) -> list[int]:
    seen: list[int] = []
    client = httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60)

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(request=hostile_request())
    def check(request: tuple[str, str, str | None]) -> None:
        method, path, body = request
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = client.request(method, path, content=body, headers=headers)
        seen.append(response.status_code)
        assert response.status_code < 500, (method, path, (body or "")[:300], response.text[:300])
        if response.status_code >= 400:
            assert_error_shape(response.status_code, response.content)

    check()
    assert len(seen) >= examples * 0.9
    assert 400 in seen
    assert 422 in seen
    return seen

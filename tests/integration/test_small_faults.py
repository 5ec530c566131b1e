"""Small faults a new user meets, each answered plainly: a JSON Schema the meta-schema
refuses is a 422 naming the keyword's path, ``HEAD`` is answered on a GET route, an allowed
private host is matched by the address a name resolves to, and a metadata address is refused
at start-up in every spelling, in one line."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atlas_codex.ground.netguard import BlockedTarget, NetPolicy, check_url
from atlas_codex.ground.policy import is_metadata_host
from atlas_codex_local.http_adapter import ApiServer
from atlas_codex_local.local import LocalModeError, _settings
from tests.support.api_calls import assert_error, call


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        (
            {"type": "object", "properties": {"price": {"type": "numbr"}}},
            "json_schema.properties.price.type",
        ),
        (
            {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": 7}}}},
            "json_schema.properties.tags.items.type",
        ),
        (
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": -1}}},
            "json_schema.properties.name.maxLength",
        ),
        (
            {"type": "object", "properties": {"a": {"anyOf": "string"}}},
            "json_schema.properties.a.anyOf",
        ),
        # What only the whole meta-schema knows: every keyword, and the draft a schema names.
        (
            {"type": "object", "properties": {"a": {"type": "string", "$comment": 1}}},
            "json_schema.properties.a.$comment",
        ),
        (
            {"type": "object", "dependentRequired": {"a": ["b", 1]}},
            "json_schema.dependentRequired.a[1]",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": [{}]}}},
            "json_schema.properties.a.items",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "contentEncoding": 7}}},
            "json_schema.properties.a.contentEncoding",
        ),
    ],
)
def test_a_schema_the_meta_schema_refuses_is_422_naming_the_keyword(
    api: Any, key: str, schema: dict[str, Any], field: str
) -> None:
    status, data, _ = call(
        api,
        "POST",
        "/jobs",
        key=key,
        body={"urls": ["https://shop.example/a"], "json_schema": schema},
    )
    assert_error(status, data, "validation_error", field)
    assert status == 422


def test_every_schema_is_held_to_2020_12_whatever_draft_it_names(api: Any, key: str) -> None:
    """A tuple ``items`` list is draft-07 (2020-12 says prefixItems): refused with its path
    even where the schema names draft-07, rather than read as something else."""
    draft7 = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"pair": {"items": [{"type": "string"}]}},
    }
    refused, data, _ = call(
        api,
        "POST",
        "/jobs",
        key=key,
        body={"urls": ["https://shop.example/a"], "json_schema": draft7},
    )
    assert_error(refused, data, "validation_error", "json_schema.properties.pair.items")
    plain = {**draft7, "properties": {"pair": {"type": "array", "items": {"type": "string"}}}}
    accepted, data, _ = call(
        api,
        "POST",
        "/jobs",
        key=key,
        body={"urls": ["https://shop.example/a"], "json_schema": plain},
    )
    assert accepted == 202, data


def test_head_is_answered_on_a_get_route(api: Any) -> None:
    served = ApiServer(api.handler).start()
    try:
        head = httpx.head(f"{served.url}/health")
        get = httpx.get(f"{served.url}/health")
    finally:
        served.close()
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize(
    ("path", "needs_key"), [("/health", False), ("/jobs", True), ("/openapi.json", False)]
)
def test_head_reaches_the_function_as_api_gateway_sends_it(
    api: Any, key: str, path: str, needs_key: bool
) -> None:
    """Deployed, API Gateway hands the function the HEAD itself: it is served as the GET,
    with the GET's status and headers and no body; a key is still required where GET's is."""
    get_status, _, get_headers = call(api, "GET", path, key=key)
    head_status, head_body, head_headers = call(api, "HEAD", path, key=key)
    assert head_status == get_status == 200
    assert head_body == {}
    assert head_headers["content-type"] == get_headers["content-type"]
    if needs_key:
        refused, _, _ = call(api, "HEAD", path)
        assert refused == 401


def test_a_wrong_method_is_told_that_head_is_served_where_get_is(api: Any, key: str) -> None:
    status, _, headers = call(api, "PUT", "/health", key=key)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


def test_a_listed_private_address_also_allows_a_name_resolving_to_it() -> None:
    policy = NetPolicy.from_host_ports(["127.0.0.1:8765"])

    def resolver(host: str, port: int) -> list[str]:
        return {"localhost": ["127.0.0.1"], "elsewhere.test": ["127.0.0.2"]}[host]

    assert check_url("http://localhost:8765/", policy, resolver).addresses == ("127.0.0.1",)
    with pytest.raises(BlockedTarget) as caught:
        check_url("http://elsewhere.test:8765/", policy, resolver)
    assert "resolves to 127.0.0.2" in caught.value.reason


@pytest.mark.parametrize(
    "spelling",
    [
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:a9fe]",
        "0xa9.0xfe.0xa9.0xfe",
        "2852039166",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::1]",
        "metadata.google.internal",
    ],
)
def test_a_metadata_address_is_refused_at_start_up_in_every_spelling(spelling: str) -> None:
    assert is_metadata_host(spelling)
    with pytest.raises(LocalModeError) as caught:
        _settings([f"{spelling}:80"])
    message = str(caught.value)
    assert message.startswith("--allow-fetch: ")
    assert "metadata" in message
    assert "\n" not in message
    assert "pydantic" not in message

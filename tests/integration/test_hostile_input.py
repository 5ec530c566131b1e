"""A hostile-input corpus: every body, header, query and path here once broke (a 5xx, a worker
crash, or a job accepted that could only fail later). Each must answer a 4xx in the API's
error shape, naming the field where one is to blame, and store nothing it cannot keep."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.support.api_calls import JOB, assert_error, call


def _nested(depth: int) -> str:
    return (
        '{"urls": ["https://shop.example/ok/1"], "json_schema": ' + "[" * depth + "]" * depth + "}"
    )


def _schema(**prop: Any) -> dict[str, Any]:
    return {
        "urls": ["https://shop.example/ok/1"],
        "json_schema": {"type": "object", "properties": {"price": {"type": "number", **prop}}},
    }


RAW_BODIES: list[tuple[str, str, int, str, str | None]] = [
    ("json nested 1,000 deep", _nested(1000), 400, "invalid_json", None),
    ("json nested 100,000 deep", "[" * 100_000, 400, "invalid_json", None),
    (
        "a 5,000-digit integer",
        '{"urls": ["https://shop.example/ok/1"], "max_cost_usd": ' + "9" * 5000 + "}",
        422,
        "validation_error",
        "max_cost_usd",
    ),
    (
        "a 200-digit integer (beyond a float)",
        '{"urls": ["https://shop.example/ok/1"], "max_cost_usd": ' + "9" * 200 + "}",
        422,
        "validation_error",
        "max_cost_usd",
    ),
    (
        "a 43-digit integer in a schema",
        json.dumps(_schema(maximum=int("1234567890" * 4 + "123"))),
        422,
        "validation_error",
        "json_schema.properties.price.maximum",
    ),
]

BODIES: list[tuple[str, dict[str, Any], str]] = [
    (
        "a ceiling DynamoDB cannot store",
        {"urls": ["https://shop.example/ok/1"], "max_cost_usd": 1e-300},
        "max_cost_usd",
    ),
    ("a schema maximum of 1e200", _schema(maximum=1e200), "json_schema.properties.price.maximum"),
    ("a schema minimum of 1e-200", _schema(minimum=1e-200), "json_schema.properties.price.minimum"),
    ("a host label over 63 characters", {"urls": [f"https://{'a' * 64}.example/"]}, "urls.0"),
    ("an empty host label", {"urls": ["https://shop..example/"]}, "urls.0"),
    ("an empty leading label", {"urls": ["https://.example/"]}, "urls.0"),
    ("a host over 253 characters", {"urls": [f"https://{'a.' * 130}example/"]}, "urls.0"),
    (
        "a webhook host label over 63 characters",
        {"urls": ["https://shop.example/ok/1"], "webhook_url": f"https://{'b' * 70}.example/h"},
        "webhook_url",
    ),
    *[
        (
            f"an invalid CSS selector {sel!r}",
            {
                "urls": ["https://shop.example/ok/1"],
                "selectors": {"fields": {"t": {"selector": sel}}},
            },
            "selectors.fields.t.selector",
        )
        for sel in [
            "h1[",
            ":::",
            "a:contains('x')",
            "//div",
            "h1\x00",
            "div >",
            "[[",
            "a:nth-child(",
            "h1,",
        ]
    ],
    (
        "an invalid base selector",
        {
            "urls": ["https://shop.example/ok/1"],
            "selectors": {"base_selector": "ul >> li", "fields": {"t": {"selector": "h1"}}},
        },
        "selectors.base_selector",
    ),
    (
        "an invalid nested selector",
        {
            "urls": ["https://shop.example/ok/1"],
            "selectors": {
                "fields": {"items": {"selector": "li", "fields": {"name": {"selector": "b["}}}}
            },
        },
        "selectors.fields.items.fields.name.selector",
    ),
    *[
        (
            f"a webhook to {target}",
            {"urls": ["https://shop.example/ok/1"], "webhook_url": target},
            "webhook_url",
        )
        for target in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.5/hook",
            "http://[::1]/hook",
            "http://[::ffff:169.254.169.254]/",
            "http://0x7f000001/hook",
            "http://2130706433/hook",
            "http://metadata.google.internal/",
            "https://shop.example:22/hook",
        ]
    ],
    (
        "a webhook job to a private address",
        {
            "urls": ["https://shop.example/ok/1"],
            "type": "webhook",
            "webhook_url": "http://192.168.1.1/",
        },
        "webhook_url",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "status", "code", "field"), RAW_BODIES, ids=[b[0] for b in RAW_BODIES]
)
@pytest.mark.parametrize("route", ["/jobs", "/extract", "/jobs/quote"])
def test_hostile_raw_bodies_are_4xx(
    api: ModuleType,
    key: str,
    route: str,
    name: str,
    raw: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    got, data, _ = call(api, "POST", route, key=key, raw=raw)
    assert got == status, data
    assert_error(got, data, code, field)


@pytest.mark.parametrize(("name", "body", "field"), BODIES, ids=[b[0] for b in BODIES])
@pytest.mark.parametrize("route", ["/jobs", "/extract", "/jobs/quote"])
def test_hostile_bodies_are_422_naming_the_field(
    api: ModuleType, key: str, route: str, name: str, body: dict[str, Any], field: str
) -> None:
    if route == "/jobs/quote" and "webhook" in field:
        pytest.skip("a quote sends no webhook")
    if route == "/extract" and "type" in body:
        pytest.skip("/extract runs sync jobs only")
    got, data, _ = call(api, "POST", route, key=key, body=body)
    assert got == 422, data
    assert_error(got, data, "validation_error", field)
    listed = call(api, "GET", "/jobs", key=key)[1]
    assert listed["jobs"] == [], "a refused body makes no job"


REEXTRACT_BODIES: list[tuple[str, dict[str, Any], str]] = [
    (
        "reextract: a ceiling DynamoDB cannot store",
        {"instruction": "x", "max_cost_usd": 1e-300},
        "max_cost_usd",
    ),
    (
        "reextract: a bad selector",
        {"selectors": {"fields": {"t": {"selector": "h1["}}}},
        "selectors.fields.t.selector",
    ),
    (
        "reextract: a schema bound of 1e200",
        {"json_schema": _schema(maximum=1e200)["json_schema"]},
        "json_schema.properties.price.maximum",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "field"), REEXTRACT_BODIES, ids=[b[0] for b in REEXTRACT_BODIES]
)
def test_hostile_reextractions_are_422(
    api: ModuleType, key: str, name: str, body: dict[str, Any], field: str
) -> None:
    got, data, _ = call(
        api, "POST", "/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV/reextract", key=key, body=body
    )
    assert got == 422, data
    assert_error(got, data, "validation_error", field)


@pytest.mark.parametrize(
    "cursor",
    [
        # base64url JSON of keys that are not the by-owner index's keys
        "eyJhIjoiYiIsImpvYl9pZCI6IngiLCJvd25lcl9pZCI6Im93bmVyLWEifQ",
        # the right key names with a value that is not a timestamp
        "eyJjcmVhdGVkX2F0Ijoibm90IGEgdGltZSIsImpvYl9pZCI6ImpvYl8xIiwib3duZXJfaWQiOiJvd25lci1hIn0",
        # the right key names with a job id that is not one
        "eyJjcmVhdGVkX2F0IjoiMjAyNi0wMS0wMVQwMDowMDowMC4wMDAwMDBaIiwiam9iX2lkIjoiIiwib3duZXJfaWQiOiJvd25lci1hIn0",
        "e30",  # {}
        "W10",  # []
        # one shard's position under another owner's shard key
        "eyJsIjoiMDJiMzJmYTcxZGY5Y2Y3YiIsInAiOlt7ImNyZWF0ZWRfYXQiOiIyMDI2LTAxLTAxVDAwOjAwOjAwLjAwMDAwMFoiLCJqb2JfaWQiOiJqb2JfMDFBUlozTkRFS1RTVjRSUkZGUTY5RzVGQVYiLCJvd25lcl9rZXkiOiJvd25lci1iIzAifSxudWxsLG51bGwsbnVsbCxudWxsLG51bGwsbnVsbCxudWxsXX0",
        # every shard read to its end (no cursor is ever made of that)
        "eyJsIjoiMDJiMzJmYTcxZGY5Y2Y3YiIsInAiOlsiZG9uZSIsImRvbmUiLCJkb25lIiwiZG9uZSIsImRvbmUiLCJkb25lIiwiZG9uZSIsImRvbmUiXX0",
        # one position fewer than the index has shards
        "eyJsIjoiMDJiMzJmYTcxZGY5Y2Y3YiIsInAiOltudWxsLG51bGwsbnVsbCxudWxsLG51bGwsbnVsbCxudWxsXX0",
        # the owner's own shard key with a value that is not a timestamp
        "eyJsIjoiMDJiMzJmYTcxZGY5Y2Y3YiIsInAiOlt7ImNyZWF0ZWRfYXQiOiJ5ZXN0ZXJkYXkiLCJqb2JfaWQiOiJqb2JfMDFBUlozTkRFS1RTVjRSUkZGUTY5RzVGQVYiLCJvd25lcl9rZXkiOiJvd25lci1hIzAifSxudWxsLG51bGwsbnVsbCxudWxsLG51bGwsbnVsbCxudWxsXX0",
        # a well-formed cursor of another owner's listing
        "eyJsIjoiNjFjNjE0NGM5OGNkOTBkMCIsInAiOltudWxsLG51bGwsbnVsbCxudWxsLG51bGwsbnVsbCxudWxsLG51bGxdfQ",
    ],
)
def test_forged_cursors_are_400(api: ModuleType, key: str, cursor: str) -> None:
    got, data, _ = call(api, "GET", "/jobs", key=key, query=f"cursor={cursor}")
    assert got == 400, data
    assert_error(got, data, "invalid_cursor", "cursor")


def test_a_valid_body_still_passes_the_same_checks(api: ModuleType, key: str) -> None:
    body = {
        **JOB,
        "max_cost_usd": 0.5,
        "json_schema": _schema(maximum=1e9, minimum=0.01)["json_schema"],
        "webhook_url": "https://hooks.example/atlas",
    }
    body.pop("selectors")
    got, data, _ = call(api, "POST", "/jobs", key=key, body=body)
    assert got == 202, data

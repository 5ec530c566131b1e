"""The job console as the API serves it: public static files under a strict policy, and the
listing of a batch's children it shows (the browser drives it in tests/e2e/test_console.py)."""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pytest

from atlas_codex.jobs.messages import JobMessage
from atlas_codex_local.apigw import context, rest_event
from tests.support.api_calls import assert_error, call

WSS = "wss://abc123.execute-api.eu-west-1.amazonaws.com/dev"


def get(api: ModuleType, path: str, handler: Any = None) -> tuple[int, str, dict[str, str]]:
    out = (handler or api.handler)(rest_event("GET", path), context(28_000))
    headers = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
    for k, v in (out.get("multiValueHeaders") or {}).items():
        headers.setdefault(k.lower(), v[0])
    return out["statusCode"], out["body"], headers


def csp(headers: dict[str, str]) -> dict[str, str]:
    parts = [p.strip().split(" ", 1) for p in headers["content-security-policy"].split(";")]
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def test_the_console_page_is_public_and_allows_only_its_own_files(api: ModuleType) -> None:
    status, body, headers = get(api, "/console")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert '<script src="console/console.js"' in body
    policy = csp(headers)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"  # no WebSocket API here: the page polls
    assert policy["frame-ancestors"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in body  # nothing inline for the policy to allow
    assert "style=" not in body


@pytest.mark.parametrize(
    ("asset", "media"), [("console.js", "text/javascript"), ("console.css", "text/css")]
)
def test_the_console_files_are_served_with_their_types(
    api: ModuleType, asset: str, media: str
) -> None:
    status, body, headers = get(api, f"/console/{asset}")
    assert status == 200
    assert headers["content-type"].startswith(media)
    assert body


@pytest.mark.parametrize("asset", ["index.html", "__init__.py", "..", "%2e%2e%2fconfig.py", "x.js"])
def test_no_other_file_is_served(api: ModuleType, asset: str) -> None:
    out = api.handler(rest_event("GET", f"/console/{asset}"), context(28_000))
    assert out["statusCode"] == 404
    assert_error(404, json.loads(out["body"]), "not_found", "asset")


def test_a_deployed_console_subscribes_at_the_websocket_api(api: ModuleType) -> None:
    deployed = api.config.model_copy(update={"websocket_url": WSS})
    app = api.build_app(
        config=deployed, service=api.service, keys=api.keys, secrets=api.secrets, cors=None
    )
    status, body, headers = get(api, "/console", api.make_handler(app, api.keys, None))
    assert status == 200
    assert f'<meta name="atlas-websocket" content="{WSS}">' in body
    assert csp(headers)["connect-src"] == f"'self' {WSS}"


def test_the_console_is_in_the_openapi_document(api: ModuleType) -> None:
    document = json.loads(api.openapi_document())
    assert "text/html" in document["paths"]["/console"]["get"]["responses"]["200"]["content"]
    assert document["paths"]["/console/{asset}"]["get"]["security"] == []


def test_a_batch_s_children_are_listed_by_parent_for_its_owner_only(
    api: ModuleType, key: str, other_key: str
) -> None:
    urls = ["https://shop.example/ok/1", "https://shop.example/ok/2"]
    body: dict[str, Any] = {
        "type": "batch",
        "urls": urls,
        "selectors": {"fields": {"title": {"selector": "h1"}}},
    }
    status, batch, _ = call(api, "POST", "/jobs", key=key, body=body)
    assert status == 202
    message = JobMessage(job_id=batch["job_id"], correlation_id=batch["correlation_id"])
    api.service.process(message, receive_count=1, deadline=time.monotonic() + 60)  # fan-out
    status, page, _ = call(api, "GET", "/jobs", key=key, query=f"parent={batch['job_id']}")
    assert status == 200
    assert sorted(j["request"]["urls"][0] for j in page["jobs"]) == urls
    assert {j["parent_id"] for j in page["jobs"]} == {batch["job_id"]}
    top = call(api, "GET", "/jobs", key=key)[1]["jobs"]
    assert [j["job_id"] for j in top] == [batch["job_id"]]  # children stay out of the list
    assert (
        call(api, "GET", "/jobs", key=other_key, query=f"parent={batch['job_id']}")[1]["jobs"] == []
    )
    status, data, _ = call(api, "GET", "/jobs", key=key, query="parent=../etc")
    assert status == 422
    assert_error(status, data, "validation_error", "parent")

"""The REST API handler, driven with API Gateway proxy events, over the moto server."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex_local.apigw import context, rest_event
from tests.support.api_calls import JOB, assert_error, call

# ---------------------------------------------------------------------- auth


@pytest.mark.parametrize("given", [None, "", "ack_nope", "ack_abcdefghijkl_" + "x" * 43])
def test_a_missing_or_unknown_key_is_401(api: ModuleType, given: str | None) -> None:
    status, data, _ = call(api, "GET", "/jobs", key=given)
    assert status == 401
    assert_error(status, data, "unauthorized", "x-api-key")


def test_a_revoked_key_stops_working(api: ModuleType) -> None:
    issued = api.keys.issue("owner-z")
    assert call(api, "GET", "/jobs", key=issued.key)[0] == 200
    assert api.keys.revoke(issued.record.key_id)
    assert call(api, "GET", "/jobs", key=issued.key)[0] == 401


def test_keys_are_stored_hashed(api: ModuleType, key: str, config: RuntimeConfig) -> None:
    items = api.keys.db.scan(TableName=config.usage_table)["Items"]
    assert key not in json.dumps(items)


def test_health_and_openapi_need_no_key(api: ModuleType) -> None:
    status, data, _ = call(api, "GET", "/health")
    assert status == 200
    assert data["status"] == "ok"
    assert data["models"] == "not configured"
    status, doc, _ = call(api, "GET", "/openapi.json")
    assert status == 200
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result", "/extract", "/health"} <= set(
        doc["paths"]
    )


# ---------------------------------------------------------------------- jobs


def test_a_submitted_job_is_queued_with_the_correlation_id(
    api: ModuleType, key: str, config: RuntimeConfig
) -> None:
    status, data, headers = call(
        api, "POST", "/jobs", key=key, body=JOB, headers={"X-Correlation-Id": "trace-123"}
    )
    assert status == 202
    assert data["status"] == "pending"
    assert data["correlation_id"] == "trace-123"
    assert headers["x-correlation-id"] == "trace-123"
    messages = api.service.queue.sqs.receive_message(
        QueueUrl=config.jobs_queue_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {
        "job_id": data["job_id"],
        "correlation_id": "trace-123",
    }
    assert messages[0]["MessageAttributes"]["correlation_id"]["StringValue"] == "trace-123"


def test_a_correlation_id_is_made_when_none_is_sent(api: ModuleType, key: str) -> None:
    _, data, headers = call(
        api, "POST", "/jobs", key=key, body=JOB, headers={"X-Correlation-Id": "bad id!"}
    )
    assert headers["x-correlation-id"].startswith("req-")
    assert data["correlation_id"] == headers["x-correlation-id"]


def test_an_idempotent_retry_returns_the_first_job_with_200(api: ModuleType, key: str) -> None:
    first = call(api, "POST", "/jobs", key=key, body=JOB, headers={"Idempotency-Key": "abc-1"})
    retry = call(api, "POST", "/jobs", key=key, body=JOB, headers={"Idempotency-Key": "abc-1"})
    assert (first[0], retry[0]) == (202, 200)
    assert retry[1]["job_id"] == first[1]["job_id"]
    other = {**JOB, "urls": ["https://shop.example/ok/2"]}
    status, data, _ = call(
        api, "POST", "/jobs", key=key, body=other, headers={"Idempotency-Key": "abc-1"}
    )
    assert status == 409
    assert_error(status, data, "idempotency_conflict", "Idempotency-Key")


def test_another_owner_s_job_is_404(api: ModuleType, key: str, other_key: str) -> None:
    _, job, _ = call(api, "POST", "/jobs", key=key, body=JOB)
    for method, path in (
        ("GET", f"/jobs/{job['job_id']}"),
        ("DELETE", f"/jobs/{job['job_id']}"),
        ("GET", f"/jobs/{job['job_id']}/result"),
    ):
        status, data, _ = call(api, method, path, key=other_key)
        assert status == 404
        assert_error(status, data, "job_not_found")
    assert call(api, "GET", "/jobs", key=other_key)[1]["jobs"] == []


def test_cancel_then_cancel_again_is_409(api: ModuleType, key: str) -> None:
    _, job, _ = call(api, "POST", "/jobs", key=key, body=JOB)
    status, data, _ = call(api, "DELETE", f"/jobs/{job['job_id']}", key=key)
    assert (status, data["status"]) == (200, "cancelled")
    status, data, _ = call(api, "DELETE", f"/jobs/{job['job_id']}", key=key)
    assert status == 409
    assert_error(status, data, "invalid_transition")
    assert "cancelled" in data["error"]["message"]


def test_listing_pages_with_a_cursor_and_filters(api: ModuleType, key: str) -> None:
    ids = [call(api, "POST", "/jobs", key=key, body=JOB)[1]["job_id"] for _ in range(3)]
    status, page, _ = call(api, "GET", "/jobs", key=key, query="limit=2")
    assert status == 200
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    _, rest, _ = call(api, "GET", "/jobs", key=key, query=f"limit=2&cursor={page['next_cursor']}")
    assert [j["job_id"] for j in rest["jobs"]] == [ids[0]]
    assert rest["next_cursor"] is None
    _, none, _ = call(api, "GET", "/jobs", key=key, query="status=completed")
    assert none["jobs"] == []


def test_a_result_before_completion_is_409(api: ModuleType, key: str) -> None:
    _, job, _ = call(api, "POST", "/jobs", key=key, body=JOB)
    status, data, _ = call(api, "GET", f"/jobs/{job['job_id']}/result", key=key)
    assert status == 409
    assert_error(status, data, "result_not_ready")


# ---------------------------------------------------------------------- sync


def test_extract_answers_with_the_result_when_it_finishes_in_time(
    api: ModuleType, key: str
) -> None:
    status, data, _ = call(
        api, "POST", "/extract", key=key, body={"urls": ["https://shop.example/ok/9"]}
    )
    assert status == 200
    assert data["job"]["status"] == "completed"
    assert data["job"]["type"] == "sync"
    assert data["result"]["data"]["url"] == "https://shop.example/ok/9"
    status, stored, _ = call(api, "GET", f"/jobs/{data['job']['job_id']}/result", key=key)
    assert (status, stored["delivery"]) == (200, "inline")


def test_extract_past_its_deadline_goes_on_asynchronously(
    api: ModuleType, key: str, config: RuntimeConfig
) -> None:
    status, data, _ = call(
        api,
        "POST",
        "/extract",
        key=key,
        body={"urls": ["https://shop.example/slow-5"]},
        timeout_ms=3500,
    )
    assert status == 202
    assert data["job"]["status"] == "pending"
    assert [c["status"] for c in data["job"]["timeline"]] == ["pending", "processing", "pending"]
    assert "continuing asynchronously" in data["job"]["timeline"][-1]["reason"]
    assert data["job"]["status_url"] == f"/jobs/{data['job']['job_id']}"
    messages = api.service.queue.sqs.receive_message(QueueUrl=config.jobs_queue_url)["Messages"]
    assert json.loads(messages[0]["Body"])["job_id"] == data["job"]["job_id"]


def test_extract_refuses_other_job_types(api: ModuleType, key: str) -> None:
    status, data, _ = call(api, "POST", "/extract", key=key, body={**JOB, "type": "batch"})
    assert status == 422
    assert_error(status, data, "validation_error", "type")


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urls": ["https://a.example/"], "colour": "red"}, "colour"),
        ({"urls": []}, "urls"),
        ({"urls": ["file:///etc/passwd"]}, "urls.0"),
        ({"urls": ["https://a.example/"], "crawl": {"max_pages": "3"}}, "crawl.max_pages"),
        ({"urls": ["https://a.example/"], "type": "sync"}, "type"),
        ({"urls": ["https://a.example/"], "type": "webhook"}, None),
        ({}, "urls"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    api: ModuleType, key: str, body: Any, field: str | None
) -> None:
    status, data, _ = call(api, "POST", "/jobs", key=key, body=body)
    assert status == 422
    assert_error(status, data, "validation_error", field)


def test_invalid_json_is_400(api: ModuleType, key: str) -> None:
    status, data, _ = call(api, "POST", "/jobs", key=key, raw="{not json")
    assert status == 400
    assert_error(status, data, "invalid_json")


def test_a_wrong_content_type_is_415(api: ModuleType, key: str) -> None:
    status, data, _ = call(
        api, "POST", "/jobs", key=key, raw=json.dumps(JOB), headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert_error(status, data, "unsupported_media_type", "Content-Type")


def test_an_oversized_body_is_413(api: ModuleType, key: str) -> None:
    status, data, _ = call(
        api,
        "POST",
        "/jobs",
        key=key,
        body={"urls": ["https://a.example/"], "instruction": "x" * 300_000},
    )
    assert status == 413
    assert_error(status, data, "body_too_large")


def test_bad_query_parameters_are_422(api: ModuleType, key: str) -> None:
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("status=done", "status")):
        status, data, _ = call(api, "GET", "/jobs", key=key, query=query)
        assert status == 422
        assert_error(status, data, "validation_error", field)


def test_a_forged_cursor_is_400(api: ModuleType, key: str) -> None:
    status, data, _ = call(api, "GET", "/jobs", key=key, query="cursor=bm9wZQ")
    assert status == 400
    assert_error(status, data, "invalid_cursor", "cursor")


def test_a_bad_idempotency_key_is_400(api: ModuleType, key: str) -> None:
    status, data, _ = call(
        api, "POST", "/jobs", key=key, body=JOB, headers={"Idempotency-Key": "has space"}
    )
    assert status == 400
    assert_error(status, data, "invalid_header", "Idempotency-Key")


def test_an_unknown_route_is_404_in_the_error_shape(api: ModuleType, key: str) -> None:
    status, data, _ = call(api, "GET", "/nope", key=key)
    assert status == 404
    assert_error(status, data, "route_not_found")


def test_an_unexpected_error_is_500_without_internals(
    api: ModuleType, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**_: Any) -> None:
        raise RuntimeError("secret table name atlas-codex-jobs-local exploded")

    monkeypatch.setattr(api.service, "get", boom)
    status, data, headers = call(api, "GET", "/jobs/job_x", key=key)
    assert status == 500
    assert_error(status, data, "internal_error")
    assert "secret" not in json.dumps(data)
    assert data["error"]["correlation_id"] == headers["x-correlation-id"]


def test_cors_headers_follow_the_stage_settings(api: ModuleType, key: str) -> None:
    origin = {"Origin": "http://localhost:3000"}
    _, _, headers = call(api, "GET", "/jobs", key=key, headers=origin)
    assert headers["access-control-allow-origin"] in ("*", "http://localhost:3000")
    status, _, refused = call(api, "GET", "/jobs", headers=origin)
    assert status == 401
    assert "access-control-allow-origin" in refused


def test_a_body_that_is_not_utf8_is_400_not_500(api: ModuleType, key: str) -> None:
    status, data, _ = call(api, "POST", "/jobs", key=key, raw=b"\x80\xec{")
    assert status == 400
    assert_error(status, data, "invalid_json")


def test_the_resolver_serves_exactly_the_routes_the_stack_deploys(api: ModuleType) -> None:
    from atlas_codex.ground.api_routes import ROUTES

    resolver = api.app
    registered = {(r.method, r.path) for r in resolver._static_routes + resolver._dynamic_routes}
    assert registered == {(r.method, r.resolver_path) for r in ROUTES}


# ---------------------------------------------------------------------- the door's details


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urls": ["https://shop.example/a"], "type": "webhook"}, "webhook_url"),
        ({"urls": ["https://shop.example/a"], "type": "ai-process"}, "instruction"),
        (
            {"urls": ["https://shop.example/a"], "type": "batch", "crawl": {"max_pages": 2}},
            "crawl",
        ),
        (
            {
                "urls": ["https://shop.example/a"],
                "selectors": {
                    "fields": {
                        "x": {
                            "selector": "a",
                            "attribute": "href",
                            "fields": {"y": {"selector": "b"}},
                        }
                    }
                },
            },
            "selectors.fields.x.fields",
        ),
    ],
)
def test_a_rule_across_fields_names_the_field_to_fix(
    api: ModuleType, key: str, body: dict[str, Any], field: str
) -> None:
    status, data, _ = call(api, "POST", "/jobs", key=key, body=body)
    assert status == 422
    assert_error(status, data, "validation_error", field)


@pytest.mark.parametrize("media", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_media_types_are_case_insensitive(api: ModuleType, key: str, media: str) -> None:
    status, data, _ = call(
        api, "POST", "/jobs", key=key, raw=json.dumps(JOB), headers={"Content-Type": media}
    )
    assert status == 202, data


def test_rotating_the_webhook_secret_takes_no_body(api: ModuleType, key: str) -> None:
    before = call(api, "GET", "/webhook-secret", key=key)[1]["secrets"]
    out = api.handler(
        rest_event("POST", "/webhook-secret/rotate", headers={"x-api-key": key}), context(5000)
    )
    assert out["statusCode"] == 200, out["body"]
    after = json.loads(out["body"])["secrets"]
    assert after[0] not in before


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/jobs", "POST, GET, HEAD"),
        ("POST", "/jobs/job_1", "GET, DELETE, HEAD"),
        ("DELETE", "/jobs/job_1/result", "GET, HEAD"),
        ("GET", "/extract", "POST"),
    ],
)
def test_a_wrong_method_on_a_known_path_is_405_with_allow(
    api: ModuleType, key: str, method: str, path: str, allowed: str
) -> None:
    status, data, headers = call(api, method, path, key=key)
    assert status == 405
    assert_error(status, data, "method_not_allowed")
    assert headers["allow"] == allowed


def test_the_openapi_document_declares_the_key_the_headers_and_the_statuses(
    api: ModuleType,
) -> None:
    doc = json.loads(api.openapi_document())
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    paths = doc["paths"]
    assert paths["/health"]["get"]["security"] == []
    assert paths["/jobs"]["post"]["security"] == [{"apiKey": []}]
    create = paths["/jobs"]["post"]
    headers = {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert headers == {"X-Correlation-Id", "Idempotency-Key"}
    assert "Idempotency-Key" not in {p["name"] for p in paths["/jobs"]["get"]["parameters"]}
    assert {"202", "401", "422", "429", "500"} <= set(create["responses"])
    assert {"200", "202"} <= set(paths["/extract"]["post"]["responses"])
    for path in paths.values():
        for operation in path.values():
            for response in operation["responses"].values():
                assert "X-Correlation-Id" in response["headers"]


def test_cancelling_a_webhook_job_sends_its_webhook(
    api: ModuleType, key: str, config: RuntimeConfig
) -> None:
    body = {**JOB, "type": "webhook", "webhook_url": "https://hooks.example/atlas"}
    status, data, _ = call(api, "POST", "/jobs", key=key, body=body)
    assert status == 202
    status, data, _ = call(api, "DELETE", f"/jobs/{data['job_id']}", key=key)
    assert (status, data["status"]) == (200, "cancelled")
    queued = api.service.queue.sqs.receive_message(QueueUrl=config.webhooks_queue_url)
    assert json.loads(queued["Messages"][0]["Body"])["job_id"] == data["job_id"]

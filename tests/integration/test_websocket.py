"""Live status over WebSocket: connect with a key, subscribe to one's own job, get pushes;
a gone connection (410) is removed."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.record import CreateJobRequest, Job
from atlas_codex.notifications.live import LivePush
from atlas_codex_local.apigw import context


@pytest.fixture
def ws(config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, Stubber]:
    from atlas_codex.handlers import websocket

    management = boto3.client(
        "apigatewaymanagementapi", endpoint_url="https://ws.example/local", region_name="us-east-1"
    )
    stubber = Stubber(management)
    stubber.activate()
    monkeypatch.setattr(
        websocket, "live", LivePush(store=websocket.connections, management=management)
    )
    return websocket, stubber


def event(
    route: str, connection_id: str, *, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "requestContext": {"routeKey": route, "connectionId": connection_id, "requestId": "req-ws"},
        "queryStringParameters": query,
        "headers": {},
        "body": json.dumps(body) if body is not None else None,
    }


def job_for(ws: ModuleType, owner: str) -> Job:
    request = CreateJobRequest(urls=["https://shop.example/ok/1"])
    job: Job = ws.manager.create(owner_id=owner, request=request, correlation_id="corr-ws").job
    return job


def test_connect_needs_a_valid_key(ws: tuple[ModuleType, Stubber]) -> None:
    module, _ = ws
    refused = module.handler(event("$connect", "c1", query={"api_key": "ack_nope"}), context())
    assert refused["statusCode"] == 401
    assert json.loads(refused["body"])["error"]["code"] == "unauthorized"


def test_a_subscriber_gets_the_current_status_then_each_change(
    ws: tuple[ModuleType, Stubber],
) -> None:
    module, stubber = ws
    key = module.keys.issue("owner-a").key
    assert (
        module.handler(event("$connect", "c1", query={"api_key": key}), context())["statusCode"]
        == 200
    )
    job = job_for(module, "owner-a")
    stubber.add_response("post_to_connection", {}, {"ConnectionId": "c1", "Data": ANY})
    reply = module.handler(
        event("subscribe", "c1", body={"action": "subscribe", "job_id": job.job_id}), context()
    )
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == {"subscribed": job.job_id, "status": "pending"}
    claimed = module.manager.claim(job.job_id, deadline_at=job.created_at.replace(year=2100))
    stubber.add_response("post_to_connection", {}, {"ConnectionId": "c1", "Data": ANY})
    module.live(claimed)
    stubber.assert_no_pending_responses()


def test_another_owner_s_job_cannot_be_watched(ws: tuple[ModuleType, Stubber]) -> None:
    module, _ = ws
    key = module.keys.issue("owner-b").key
    module.handler(event("$connect", "c2", query={"api_key": key}), context())
    job = job_for(module, "owner-a")
    reply = module.handler(
        event("subscribe", "c2", body={"action": "subscribe", "job_id": job.job_id}), context()
    )
    assert reply["statusCode"] == 404
    error = json.loads(reply["body"])["error"]
    # The REST API's answer to the same refusal: code, message and the field to blame.
    assert (error["code"], error["message"], error["field"]) == (
        "job_not_found",
        "no such job",
        "job_id",
    )
    assert error["correlation_id"]
    assert module.connections.subscribers(job.job_id) == []


def test_a_malformed_message_is_422(ws: tuple[ModuleType, Stubber]) -> None:
    module, _ = ws
    key = module.keys.issue("owner-a").key
    module.handler(event("$connect", "c3", query={"api_key": key}), context())
    reply = module.handler(event("subscribe", "c3", body={"action": "watch"}), context())
    assert reply["statusCode"] == 422
    error = json.loads(reply["body"])["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == "action"


def test_a_gone_connection_is_removed(ws: tuple[ModuleType, Stubber]) -> None:
    module, stubber = ws
    key = module.keys.issue("owner-a").key
    module.handler(event("$connect", "c4", query={"api_key": key}), context())
    job = job_for(module, "owner-a")
    module.connections.subscribe("c4", job.job_id)
    stubber.add_client_error(
        "post_to_connection", service_error_code="GoneException", http_status_code=410
    )
    module.live(job)
    assert module.connections.subscribers(job.job_id) == []
    assert module.connections.owner_of("c4") is None


def test_disconnect_removes_the_connection_and_its_subscriptions(
    ws: tuple[ModuleType, Stubber],
) -> None:
    module, _ = ws
    key = module.keys.issue("owner-a").key
    module.handler(event("$connect", "c5", query={"api_key": key}), context())
    job = job_for(module, "owner-a")
    module.connections.subscribe("c5", job.job_id)
    assert module.handler(event("$disconnect", "c5"), context())["statusCode"] == 200
    assert module.connections.subscribers(job.job_id) == []

"""A model step that did not answer is never a plain success: for every kind of fault (the
endpoint's 5xx, 429 and timeouts, a refusal, a cut answer, an answer that is not JSON, a key
that cannot be read, every model cooling down after earlier failures) a schema job that the
page's own data could half answer ends ``partial`` with the model's failure as its reason.
Only a stage with no key configured serves the deterministic path without a word."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from atlas_codex.config import RuntimeConfig
from atlas_codex.engine.engine import Engine
from atlas_codex.engine.pages import PageStore
from atlas_codex.llm.catalog import catalog_for
from atlas_codex.llm.client import ModelClient
from atlas_codex.llm.extraction import ModelStrategies
from atlas_codex.llm.router import (
    CONSECUTIVE_FAILURES_TO_COOL,
    COOL_DOWN_S,
    Cooldowns,
    Router,
    chain,
)
from atlas_codex.values import utcnow
from tests.support.api_calls import call
from tests.support.functions import api_with
from tests.support.memory_site import MemorySite

PAGE = (
    "<html><head><title>Desk lamp</title>"
    "<meta property='og:title' content='Desk lamp'></head><body><main><h1>Desk lamp</h1>"
    "<p>A brass desk lamp with a linen shade.</p><p>Colour: brass</p></main></body></html>"
)
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "colour": {"type": "string"}},
}
Transport = Callable[[httpx2.Request], httpx2.Response]


def _completion(request: httpx2.Request, content: str | None, **extra: Any) -> httpx2.Response:
    sent = json.loads(request.content)
    message = {"role": "assistant", "content": content, "refusal": extra.get("refusal")}
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764374400,
            "model": sent["model"],
            "choices": [
                {"index": 0, "message": message, "finish_reason": extra.get("finish", "stop")}
            ],
            "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340},
        },
    )


def _error(status: int) -> Transport:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            status,
            json={"error": {"message": f"HTTP {status} from the endpoint", "type": "error"}},
            headers={"retry-after": "1"} if status == 429 else {},
        )

    return answer


def _timeout(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ReadTimeout("the endpoint did not answer", request=request)


FAULTS: dict[str, Transport] = {
    "server_error": _error(500),
    "rate_limited": _error(429),
    "timeout": _timeout,
    "refusal": lambda r: _completion(r, None, refusal="I can't help with that."),
    "length": lambda r: _completion(r, '{"data": {"title": "Desk', finish="length"),
    "bad_json": lambda r: _completion(r, "this is not JSON at all"),
}


def _job(config: RuntimeConfig, models: ModelStrategies) -> dict[str, Any]:
    engine = Engine(
        fetcher=MemorySite({"/lamp": PAGE}).fetcher(),
        models_available=True,
        models=models,
        page_store=PageStore.for_config(config),
    )
    api = api_with(config, engine)
    key = api.keys.issue("owner-f").key
    body = {"urls": ["http://127.0.0.1/lamp"], "json_schema": SCHEMA}
    _, done, _ = call(api, "POST", "/extract", key=key, body=body)
    job: dict[str, Any] = done["job"]
    return job


def _strategies(
    config: RuntimeConfig, transport: Transport, cooldowns: Cooldowns
) -> ModelStrategies:
    keyed = config.model_copy(update={"openai_api_key": "sk-test"})
    router = Router(
        client=ModelClient(
            api_key="sk-test", http_client=httpx2.Client(transport=httpx2.MockTransport(transport))
        ),
        catalog=catalog_for(config.model_policy),
        policy=config.model_policy,
        budget=None,
        cooldowns=cooldowns,
    )
    return ModelStrategies(keyed, router=router)


def _assert_visible(job: dict[str, Any], *said: str) -> None:
    assert job["status"] in ("completed", "failed")
    assert not (job["status"] == "completed" and job["quality"] == "complete"), job
    told = " ".join(job.get("quality_reasons") or []) + " ".join(job.get("warnings") or [])
    told += json.dumps(job.get("error") or {})
    for words in said:
        assert words in told, told


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_model_fault_is_never_a_plain_success(config: RuntimeConfig, fault: str) -> None:
    job = _job(config, _strategies(config, FAULTS[fault], Cooldowns()))

    _assert_visible(job, "model step failed")


def test_every_model_cooling_down_is_said_with_its_cause(config: RuntimeConfig) -> None:
    cooldowns = Cooldowns()
    policy = config.model_policy
    for model, _ in chain("nano", policy, catalog_for(policy), utcnow().date()):
        for _ in range(CONSECUTIVE_FAILURES_TO_COOL):
            cooldowns.failed(model, None, "server_error")
    answered: list[str] = []

    def never(request: httpx2.Request) -> httpx2.Response:
        answered.append("called")
        return _completion(request, "{}")

    job = _job(config, _strategies(config, never, cooldowns))

    assert answered == []  # no model was called
    _assert_visible(job, "cooling down", "its endpoint kept failing")
    told = " ".join(job["quality_reasons"])
    assert "model_unavailable" not in told
    assert "models called" not in told  # none was


def test_a_key_that_cannot_be_read_is_said(config: RuntimeConfig) -> None:
    from atlas_codex import config as config_module
    from atlas_codex import naming

    # The stage's own secret (its role may read it), never created here; a key another test
    # read from it is cached per process, as a function caches it: forgotten first.
    config_module._read_secret.cache_clear()
    secret = naming.openai_secret_name("local")
    unreadable = config.model_copy(update={"openai_api_key": None, "openai_secret_name": secret})
    job = _job(config, ModelStrategies(unreadable))

    _assert_visible(job, "could not be read")


def test_failures_long_ago_do_not_cool_a_model_now() -> None:
    now = [0.0]
    cooldowns = Cooldowns(clock=lambda: now[0])
    for _ in range(CONSECUTIVE_FAILURES_TO_COOL - 1):
        cooldowns.failed("gpt-x", None, "server_error")
        now[0] += 600  # ten minutes apart

    cooldowns.failed("gpt-x", None, "server_error")

    assert cooldowns.cooling("gpt-x") == 0.0


def test_when_nothing_served_the_failed_model_step_leads_the_error(config: RuntimeConfig) -> None:
    bare = "<html><body><main><p>Call us for prices.</p></main></body></html>"
    engine = Engine(
        fetcher=MemorySite({"/lamp": bare}).fetcher(),
        models_available=True,
        models=_strategies(config, FAULTS["server_error"], Cooldowns()),
        page_store=PageStore.for_config(config),
    )
    api = api_with(config, engine)
    key = api.keys.issue("owner-f").key
    body = {
        "urls": ["http://127.0.0.1/lamp"],
        "json_schema": {"type": "object", "properties": {"price": {"type": "number"}}},
    }
    _, done, _ = call(api, "POST", "/extract", key=key, body=body)

    job = done["job"]
    assert job["status"] == "failed"
    assert job["error"]["code"] == "model_error"  # the step that could have answered
    assert "HTTP 500" in job["error"]["message"]


def test_a_job_nothing_serves_while_every_model_cools_is_released_for_later(
    config: RuntimeConfig,
) -> None:
    """When the page's own data gives nothing and every model cools, the job is not failed
    for good (the page was fine): it is released, retryable, to run when the models are back."""
    from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
    from atlas_codex.extraction.request import JobRequest

    cooldowns = Cooldowns()
    policy = config.model_policy
    for model, _ in chain("nano", policy, catalog_for(policy), utcnow().date()):
        for _ in range(CONSECUTIVE_FAILURES_TO_COOL):
            cooldowns.failed(model, None, "rate_limited")
    bare = "<html><body><main><p>Call us for prices.</p></main></body></html>"
    engine = Engine(
        fetcher=MemorySite({"/lamp": bare}).fetcher(),
        models_available=True,
        models=_strategies(config, FAULTS["server_error"], cooldowns),
    )
    request = JobRequest.model_validate(
        {
            "urls": ["http://127.0.0.1/lamp"],
            "json_schema": {"type": "object", "properties": {"price": {"type": "number"}}},
        }
    )

    with pytest.raises(ExtractionError) as caught:
        engine.extract(request, ExtractionTask.within(30))

    assert caught.value.retryable
    assert caught.value.code == "model_rate_limited"
    assert "cooling down" in caught.value.message
    # Back when the first of those models may be called again, not the queue's own wait.
    assert caught.value.retry_after_s is not None
    assert 0 < caught.value.retry_after_s <= COOL_DOWN_S

"""A model step that did not answer is never a plain success: for every kind of fault (the
endpoint's 5xx, 429 and timeouts, a refusal, a cut answer, an answer that is not JSON, a key
that cannot be read, every model cooling down after earlier failures) a schema job that the
page's own data could half answer ends ``partial`` with the model's failure as its reason.
Only a stage with no key configured serves the deterministic path without a word."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.engine.pages.store import PageStore
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.llm.catalog import catalog_for
from atlas_codex.llm.extraction import ModelStrategies
from atlas_codex.llm.router import (
    CONSECUTIVE_FAILURES_TO_COOL,
    COOL_DOWN_S,
    Cooldowns,
    chain,
)
from tests.support.api_calls import call
from tests.support.functions import api_with
from tests.support.memory_site import MemorySite
from tests.support.model_server import Answer, ModelServer, error

PAGE = (
    "<html><head><title>Desk lamp</title>"
    "<meta property='og:title' content='Desk lamp'></head><body><main><h1>Desk lamp</h1>"
    "<p>A brass desk lamp with a linen shade.</p><p>Colour: brass</p></main></body></html>"
)
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "colour": {"type": "string"}},
}
FAULTS: dict[str, Any] = {
    "server_error": error(500, None, "HTTP 500 from the endpoint"),
    "rate_limited": error(429, "rate_limit_exceeded", "HTTP 429", headers={"retry-after": "1"}),
    "timeout": httpx2.ReadTimeout("the endpoint did not answer"),
    "refusal": Answer(refusal="I can't help with that."),
    "length": Answer(content='{"data": {"title": "Desk', finish="length"),
    "bad_json": Answer(content="this is not JSON at all"),
}
"""Every kind of model fault, as the endpoint answers it each time it is asked."""


def always(reply: Any) -> ModelServer:
    return ModelServer(lambda sent: reply)


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


def _assert_visible(job: dict[str, Any], *said: str) -> None:
    assert job["status"] in ("completed", "failed")
    assert not (job["status"] == "completed" and job["quality"] == "complete"), job
    told = " ".join(job.get("quality_reasons") or []) + " ".join(job.get("warnings") or [])
    told += json.dumps(job.get("error") or {})
    for words in said:
        assert words in told, told


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_model_fault_is_never_a_plain_success(config: RuntimeConfig, fault: str) -> None:
    job = _job(config, always(FAULTS[fault]).strategies(config))

    _assert_visible(job, "model step failed")


def test_every_model_cooling_down_is_said_with_its_cause(config: RuntimeConfig) -> None:
    cooldowns = Cooldowns()
    policy = config.model_policy
    for model, _ in chain("nano", policy, catalog_for(policy), utcnow().date()):
        for _ in range(CONSECUTIVE_FAILURES_TO_COOL):
            cooldowns.failed(model, None, "server_error")
    answered: list[str] = []

    def never(sent: dict[str, Any]) -> Any:
        answered.append("called")
        return {}

    job = _job(config, ModelServer(never).strategies(config, cooldowns=cooldowns))

    assert answered == []  # no model was called
    _assert_visible(job, "cooling down", "its endpoint kept failing")
    told = " ".join(job["quality_reasons"])
    assert "model_unavailable" not in told
    assert "models called" not in told  # none was


def test_a_key_that_cannot_be_read_is_said(config: RuntimeConfig) -> None:
    from atlas_codex.ground import config as config_module
    from atlas_codex.ground import naming

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
        models=always(FAULTS["server_error"]).strategies(config),
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
        models=always(FAULTS["server_error"]).strategies(config, cooldowns=cooldowns),
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

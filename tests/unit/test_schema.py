from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from atlas_codex.extraction.request import JobRequest
from atlas_codex.ground import limits
from atlas_codex.jobs.record import CreateJobRequest, Job, StatusChange
from atlas_codex.jobs.vocabulary import (
    ALLOWED_TRANSITIONS,
    JOB_STATUSES,
    TERMINAL_STATUSES,
    can_transition,
    new_job_id,
    sources_of,
)
from tests.strategies import jobs

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def make_job(**over: Any) -> Job:
    base: dict[str, Any] = {
        "job_id": "job_1",
        "type": "async",
        "status": "pending",
        "owner_id": "owner-1",
        "correlation_id": "corr-1",
        "request": JobRequest(urls=["https://example.com/"]),
        "created_at": NOW,
        "updated_at": NOW,
        "timeline": [StatusChange(status="pending", at=NOW)],
    }
    base.update(over)
    return Job(**base)


# ---------------------------------------------------------------- status machine


def test_terminal_statuses_have_no_way_out() -> None:
    assert {"completed", "failed", "cancelled", "timeout"} == TERMINAL_STATUSES
    for status in TERMINAL_STATUSES:
        for other in JOB_STATUSES:
            assert not can_transition(status, other)


def test_the_lifecycle_moves_forward_only_through_allowed_steps() -> None:
    assert can_transition("pending", "processing")
    assert can_transition("processing", "completed")
    assert can_transition("processing", "pending")  # a released claim after a transient error
    assert not can_transition("pending", "completed")
    assert not can_transition("pending", "pending")
    assert sources_of("completed") == {"processing"}
    assert sources_of("cancelled") == {"pending", "processing"}


def test_the_transition_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        ALLOWED_TRANSITIONS["completed"] = frozenset({"pending"})  # type: ignore[index]


# ---------------------------------------------------------------- strictness


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateJobRequest.model_validate_json('{"urls": ["https://a.example/"], "priority": 5}')
    assert caught.value.errors()[0]["loc"] == ("priority",)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"urls": ["https://a.example/"], "crawl": {"max_pages": "1"}}', ("crawl", "max_pages")),
        (
            '{"urls": ["https://a.example/"], "respect_robots_txt": "false"}',
            ("respect_robots_txt",),
        ),
        ('{"urls": "https://a.example/"}', ("urls",)),
        ('{"urls": ["https://a.example/"], "crawl": {"max_depth": 1.0}}', ("crawl", "max_depth")),
    ],
)
def test_values_are_never_coerced(body: str, loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateJobRequest.model_validate_json(body)
    assert caught.value.errors()[0]["loc"] == loc


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
        ("ftp://example.com/", "only http and https"),
        ("https:///path", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://exa mple.com/", "white space"),
        ("http://example.com:99999/", "invalid port"),
        ("https://example.com/" + "a" * limits.MAX_URL_LENGTH, "longer than"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JobRequest(urls=[url])


def test_requests_need_at_least_one_url_and_respect_the_limit() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        JobRequest(urls=[])
    with pytest.raises(ValidationError, match=f"at most {limits.MAX_URLS_PER_JOB}"):
        JobRequest(urls=["https://a.example/"] * (limits.MAX_URLS_PER_JOB + 1))


def test_a_deeply_nested_or_huge_json_schema_is_refused() -> None:
    deep: dict[str, Any] = {"type": "object"}
    node = deep
    for _ in range(limits.MAX_JSON_SCHEMA_DEPTH):
        node["properties"] = {"x": {"type": "object"}}
        node = node["properties"]["x"]
    with pytest.raises(ValidationError, match="nests"):
        JobRequest(urls=["https://a.example/"], json_schema=deep)
    huge: dict[str, Any] = {
        "type": "object",
        "properties": {f"f{i}": {"type": "string", "description": "x" * 100} for i in range(400)},
    }
    with pytest.raises(ValidationError, match="bytes; the limit is"):
        JobRequest(urls=["https://a.example/"], json_schema=huge)
    with pytest.raises(ValidationError, match="must be of type 'object'"):
        JobRequest(urls=["https://a.example/"], json_schema={"type": "array"})


def test_job_types_require_what_they_use() -> None:
    with pytest.raises(ValidationError, match="webhook job needs 'webhook_url'"):
        CreateJobRequest(type="webhook", urls=["https://a.example/"])
    with pytest.raises(ValidationError, match="ai-process job needs"):
        CreateJobRequest(type="ai-process", urls=["https://a.example/"])
    request = CreateJobRequest(
        type="ai-process", urls=["https://a.example/"], instruction="find prices"
    )
    assert request.job_request().instruction == "find prices"


def test_selector_schemas_are_bounded_and_consistent() -> None:
    body = {
        "urls": ["https://a.example/"],
        "selectors": {"fields": {"title": {"selector": "h1", "fields": {}}}},
    }
    with pytest.raises(ValidationError, match="at least one field"):
        CreateJobRequest.model_validate(body)
    body["selectors"] = {"fields": {"bad name": {"selector": "h1"}}}
    with pytest.raises(ValidationError):
        CreateJobRequest.model_validate(body)


# ---------------------------------------------------------------- record invariants


def test_the_timeline_must_end_in_the_current_status() -> None:
    with pytest.raises(
        ValidationError, match="timeline ends in 'pending' but the status is 'processing'"
    ):
        make_job(status="processing")


def test_a_failed_job_must_say_why() -> None:
    with pytest.raises(ValidationError, match="must carry an error"):
        make_job(status="failed", timeline=[StatusChange(status="failed", at=NOW)])


def test_an_unfinished_job_has_no_result() -> None:
    with pytest.raises(ValidationError, match="cannot have a result yet"):
        make_job(result_location="results/job_1.json")


def test_timestamps_must_carry_a_zone_and_are_stored_in_utc() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        make_job(created_at=datetime(2026, 1, 1))
    paris = timezone(timedelta(hours=1))
    job = make_job(created_at=datetime(2026, 11, 29, 13, 0, tzinfo=paris))
    assert job.to_item()["created_at"] == "2026-11-29T12:00:00.000000Z"


def test_stored_timestamps_sort_like_instants() -> None:
    earlier = make_job(created_at=NOW, updated_at=NOW).to_item()["created_at"]
    later = make_job(
        created_at=NOW + timedelta(microseconds=1), updated_at=NOW + timedelta(seconds=1)
    ).to_item()
    assert earlier < later["created_at"]


def test_new_job_ids_are_unique_and_sort_by_creation_time() -> None:
    first = new_job_id(NOW)
    second = new_job_id(NOW + timedelta(milliseconds=1))
    assert first.startswith("job_")
    assert len(first) == 30
    assert first < second
    assert len({new_job_id(NOW) for _ in range(1000)}) == 1000


# ---------------------------------------------------------------- DynamoDB round trip


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(job=jobs())
def test_every_canonical_job_round_trips_through_its_dynamodb_item(job: Job) -> None:
    item = job.to_item()
    assert Job.from_item(item) == job
    assert Job.from_item(item).to_item() == item
    # The item carries no None at the top level (index keys may not be NULL).
    assert all(value is not None for value in item.values())


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(job=jobs())
def test_the_item_survives_dynamodb_s_wire_format(job: Job) -> None:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    wire = {k: TypeSerializer().serialize(v) for k, v in job.to_item().items()}
    back = {k: TypeDeserializer().deserialize(json.loads(json.dumps(v))) for k, v in wire.items()}
    assert Job.from_item(back) == job


def test_a_stored_item_with_a_wrong_type_is_an_error_not_a_coercion() -> None:
    item = make_job().to_item()
    item["version"] = "1"
    with pytest.raises(ValidationError, match="version"):
        Job.from_item(item)
    item = make_job().to_item()
    item["phantom"] = True
    with pytest.raises(ValidationError, match="phantom"):
        Job.from_item(item)


def test_a_number_dynamodb_cannot_store_is_a_clear_error() -> None:
    from atlas_codex.jobs.record import JobResult

    job = make_job(
        status="completed",
        result=JobResult(data={"tiny": 1e-200}),
        timeline=[StatusChange(status="completed", at=NOW)],
    )
    with pytest.raises(ValueError, match="outside the range that can be stored"):
        job.to_item()


def test_costs_keep_twelve_decimals() -> None:
    from atlas_codex.jobs.record import JobCost

    assert JobCost(actual_usd=2.2e-311).actual_usd == 0.0
    assert JobCost(actual_usd=0.000123456789012345).actual_usd == 0.000123456789


@pytest.mark.parametrize("number", [10**50, 1e50, -(10**60), 10**125, 1e-130])
def test_large_round_numbers_are_stored_and_read_back(number: float) -> None:
    from atlas_codex.extraction.request import JobRequest
    from atlas_codex.jobs.record import Job

    request = JobRequest.model_validate(
        {
            "urls": ["https://shop.example/a"],
            "json_schema": {"type": "object", "properties": {"p": {"maximum": number}}},
        }
    )
    job = make_job(request=request)
    again = Job.from_item(job.to_item())
    assert again.request.json_schema is not None
    stored: Any = again.request.json_schema["properties"]
    assert float(stored["p"]["maximum"]) == float(number)

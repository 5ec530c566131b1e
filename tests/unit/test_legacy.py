from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_codex.jobs.record import Job
from atlas_codex_local.legacy import (
    AI_STATES,
    LEGACY_OWNER,
    NAVIGATION_STATES,
    SYNC_STATES,
    LegacyConversionError,
    convert,
    detect_format,
)
from tests.strategies import jobs, legacy_ai, legacy_navigation, legacy_sync

SLOW = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- properties


@SLOW
@given(record=legacy_sync())
def test_every_valid_sync_engine_record_converts(record: dict[str, Any]) -> None:
    result = convert(record)
    job = result.job
    assert result.format == "v0-sync"
    assert job.job_id == str(record["jobId"])
    assert job.status == SYNC_STATES[record["state"]]
    assert job.request.urls == [record["url"]]
    assert job.created_at == datetime.fromtimestamp(record["created"] / 1000, tz=UTC)
    assert job.owner_id == LEGACY_OWNER
    assert job.migrated_from is not None
    assert job.migrated_from.source_id == job.job_id
    if job.status == "completed":
        assert job.result is not None
        assert job.result.data == record.get("output")
    assert Job.from_item(job.to_item()) == job


@SLOW
@given(record=legacy_ai())
def test_every_valid_ai_processor_record_converts(record: dict[str, Any]) -> None:
    result = convert(record)
    job = result.job
    assert result.format == "v0-ai"
    assert job.type == "ai-process"
    assert job.status == AI_STATES[record["status"]]
    assert job.request.urls == record["urls"]
    assert job.request.instruction == (record.get("prompt") or None)
    if "usage" in record:
        assert job.model == record["usage"]["model"]
        assert job.attempts[0].input_tokens == record["usage"]["prompt_tokens"]
        assert job.attempts[0].output_tokens == record["usage"]["completion_tokens"]
    if job.status == "completed" and "result_json" in record:
        assert job.result is not None
        assert job.result.data == json.loads(record["result_json"])
    assert result.unmapped == [] or all(
        u.path in ("result_json", "prompt") for u in result.unmapped
    )
    assert Job.from_item(job.to_item()) == job


@SLOW
@given(record=legacy_navigation())
def test_every_valid_navigation_engine_record_converts(record: dict[str, Any]) -> None:
    result = convert(record)
    job = result.job
    assert result.format == "v0-navigation"
    assert job.status == NAVIGATION_STATES[record["job_status"]]
    assert job.request.urls == [record["start_url"]]
    assert job.request.crawl is not None
    if "max_pages" in record:
        assert job.request.crawl.max_pages == record["max_pages"]
    if job.status == "completed" and record.get("pages"):
        assert job.result is not None
        assert [p.url for p in job.result.pages] == [p["url"] for p in record["pages"]]
    assert Job.from_item(job.to_item()) == job


@SLOW
@given(
    record=st.one_of(legacy_sync(), legacy_ai(), legacy_navigation()),
    extra=st.text(min_size=1, max_size=8),
)
def test_fields_no_format_knows_are_reported_not_dropped(
    record: dict[str, Any], extra: str
) -> None:
    key = f"x_{extra}"
    result = convert({**record, key: [1, "two"]})
    assert any(u.path == key and u.value == [1, "two"] for u in result.unmapped)


@SLOW
@given(record=st.one_of(legacy_sync(), legacy_ai(), legacy_navigation()))
def test_conversion_is_deterministic(record: dict[str, Any]) -> None:
    assert convert(record) == convert(record)


@SLOW
@given(job=jobs())
def test_canonical_records_are_not_mistaken_for_legacy_ones(job: Job) -> None:
    assert detect_format(job.to_item()) is None


# ---------------------------------------------------------------- examples


def test_a_failed_sync_job_keeps_its_error_message() -> None:
    job = convert(
        {
            "jobId": "abc",
            "state": "error",
            "url": "https://a.example/",
            "errorMessage": "boom",
            "created": 1.7e12,
        }
    ).job
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.message == "boom"
    assert job.error.code == "legacy_failure"


def test_a_failed_record_without_a_reason_gets_one() -> None:
    job = convert(
        {"jobId": "abc", "state": "error", "url": "https://a.example/", "created": 1.7e12}
    ).job
    assert job.error is not None
    assert "no reason" in job.error.message


def test_an_error_message_on_a_finished_job_is_reported() -> None:
    result = convert(
        {
            "jobId": "a",
            "state": "done",
            "url": "https://a.example/",
            "errorMessage": "warn",
            "created": 1.7e12,
        }
    )
    assert result.job.error is None
    assert [u.path for u in result.unmapped] == ["errorMessage"]


def test_unparseable_result_json_is_reported_and_the_rest_converts() -> None:
    result = convert(
        {
            "id": "a1",
            "status": "SUCCEEDED",
            "urls": ["https://a.example/"],
            "result_json": "{oops",
            "createdAt": "2025-01-02T03:04:05Z",
        }
    )
    assert result.job.status == "completed"
    assert result.unmapped[0].path == "result_json"
    assert "not valid JSON" in result.unmapped[0].reason


def test_navigation_timestamps_in_seconds_milliseconds_or_iso_all_convert() -> None:
    base = {"job_id": "n1", "job_status": "finished", "start_url": "https://a.example/"}
    for created, finished in (
        (1_700_000_000, 1_700_000_100),
        (1_700_000_000_000, 1_700_000_100_000),
        ("2023-11-14T22:13:20Z", "2023-11-14T22:15:00Z"),
    ):
        job = convert({**base, "timestamps": {"created": created, "finished": finished}}).job
        assert job.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
        assert job.updated_at == datetime(2023, 11, 14, 22, 15, tzinfo=UTC)
        assert [c.status for c in job.timeline] == ["pending", "completed"]


def test_a_finish_time_before_creation_is_reported_and_ignored() -> None:
    result = convert(
        {
            "job_id": "n1",
            "job_status": "finished",
            "start_url": "https://a.example/",
            "timestamps": {"created": 1_700_000_100_000, "finished": 1_700_000_000_000},
        }
    )
    assert result.job.updated_at == result.job.created_at
    assert any(u.path == "timestamps.finished" for u in result.unmapped)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"jobId": "a", "state": "paused", "url": "https://a.example/", "created": 1},
            "'state' is 'paused'",
        ),
        (
            {"jobId": "a", "state": "done", "url": "https://a.example/"},
            "'created' must be epoch milliseconds",
        ),
        (
            {"jobId": "a", "state": "done", "url": "file:///etc/passwd", "created": 1},
            "only http and https",
        ),
        (
            {"jobId": "a b", "state": "done", "url": "https://a.example/", "created": 1},
            "cannot be a job id",
        ),
        (
            {"id": "a", "status": "DONE", "urls": [], "createdAt": "2025-01-01"},
            "'status' is 'DONE'",
        ),
        (
            {"id": "a", "status": "FAILED", "urls": [1], "createdAt": "yesterday"},
            "'urls' must be a list of strings",
        ),
        (
            {
                "job_id": "n",
                "job_status": "finished",
                "start_url": "https://a.example/",
                "timestamps": {},
            },
            "'timestamps.created' is missing",
        ),
        ({"hello": "world"}, "matches no legacy format"),
    ],
)
def test_unconvertible_records_say_every_reason(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(LegacyConversionError, match=reason):
        convert(record)


def test_a_record_with_several_problems_lists_them_all() -> None:
    with pytest.raises(LegacyConversionError) as caught:
        convert({"jobId": "a", "state": "paused", "created": "yesterday"})
    assert len(caught.value.reasons) == 3  # state, url, created

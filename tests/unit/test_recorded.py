"""What the engine returns becomes record fields that always fit the record: every text cut
to its limit, notes kept once and to their number, attempts past the record's room summed so
no spend is lost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import (
    Cost,
    Evidence,
    ExtractionResult,
    Failure,
    PageResult,
    ReadView,
    Rendering,
    Step,
)
from atlas_codex.ground import limits
from atlas_codex.jobs import recorded
from atlas_codex.jobs.record import Job, StatusChange

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LONG = "x" * 50_000


def step(n: int, *, billed: bool = True) -> Step:
    return Step(
        strategy="schema-model",
        model=f"model-{n % 3}",
        started_at=NOW,
        ended_at=NOW,
        input_tokens=100 if billed else 0,
        output_tokens=10 if billed else 0,
        estimated_cost_usd=0.001 if billed else None,
        cost_usd=0.001 * (n + 1) if billed else None,
    )


def completed_job(result: ExtractionResult, **fields: Any) -> Job:
    return Job(
        job_id="job_1",
        type="async",
        status="completed",
        owner_id="owner-1",
        correlation_id="corr-1",
        request=JobRequest(urls=["https://example.com/"]),
        result=recorded.result(result),
        created_at=NOW,
        updated_at=NOW,
        timeline=[StatusChange(status="completed", at=NOW)],
        quality=result.quality,
        **fields,
    )


def test_every_text_over_its_limit_is_cut_and_the_record_takes_it() -> None:
    page = PageResult(
        url="https://example.com/",
        status="failed",
        error=Failure(code="fetch_failed", message=LONG),
        evidence={"name": Evidence(kind="quote", source=LONG, verified=False)},
        view=ReadView(name="model", tokens=10, full_page_tokens=100),
        rendered=Rendering(reason=LONG, ms=12, waited="selector"),
    )
    done = ExtractionResult(
        data={"name": "x"},
        pages=[page],
        strategy="schema-model",
        attempts=[
            step(0).model_copy(update={"error": Failure(code="model_refusal", message=LONG)})
        ],
        routing=[LONG],
        warnings=[LONG, LONG, "short"],
        quality="partial",
        quality_reasons=[LONG],
    )
    job = completed_job(
        done,
        attempts=recorded.attempts(done.attempts),
        routing=recorded.notes(done.routing),
        warnings=recorded.notes(done.warnings),
        quality_reasons=recorded.notes(done.quality_reasons),
    )
    assert job.result is not None
    stored = job.result.pages[0]
    assert stored.error is not None
    assert len(stored.error.message) == limits.MAX_ERROR_MESSAGE_CHARS
    assert len(stored.evidence["name"].source) == limits.MAX_EVIDENCE_QUOTE_CHARS
    assert stored.evidence["name"].verified is False
    assert stored.rendered is not None
    assert len(stored.rendered.reason) == limits.MAX_NOTE_CHARS
    assert stored.view is not None
    assert stored.view.full_page_tokens == 100
    assert job.attempts[0].error is not None
    assert len(job.attempts[0].error.message) == limits.MAX_ERROR_MESSAGE_CHARS
    assert [len(w) for w in job.warnings] == [limits.MAX_NOTE_CHARS, 5]  # the same note once
    assert Job.from_item(job.to_item()) == job


def test_notes_are_kept_once_in_order_and_to_their_number() -> None:
    many = [f"note {n}" for n in range(limits.MAX_NOTES + 5)]
    assert recorded.notes(["b", "a", "b", "", "c"]) == ["b", "a", "c"]
    assert recorded.notes(many) == many[: limits.MAX_NOTES]


def test_attempts_past_the_records_room_are_summed_and_no_spend_is_lost() -> None:
    steps = [step(n) for n in range(limits.MAX_ATTEMPTS_RECORDED + 10)]
    kept = recorded.attempts(steps)
    assert len(kept) == limits.MAX_ATTEMPTS_RECORDED
    assert kept[-1].error is not None
    assert kept[-1].error.code == "attempts_summed"
    assert sum(a.cost_usd or 0 for a in kept) == pytest.approx(sum(s.cost_usd or 0 for s in steps))
    assert sum(a.input_tokens for a in kept) == sum(s.input_tokens for s in steps)
    assert kept[-1].model == "model-1+model-2+model-0"


def test_unbilled_attempts_past_the_room_are_dropped() -> None:
    steps = [step(n, billed=False) for n in range(limits.MAX_ATTEMPTS_RECORDED + 3)]
    kept = recorded.attempts(steps)
    assert len(kept) == limits.MAX_ATTEMPTS_RECORDED
    assert all(a.error is None for a in kept)


def test_an_empty_message_is_recorded_as_its_code() -> None:
    assert recorded.error(Failure(code="render_failed", message="")).message == "render_failed"


def test_spend_keeps_its_aws_estimate_and_rounds_like_the_record() -> None:
    cost = recorded.cost(Cost(estimated_usd=0.1 + 0.2, actual_usd=1 / 3), aws_usd=0.00002)
    assert cost.aws_usd == 0.00002
    assert cost.actual_usd == round(1 / 3, 12)

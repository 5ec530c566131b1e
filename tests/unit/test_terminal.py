"""What local mode's terminal shows: a line per job event, the health status when it changes,
and machine output (EMF, JSON logs) routed to the run's log file."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from atlas_codex.extraction.request import JobRequest
from atlas_codex.jobs.record import Job, JobCost, JobError, JobResult, PageOutcome, StatusChange
from atlas_codex_local import terminal

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
EMF = json.dumps({"_aws": {"Timestamp": 1}, "JobsFinished": 1})


def job(status: str, **over: Any) -> Job:
    end = T0 + timedelta(milliseconds=410)
    fields: dict[str, Any] = {
        "job_id": "job_1",
        "type": "async",
        "status": status,
        "owner_id": "owner-1",
        "correlation_id": "corr-1",
        "request": JobRequest(urls=["https://a.example/", "https://b.example/"]),
        "created_at": T0,
        "updated_at": end if status != "pending" else T0,
        "timeline": [StatusChange(status=status, at=T0)],  # type: ignore[arg-type]
    }
    fields.update(over)
    return Job(**fields)


def test_a_finished_job_is_one_readable_line() -> None:
    pages = [PageOutcome(url="https://a.example/", status="ok")] * 3
    done = job(
        "completed",
        result=JobResult(data=[], pages=pages),
        cost=JobCost(actual_usd=0.00012),
        quality="complete",
    )
    line = terminal.job_line(done, now=0)
    assert line.endswith("job_1  async  completed  3 pages  0.41 s  $0.0001  quality=complete"), (
        line
    )


def test_a_partial_or_failed_job_says_why_on_its_line() -> None:
    partial = job(
        "completed",
        result=JobResult(pages=[PageOutcome(url="https://a.example/", status="ok")]),
        quality="partial",
        quality_reasons=["1 of 2 pages could not be read"],
    )
    assert "quality=partial  (1 of 2 pages could not be read)" in terminal.job_line(partial)
    failed = job("failed", error=JobError(code="empty_extraction", message="nothing found"))
    assert terminal.job_line(failed).endswith("empty_extraction: nothing found")
    pending = job("pending")
    assert terminal.job_line(pending).endswith("async  pending  2 urls")


def test_the_health_status_is_said_once_and_again_only_when_it_changes() -> None:
    health = terminal.HealthStatus()
    first = health.line({"status": "ok", "failed": 0, "degraded": 0})
    assert first is not None
    assert "health  ok" in first
    assert health.line({"status": "ok", "failed": 0, "degraded": 0}) is None
    worse = health.line({"status": "degraded", "failed": 0, "degraded": 1})
    assert worse is not None
    assert "degraded  (0 failed, 1 degraded; GET /health?detail=true says which)" in worse
    assert health.line({"status": "degraded", "failed": 0, "degraded": 1}) is None


def test_machine_lines_go_to_the_log_and_people_lines_to_the_terminal() -> None:
    screen, log = io.StringIO(), io.StringIO()
    router = terminal.LineRouter(screen, log)
    router.write("Serving.\n" + EMF + "\n  " + json.dumps({"name": "indented stays"}) + "\n")
    router.write('{"level":"WARNING","message":"x"')  # a line arrives in pieces
    router.write("}\nnot json {\n")
    router.flush()
    assert screen.getvalue() == 'Serving.\n  {"name": "indented stays"}\nnot json {\n'
    assert log.getvalue() == EMF + '\n{"level":"WARNING","message":"x"}\n'


def test_verbose_shows_machine_lines_as_well() -> None:
    screen, log = io.StringIO(), io.StringIO()
    router = terminal.LineRouter(screen, log, verbose=True)
    router.write(EMF + "\n")
    assert screen.getvalue() == log.getvalue() == EMF + "\n"


def test_each_run_has_its_own_directory_and_old_runs_are_pruned(tmp_path: Path) -> None:
    made = [
        terminal.RunFiles.create(tmp_path, now=T0 + timedelta(seconds=i))
        for i in range(terminal.RUNS_KEPT + 3)
    ]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted(f.directory.name for f in made[-terminal.RUNS_KEPT :])
    assert made[-1].service_log.parent == made[-1].directory

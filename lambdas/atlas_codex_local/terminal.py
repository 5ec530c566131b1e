"""What a person watching ``atlas-codex local up`` reads: one line per job event and per
change of the health status; the machine output (EMF metrics, JSON logs, Python warnings,
the emulator's own chatter) goes to the run's log files, named in the banner.

The functions' handlers print EMF and JSON logs to stdout, as Lambda wants them; local mode
puts a :class:`LineRouter` in front of stdout before it imports them, so each whole line
goes where it belongs. ``--verbose`` shows everything on the terminal as well.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from atlas_codex.jobs.record import Job

RUNS_KEPT: Final = 10
"""Older run directories are removed when a new run starts."""


@dataclass(frozen=True)
class RunFiles:
    """Where one local run writes what the terminal does not show."""

    directory: Path
    service_log: Path
    """EMF metrics, the functions' JSON logs and Python warnings."""
    emulator_log: Path
    """The AWS emulator's own output (e.g. resources it does not model)."""

    @classmethod
    def create(cls, runs_dir: Path, now: datetime | None = None) -> RunFiles:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
        directory = runs_dir / f"run-{stamp}"
        directory.mkdir(parents=True, exist_ok=False)
        _prune(runs_dir, keep=RUNS_KEPT)
        return cls(directory, directory / "service.log", directory / "emulator.log")


def _prune(runs_dir: Path, *, keep: int) -> None:
    runs = sorted(p for p in runs_dir.glob("run-*") if p.is_dir())
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def is_machine_line(line: str) -> bool:
    """A line for machines, not people: a JSON object from its first character (EMF
    metrics, structured logs); text for people, indented JSON included, is not."""
    text = line.rstrip()
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class LineRouter(io.TextIOBase):
    """A text stream that sends each whole line to ``terminal`` or, when it is for
    machines, to ``log`` (and to the terminal too when ``verbose``)."""

    def __init__(self, terminal: TextIO, log: TextIO, *, verbose: bool = False) -> None:
        self.terminal = terminal
        self.log = log
        self.verbose = verbose
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._route(line + "\n")
        return len(text)

    def _route(self, line: str) -> None:
        if is_machine_line(line):
            self.log.write(line)
            self.log.flush()
            if not self.verbose:
                return
        self.terminal.write(line)
        self.terminal.flush()

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._route(self._pending)
                self._pending = ""
        self.terminal.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.terminal.isatty()


def capture_warnings(log: TextIO) -> None:
    """Python warnings (e.g. from the emulator's libraries) to the log, not the terminal."""
    logging.captureWarnings(True)
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers = [handler]
    warnings_logger.propagate = False


def _clock(now: float | None = None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(now))


def job_line(job: Job, now: float | None = None) -> str:
    """One line a person can read for a job's status change, e.g.
    ``12:00:01 job_01... completed  3 pages  0.41 s  $0.0000  quality=complete``."""
    parts = [_clock(now), job.job_id, job.type, job.status]
    if job.status == "pending":
        urls = len(job.request.urls)
        parts.append(f"{urls} url{'s' if urls != 1 else ''}")
        if job.parent_id:
            parts.append(f"(child of {job.parent_id})")
    elif job.status in ("completed", "failed", "cancelled", "timeout"):
        if job.result is not None:
            pages = len(job.result.pages)
            parts.append(f"{pages} page{'s' if pages != 1 else ''}")
        elif job.result_location is not None:
            parts.append("result in the bucket")
        if job.children is not None:
            c = job.children
            parts.append(f"children {c.completed} ok/{c.failed} failed/{c.cancelled} cancelled")
        seconds = (job.updated_at - job.created_at).total_seconds()
        parts += [f"{seconds:.2f} s", f"${job.cost.actual_usd:.4f}"]
        if job.quality is not None:
            parts.append(f"quality={job.quality}")
            if job.quality_reasons:
                parts.append(f"({job.quality_reasons[0]})")
        if job.error is not None:
            parts.append(f"{job.error.code}: {job.error.message[:160]}")
        elif job.status != "completed" and job.timeline[-1].reason:
            parts.append(str(job.timeline[-1].reason)[:160])
        if job.continued_in:
            parts.append(f"continued in {job.continued_in}")
    return "  ".join(parts)


class JobEvents:
    """A notifier (``wiring.observe``) that prints :func:`job_line` for every status change."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> None:
        line = job_line(job)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()


class HealthStatus:
    """Says the health monitor's overall status on its first run and when it changes."""

    def __init__(self) -> None:
        self.last: str | None = None

    def line(self, result: dict[str, object], now: float | None = None) -> str | None:
        status = str(result.get("status"))
        if status == self.last:
            return None
        self.last = status
        failed, degraded = result.get("failed", 0), result.get("degraded", 0)
        detail = (
            "all checks ok"
            if status == "ok"
            else f"{failed} failed, {degraded} degraded; GET /health?detail=true says which"
        )
        return f"{_clock(now)}  health  {status}  ({detail})"

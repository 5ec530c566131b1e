"""Jobs and requests side by side: the figures behind ``limits.JOBS_PER_INVOCATION`` and the
isolation proofs at full size.

- The page readers in threads: every dev page of the HTML collections read in 8 threads,
  three times, in a child process (``tests/support/thread_stress.py``): crashes, and whether
  every threaded reading equals the sequential one; then pages per second at 1, 2, 4 and 8
  threads (a quarter of the pages).
- The worker: real main-content jobs in batches of 1, 2, 4 and 8 messages per invocation
  (``tests/integration/test_worker_concurrency.py`` at full size), jobs per second.
- Requests: 2,000 ``POST /jobs`` from 32 concurrent clients, each with its own owner, body
  and Idempotency-Key, through the local HTTP adapter's environments
  (``tests/integration/test_concurrent_requests.py`` at full size).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRESS_ROUNDS = 3
WORKER_JOBS = 48
REQUESTS = 2000


def _stress(threads: int, rounds: int, every: int) -> tuple[int, dict[str, object]]:
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            "tests.support.thread_stress",
            str(threads),
            str(rounds),
            str(every),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = run.stdout.strip().splitlines()
    return run.returncode, (json.loads(lines[-1]) if run.returncode == 0 and lines else {})


def _pytest(path: str, env: dict[str, str], prefix: str) -> tuple[int, list[str]]:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", path],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    return run.returncode, [line for line in run.stdout.splitlines() if line.startswith(prefix)]


def run() -> str:
    code, stress = _stress(8, STRESS_ROUNDS, 1)
    crashed = "no crash" if code == 0 else f"CRASHED (exit {code})"
    lines = [
        "## Jobs side by side",
        "",
        "`bench/concurrency.py`. The page readers (parse, both main-content readers, the "
        "model's view and its token count, the deterministic strategies) in threads, in a "
        "child process so a crash in native code is counted, not fatal:",
        "",
        f"- every dev page of the HTML collections ({stress.get('pages', '?')} pages) in 8 "
        f"threads, {STRESS_ROUNDS} rounds: {crashed}; every threaded reading equal to the "
        f"sequential one: {stress.get('same', '?')} (before the fix, trafilatura's shared lxml "
        "parser corrupted the heap in 1 run in 2 to 5 of 3 rounds).",
        "",
        "| threads | pages/s (a quarter of the dev pages) |",
        "|---:|---:|",
    ]
    for threads in (1, 2, 4, 8):
        code, figures = _stress(threads, 1, 4)
        if code != 0:
            lines.append(f"| {threads} | crashed (exit {code}) |")
            continue
        pages = int(str(figures["pages"]))
        seconds = float(str(figures["threaded_s"]))
        lines.append(f"| {threads} | {pages / seconds:.1f} |")
    code, worker = _pytest(
        "tests/integration/test_worker_concurrency.py",
        {"ATLAS_WORKER_JOBS": str(WORKER_JOBS)},
        "worker:",
    )
    lines += [
        "",
        f"The worker, {WORKER_JOBS} main-content jobs per batch size on the dev pages (real "
        "engine, no model, the moto server for the queue and tables"
        + ("" if code == 0 else f"; FAILED, pytest exit {code}")
        + "):",
        "",
        *(f"- {line.removeprefix('worker: ')}" for line in worker),
        "",
        "Reading a page is CPU work under one interpreter lock: more jobs per invocation "
        "overlap their waits (the emulator's calls, in Lambda the site's and the model's) "
        "more than their reading. `limits.JOBS_PER_INVOCATION` is 4.",
    ]
    code, requests = _pytest(
        "tests/integration/test_concurrent_requests.py",
        {"ATLAS_CONCURRENT_REQUESTS": str(REQUESTS)},
        "requests:",
    )
    lines += [
        "",
        "Requests through the local HTTP adapter (8 environments of the real api handler "
        "in one process, as local mode serves them)"
        + ("" if code == 0 else f"; FAILED, pytest exit {code}")
        + ":",
        "",
        *(f"- {line.removeprefix('requests: ')}" for line in requests),
    ]
    return "\n".join(lines)

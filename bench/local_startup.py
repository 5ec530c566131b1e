"""Local mode: time from `atlas-codex local up` to the first served request (/health)."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def once() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        info = Path(tmp) / "info.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATLAS_"))}
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas_codex_local.cli",
                "local",
                "up",
                "--port",
                "0",
                "--no-demo",
                "--info-file",
                str(info),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not info.exists():
                if proc.poll() is not None or time.monotonic() - started > 60:
                    raise RuntimeError("local mode did not start")
                time.sleep(0.01)
            import json

            url = json.loads(info.read_text())["api_url"]
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                response.read()
            return time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def run() -> str:
    samples = [once() for _ in range(RUNS)]
    return "\n".join(
        [
            "## Local mode start-up",
            "",
            f"`atlas-codex local up --port 0 --no-demo` from the command to the first answered `/health`, "
            f"median of {RUNS} runs: **{statistics.median(samples):.2f} s** "
            f"(min {min(samples):.2f} s, max {max(samples):.2f} s). It includes starting the AWS emulator "
            "process, creating the local stage's tables, queues and bucket, and importing the handlers.",
        ]
    )

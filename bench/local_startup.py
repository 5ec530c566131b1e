"""Local mode: time from `atlas-codex local up` to the first served request (/health)."""

from __future__ import annotations

import signal
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def once() -> float:
    from atlas_codex_local.local import spawn, wait_for_info

    with tempfile.TemporaryDirectory() as tmp:
        info_file = Path(tmp) / "info.json"
        started = time.monotonic()
        proc = spawn(info_file, "--no-demo")
        try:
            info = wait_for_info(proc, info_file)
            with urllib.request.urlopen(f"{info['api_url']}/health", timeout=5) as response:
                response.read()
            return time.monotonic() - started
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def run() -> str:
    import shutil

    from atlas_codex_local.deploy import CACHE_DIR

    shutil.rmtree(CACHE_DIR, ignore_errors=True)
    cold = once()
    samples = [once() for _ in range(RUNS)]
    return "\n".join(
        [
            "## Local mode start-up",
            "",
            f"`atlas-codex local up --port 0 --no-demo` from the command to the first answered `/health`, "
            f"median of {RUNS} runs: **{statistics.median(samples):.2f} s** "
            f"(min {min(samples):.2f} s, max {max(samples):.2f} s). It includes starting the AWS emulator "
            "process, deploying the local stage's data and messaging stacks into the emulator's "
            "CloudFormation from the cached synthesized templates (about 2 s of it: moto's "
            "CloudFormation is slow to create the tables), and importing the handlers; the "
            "monitoring stack deploys in the background. The first run after a change of the "
            f"stacks also synthesizes the local stage: **{cold:.1f} s** measured here with the "
            "cache cleared.",
        ]
    )

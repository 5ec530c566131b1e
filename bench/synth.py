"""`cdk synth` of every stage with cdk-nag and our guards, against a minimal one-queue app.

Both go through the same CDK CLI (Node 24 from the venv) in the same run, so the ratio
measures what our app adds: 16 stacks, two nag packs, the guards. Bundling is measured
apart: it is pip downloading the locked wheels for linux/arm64, network-bound.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
TARGET_RATIO = 2.5


def _cdk(*args: str, app: str | None = None) -> float:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    with tempfile.TemporaryDirectory() as out:
        command = [str(cdk), "--no-notices", "--no-version-reporting", "synth", "--quiet"]
        command += ["--output", out, *args]
        if app is not None:
            command += ["--app", app]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        return time.monotonic() - started


def run() -> str:
    minimal_app = f"{sys.executable} bench/minimal_cdk_app.py"
    ours: list[float] = []
    minimal: list[float] = []
    for _ in range(RUNS):  # interleaved, so both see the same machine
        minimal.append(_cdk(app=minimal_app))
        ours.append(_cdk("-c", "atlas-codex:bundle=false"))
    pip_cache = Path(tempfile.gettempdir()) / "atlas-codex-bench-pip"
    shutil.rmtree(pip_cache, ignore_errors=True)
    bundled = _cdk()
    ratio = statistics.median(ours) / statistics.median(minimal)
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    return "\n".join(
        [
            "## Synthesis time",
            "",
            f"`cdk synth` of dev, staging and prod (12 stacks) with the AwsSolutions and "
            f"Serverless cdk-nag packs and our guards (all inside the synthesis): median of {RUNS} runs "
            f"**{statistics.median(ours):.1f} s**; a minimal one-queue CDK app through the same "
            f"CLI: **{statistics.median(minimal):.1f} s**. Ratio **{ratio:.2f}x** "
            f"(target <= {TARGET_RATIO}x: {verdict}).",
            "",
            f"With local bundling of the Lambda asset (pip installing the locked wheels for "
            f"linux/arm64 into the asset, once per synthesis, shared by all 12 functions): "
            f"**{bundled:.1f} s** for one `make synth`.",
        ]
    )

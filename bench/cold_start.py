"""Cold-start cost of importing each handler module, in fresh interpreters.

Each target is imported by a new ``python`` process, ``RUNS`` times; we report the median
wall time of the whole process and of the import alone, and the ratio of the process time
to a bare interpreter and to a minimal Powertools handler measured in the same run.
"""

from __future__ import annotations

import os
import pkgutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
BARE = "(bare interpreter)"
MINIMAL = "bench.minimal_powertools"
# Domain modules every handler builds on: shown so a regression is easy to place.
DOMAIN_MODULES = ("atlas_codex.config", "atlas_codex.jobs.schema")

_PROBE = (
    "import time as _t, importlib as _i, sys as _s\n"
    "_s0 = _t.perf_counter()\n"
    "_m = _s.argv[1]\n"
    "_i.import_module(_m) if _m else None\n"
    "print(_t.perf_counter() - _s0)\n"
)


@dataclass(frozen=True)
class Sample:
    target: str
    process_ms: float
    import_ms: float


def handler_modules() -> list[str]:
    import atlas_codex.handlers as handlers

    return sorted(
        f"{handlers.__name__}.{m.name}"
        for m in pkgutil.iter_modules(handlers.__path__)
        if not m.name.startswith("_")
    )


def measure(module: str, runs: int = RUNS) -> Sample:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")]),
        # The handlers validate their environment at cold start: give them a valid one.
        **_bench_environment(),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Lambda assets ship .pyc-less, but we time warm .pyc
    arg = "" if module == BARE else module
    process, imports = [], []
    subprocess.run(
        [sys.executable, "-c", _PROBE, arg], env=env, check=True, capture_output=True
    )  # warm .pyc
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, arg], env=env, check=True, capture_output=True, text=True
        )
        process.append((time.perf_counter() - start) * 1000)
        imports.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return Sample(module, statistics.median(process), statistics.median(imports))


def _bench_environment() -> dict[str, str]:
    """The dev stage's function environment, as the stacks would set it."""
    import json

    from atlas_codex import naming
    from atlas_codex_stage.environment import function_environment
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = load_stage_settings("dev", context[DEFAULTS_KEY], context[STAGES_KEY])
    base = f"https://sqs.{settings.region}.amazonaws.com/{settings.account}"
    return {
        **function_environment(
            settings,
            tables={t: naming.table_name(t, "dev") for t in naming.TABLES},
            queue_urls={q: f"{base}/{naming.queue_name(q, 'dev')}" for q in naming.QUEUES},
            bucket=naming.bucket_name(settings.instance_id),
        ),
        "AWS_DEFAULT_REGION": settings.region,
        "POWERTOOLS_SERVICE_NAME": "atlas-codex",
        "POWERTOOLS_METRICS_NAMESPACE": "AtlasCodex",
    }


def run(runs: int = RUNS) -> str:
    bare = measure(BARE, runs)
    minimal = measure(MINIMAL, runs)
    handlers = handler_modules()
    rows = [bare, minimal] + [measure(m, runs) for m in (*DOMAIN_MODULES, *handlers)]
    lines = [
        "## Cold start: importing each handler module",
        "",
        f"Median of {runs} fresh interpreter runs each (after one run that writes the .pyc files), "
        f"Python {sys.version.split()[0]}. *Process* is the wall time of the whole "
        "`python -c 'import <module>'`; *import* is the import alone, timed inside it.",
        "",
        "| module | process ms | import ms | x bare interpreter | x minimal Powertools |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in rows:
        lines.append(
            f"| `{s.target}` | {s.process_ms:.1f} | {s.import_ms:.1f} | "
            f"{s.process_ms / bare.process_ms:.2f} | {s.process_ms / minimal.process_ms:.2f} |"
        )
    if not handlers:
        lines += ["", "No handler modules exist yet under `atlas_codex/handlers/`."]
    lines += [
        "",
        "The minimal Powertools handler is `bench/minimal_powertools.py` (Logger, REST resolver, "
        "one route). Handler rows are what a Lambda cold start pays before the first event.",
    ]
    return "\n".join(lines)

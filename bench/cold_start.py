"""Cold start as Lambda pays it: a fresh process, a read-only copy of the bundled asset, no
writable bytecode cache, the handler imported and one representative event handled.

Each function's asset is laid out as Lambda would run it: ``/var/task`` is the runtime
package plus the locked wheels (``requirements/lambda.txt``) with the bytecode packaging
ships (``stacks.packaging.compile_command``); the runtime's own libraries (boto3 and what it
needs: ``tools/runtime_lock.PROVIDED_BY_RUNTIME``) sit beside it, compiled too. Both are
copied from this venv's installed distributions (the same pinned versions; wheels for this
machine, not arm64) and made read-only. Each run is ``python -I -S -B``: no site-packages,
no environment-driven paths, no bytecode written. The minimal Powertools handler
(``bench/minimal_powertools.py``) is bundled and run the same way, in the same rounds
(paired: one run of each target per round), so machine noise hits all alike.

Events: api, ``POST /jobs`` with a valid key against the emulator; worker, one SQS message
of a CSS-selector job on a page served on loopback; webhooks, one delivery to a receiver on
loopback; health, one run. CPU is the process's user+system time and wall the time from its
spawn, both up to the answer to the first event (Lambda keeps the process: its exit is never
paid).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
RUNS: Final = 11
MINIMAL: Final = "minimal"
FLOOR: Final = "floor"
TARGETS: Final = ("api", "worker", "webhooks", "health")
GOALS: Final = {"api": 1.5, "worker": 2.0, "webhooks": 2.0, "health": 2.5}
"""The issue's goals: a cold start at most this many times the minimal handler's."""
WARM_REQUESTS: Final = 5
_PAGE: Final = (
    b"<!doctype html><html><head><title>Lamp</title></head><body><main><h1>Desk lamp</h1>"
    b"<span class='price'>24.90</span></main></body></html>"
)

_PROBE: Final = r"""
import importlib, json, resource, sys, time
paths, module, event_file, out_file, warm = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path[:0] = paths.split(":")
class Context:
    function_name = "bench"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench-request"; log_group_name = "bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 28000
t0 = time.perf_counter()
handler = importlib.import_module(module).handler
t1 = time.perf_counter()
events = json.load(open(event_file))
handler(events[0], Context())
t2 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cold_cpu_s, cold_end = usage.ru_utime + usage.ru_stime, time.monotonic()
warm_s = []
for event in events[1:1 + warm]:
    s = time.perf_counter(); handler(event, Context()); warm_s.append(time.perf_counter() - s)
json.dump({"import_s": t1 - t0, "first_event_s": t2 - t1, "warm_s": warm_s,
           "cold_cpu_s": cold_cpu_s, "cold_end": cold_end}, open(out_file, "w"))
"""


@dataclass(frozen=True)
class Sample:
    cpu_s: float
    wall_s: float
    import_s: float
    first_event_s: float
    warm_s: list[float]


@dataclass(frozen=True)
class Layout:
    asset: Path
    runtime: Path
    minimal: Path


# ---------------------------------------------------------------------- the bundles


def _runtime_lock() -> Any:
    spec = importlib.util.spec_from_file_location(
        "runtime_lock", ROOT / "tools" / "runtime_lock.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_distribution(name: str, dest: Path) -> None:
    dist = metadata.distribution(name)
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if parts[0] == ".." or "__pycache__" in parts or str(file).endswith(".pyc"):
            continue  # console scripts live outside site-packages; bytecode is made below
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = dest / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _locked(lock: Path) -> list[str]:
    return [
        line.split("==", 1)[0]
        for line in lock.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def build(dest: Path) -> Layout:
    """The asset, the runtime's libraries and the minimal handler's asset, read-only."""
    from stacks import packaging

    layout = Layout(dest / "var-task", dest / "var-runtime", dest / "minimal-task")
    shutil.copytree(
        packaging.LAMBDAS_DIR / packaging.RUNTIME_PACKAGE,
        layout.asset / packaging.RUNTIME_PACKAGE,
        ignore=shutil.ignore_patterns(*packaging.EXCLUDED),
    )
    for name in _locked(packaging.LOCK_FILE):
        _copy_distribution(name, layout.asset)
    for name in sorted(_runtime_lock().PROVIDED_BY_RUNTIME):
        _copy_distribution(name, layout.runtime)
    layout.minimal.mkdir(parents=True)
    for name in ("minimal_powertools.py", "minimal_with_sdk.py"):
        shutil.copy2(ROOT / "bench" / name, layout.minimal / name)
    for name in ("aws_lambda_powertools", "typing_extensions"):
        _copy_distribution(name, layout.minimal)
    for directory in (layout.asset, layout.runtime, layout.minimal):
        subprocess.run(packaging.compile_command(str(directory)), check=True)
        _read_only(directory)
    return layout


def _read_only(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def _writable(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


# ---------------------------------------------------------------------- the world around


class _Server:
    """A page to extract from and a webhook receiver, on loopback."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(_PAGE)))
                self.end_headers()
                self.wfile.write(_PAGE)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host_port = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def _world() -> Iterator[tuple[dict[str, str], _Server]]:
    """The emulator with the local stage, and the environment the functions get."""
    from atlas_codex.ground import aws
    from atlas_codex_local.emulator import EmulatorProcess
    from atlas_codex_local.provision import provision
    from atlas_codex_stage.environment import function_environment
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    server = _Server()
    emulator = EmulatorProcess().start()
    try:
        context = json.loads((ROOT / "cdk.json").read_text())["context"]
        settings = load_stage_settings("local", context[DEFAULTS_KEY], context[STAGES_KEY])
        settings = settings.model_copy(update={"allowed_private_hosts": (server.host_port,)})
        base = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_REGION": settings.region,
            "AWS_ENDPOINT_URL": emulator.endpoint,
        }
        os.environ.update(base)
        resources = provision(
            settings,
            dynamodb=aws.dynamodb(emulator.endpoint),
            sqs=aws.sqs(emulator.endpoint),
            s3=aws.s3(emulator.endpoint),
        )
        env = {
            **base,
            **function_environment(
                settings,
                tables=resources.tables,
                queue_urls=resources.queue_urls,
                bucket=resources.bucket,
            ),
            "POWERTOOLS_METRICS_NAMESPACE": "AtlasCodex",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PATH": os.environ.get("PATH", ""),
        }
        os.environ.update(env)
        yield env, server
    finally:
        emulator.stop()
        server.close()


def _events(target: str, env: dict[str, str], server: _Server, count: int) -> list[Any]:
    """``count`` events of one kind, each for a job of its own (SQS messages are the ones
    the service itself queued, received from the emulator)."""
    from atlas_codex.accounts.auth import ApiKeyStore
    from atlas_codex.ground import aws
    from atlas_codex.ground.config import get_config
    from atlas_codex.jobs.messages import JobMessage
    from atlas_codex.jobs.record import CreateJobRequest
    from atlas_codex.wiring import build_service
    from atlas_codex_local.apigw import rest_event
    from atlas_codex_local.poller import sqs_event

    get_config.cache_clear()
    config = get_config()
    body: dict[str, Any] = {
        "urls": [f"http://{server.host_port}/lamp"],
        "selectors": {"fields": {"name": {"selector": "h1"}}},
    }
    if target in (MINIMAL, FLOOR):
        return [rest_event("GET", "/ping") for _ in range(count)]
    if target == "health":
        return [{"id": f"bench-{i}", "source": "bench"} for i in range(count)]
    if target == "api":
        keys = ApiKeyStore(
            dynamodb=aws.dynamodb(config.aws_endpoint_url), table_name=config.usage_table
        )
        headers = {"x-api-key": keys.issue("bench-owner").key, "Content-Type": "application/json"}
        return [
            rest_event("POST", "/jobs", headers=headers, body=json.dumps(body))
            for _ in range(count)
        ]
    if target == "webhooks":
        body |= {"type": "webhook", "webhook_url": f"http://{server.host_port}/hook"}
    service = build_service(config)
    sqs = aws.sqs(config.aws_endpoint_url)
    queue_url = config.webhooks_queue_url if target == "webhooks" else config.jobs_queue_url
    events = []
    for i in range(count):
        job = service.submit(
            owner_id="bench-owner",
            request=CreateJobRequest.model_validate(body),
            correlation_id=f"bench-{target}-{i}",
            idempotency_key=None,
        ).job
        if target == "webhooks":  # run it here: its end queues the delivery
            jobs = sqs.receive_message(QueueUrl=config.jobs_queue_url, MaxNumberOfMessages=1)
            sqs.delete_message(
                QueueUrl=config.jobs_queue_url,
                ReceiptHandle=jobs["Messages"][0]["ReceiptHandle"],
            )
            message = JobMessage(job_id=job.job_id, correlation_id=job.correlation_id)
            service.process(message, receive_count=1, deadline=time.monotonic() + 60)
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )["Messages"]
        arn = f"arn:aws:sqs:{env['AWS_REGION']}:123456789012:{queue_url.rsplit('/', 1)[-1]}"
        events.append(sqs_event(received, arn, env["AWS_REGION"]))
    return events


# ---------------------------------------------------------------------- one run


def _run(
    module: str, paths: list[Path], events_file: Path, env: dict[str, str], warm: int
) -> Sample:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            sys._base_executable,  # type: ignore[attr-defined]
            "-I",
            "-S",
            "-B",
            "-c",
            _PROBE,
            ":".join(str(p) for p in paths),
            module,
            str(events_file),
            str(out_path),
            str(warm),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    status = proc.wait()
    errors = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise RuntimeError(f"{module} failed in the bundled asset:\n{errors[-3000:]}")
    result = json.loads(out_path.read_text())
    out_path.unlink()
    # Until the first event is answered: Lambda keeps the process, so its exit is not paid.
    return Sample(
        cpu_s=result["cold_cpu_s"],
        wall_s=result["cold_end"] - start,
        import_s=result["import_s"],
        first_event_s=result["first_event_s"],
        warm_s=result["warm_s"],
    )


MODULES: Final = {
    MINIMAL: "minimal_powertools",
    FLOOR: "minimal_with_sdk",
    **{t: f"atlas_codex.handlers.{t}" for t in TARGETS},
}


def measure(runs: int = RUNS) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {t: [] for t in (MINIMAL, FLOOR, *TARGETS)}
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp, _world() as (env, server):
        layout = build(Path(tmp) / "bundles")
        try:
            files: dict[str, list[Path]] = {t: [] for t in samples}
            for target in samples:
                warm = WARM_REQUESTS if target in (MINIMAL, "api") else 0
                with contextlib.redirect_stdout(io.StringIO()):  # the service's own EMF lines
                    events = _events(target, env, server, runs * (1 + warm) + 1)
                for i in range(runs + 1):
                    path = Path(tmp) / f"{target}-{i}.json"
                    chunk = events[i * (1 + warm) : (i + 1) * (1 + warm)] or events[:1]
                    path.write_text(json.dumps(chunk))
                    files[target].append(path)
            for i in range(runs + 1):  # round 0 warms the page cache; it is not counted
                for target in samples:
                    paths = {
                        MINIMAL: [layout.minimal, layout.runtime],
                        FLOOR: [layout.minimal, layout.asset, layout.runtime],
                    }.get(target, [layout.asset, layout.runtime])
                    warm = WARM_REQUESTS if target in (MINIMAL, "api") else 0
                    sample = _run(MODULES[target], paths, files[target][i], env, warm)
                    if i:
                        samples[target].append(sample)
        finally:
            _writable(Path(tmp))
    return samples


def run(runs: int = RUNS) -> str:
    from stacks import packaging

    samples = measure(runs)
    base = samples[MINIMAL]
    base_cpu = statistics.median(s.cpu_s for s in base)
    base_wall = statistics.median(s.wall_s for s in base)
    lines = [
        "## Cold start as Lambda pays it",
        "",
        f"Median of {runs} paired rounds (one run of each target per round, after one "
        f"uncounted round), Python {sys.version.split()[0]} (the functions' runtime is "
        f"{packaging.RUNTIME.name}), on this machine (2 cores). Each run is a fresh "
        "`python -I -S -B` process over a read-only copy of the bundled asset with its "
        "shipped bytecode and the runtime's boto3: the handler imported, then one event "
        "handled (api: `POST /jobs` against the emulator; worker: one SQS message of a "
        "CSS-selector job on a loopback page; webhooks: one delivery to a loopback "
        "receiver; health: one run). *CPU* is the process's user+system time and *wall* "
        "the time from its spawn, both until the first event is answered (Lambda keeps the "
        "process: its exit is not paid).",
        "",
        "| function | CPU ms | wall ms | import ms | first event ms | x minimal (CPU) | x minimal (wall) | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for target in (MINIMAL, FLOOR, *TARGETS):
        rows = samples[target]
        cpu = statistics.median(s.cpu_s for s in rows)
        wall = statistics.median(s.wall_s for s in rows)
        imp = statistics.median(s.import_s for s in rows)
        first = statistics.median(s.first_event_s for s in rows)
        goal = GOALS.get(target)
        verdict = (
            ""
            if goal is None
            else (
                f"<= {goal}x: {'met' if max(cpu / base_cpu, wall / base_wall) <= goal else 'not met'}"
            )
        )
        name = {
            MINIMAL: "minimal Powertools handler",
            FLOOR: "minimal + pydantic + a DynamoDB client",
        }.get(target, target)
        lines.append(
            f"| {name} | {cpu * 1000:.0f} | {wall * 1000:.0f} | {imp * 1000:.0f} | "
            f"{first * 1000:.0f} | {cpu / base_cpu:.2f} | {wall / base_wall:.2f} | {verdict} |"
        )
    warm_api = statistics.median(w for s in samples["api"] for w in s.warm_s)
    warm_min = statistics.median(w for s in samples[MINIMAL] for w in s.warm_s)
    lines += [
        "",
        f"Warm requests (the {WARM_REQUESTS} after the first, in the same processes): api "
        f"`POST /jobs` median {warm_api * 1000:.1f} ms; the minimal handler's `GET /ping` "
        f"{warm_min * 1000:.2f} ms.",
        "",
        "*minimal + pydantic + a DynamoDB client* (`bench/minimal_with_sdk.py`) is the floor "
        "of any handler that validates a request and writes a job: the goals for the api "
        "(1.5x) and the worker and webhooks (2x) are below it, so they cannot be met while the "
        "functions use Powertools with pydantic and an AWS SDK. Staging and prod run the api "
        "with SnapStart, where a new environment is restored from a snapshot taken after "
        "initialisation instead of importing and initialising (AWS documents startup 'as low "
        "as sub-second': Lambda developer guide, 'Improving startup performance with Lambda "
        "SnapStart'); a restore cannot be measured here.",
    ]
    return "\n".join(lines)

"""``atlas-codex local up``: the whole service on one machine, no AWS account, no OpenAI key.

The emulator (moto's server, in its own process) holds the local stage's tables, queues
and bucket, made from the same definitions the stacks deploy (table specs, naming, stage
settings). The real API handler is served over HTTP; pollers feed the real worker and
webhook handlers; a demo shop is served on loopback; an API key is issued; one demo job
(a crawl of the demo shop with direct extraction) runs; then the service serves until
Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from pydantic import TypeAdapter

from atlas_codex.ground import aws, limits
from atlas_codex.ground.policy import HostPort
from atlas_codex_local import terminal
from atlas_codex_local.demo_site import DemoSite
from atlas_codex_local.emulator import EmulatorProcess
from atlas_codex_local.http_adapter import ApiServer, fresh_handler
from atlas_codex_local.paths import INFO_FILE, KEY_FILE, ROOT, RUNS_DIR
from atlas_codex_local.poller import SqsPoller

DEMO_PORT: Final = 8765
"""The port the local stage's settings allow for the demo site (cdk.json)."""
_HOST_PORT: Final = TypeAdapter(HostPort)


class LocalModeError(RuntimeError):
    """Local mode cannot start; the message says why and what to do."""


@dataclass
class Running:
    api_url: str
    api_key: str
    aws_endpoint_url: str
    demo_url: str | None
    stop: threading.Event


def _settings(extra_hosts: list[str]) -> Any:
    from pydantic import ValidationError

    from atlas_codex_stage.settings import SettingsError, settings_from_file

    cdk_json = ROOT / "cdk.json"
    if not cdk_json.exists():
        raise LocalModeError(f"{cdk_json} not found: run local mode from the repository checkout")
    try:
        settings = settings_from_file("local", cdk_json)
        hosts = [_HOST_PORT.validate_python(h) for h in extra_hosts]
    except SettingsError as exc:
        raise LocalModeError(str(exc)) from None
    except ValidationError as exc:  # one line naming the entry, never pydantic's dump
        why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise LocalModeError(f"--allow-fetch: {why}") from None
    except ValueError as exc:
        raise LocalModeError(f"--allow-fetch: {exc}") from None
    allowed = tuple(dict.fromkeys([*settings.allowed_private_hosts, *hosts]))
    return settings.model_copy(update={"allowed_private_hosts": allowed})


def _with_budget(settings: Any, monthly_budget: float | None) -> Any:
    """The stage settings with the monthly model budget given to this run, if any."""
    from atlas_codex.ground.config import EnvVar

    given = monthly_budget
    if given is None and os.environ.get(EnvVar.MONTHLY_BUDGET_USD.value):
        try:
            given = float(os.environ[EnvVar.MONTHLY_BUDGET_USD.value])
        except ValueError:
            raise LocalModeError(
                f"{EnvVar.MONTHLY_BUDGET_USD.value} is not a number of dollars"
            ) from None
    if given is None:
        return settings
    try:
        budget = type(settings.budget).model_validate(
            {**settings.budget.model_dump(), "monthly_usd": given}
        )
    except ValueError as exc:
        raise LocalModeError(f"the monthly budget {given!r}: {exc}") from None
    return settings.model_copy(update={"budget": budget})


def _demo_site(enabled: bool) -> DemoSite | None:
    if not enabled:
        return None
    try:
        return DemoSite(port=DEMO_PORT)
    except OSError as exc:
        raise LocalModeError(
            f"the demo site's port {DEMO_PORT} is taken ({exc.strerror}); stop what uses it, or run with --no-demo"
        ) from None


def up(
    *,
    port: int = 8000,
    demo: bool = True,
    allow_fetch: list[str] | None = None,
    info_file: str | None = None,
    out: Any = None,
    stop: threading.Event | None = None,
    monthly_budget: float | None = None,
    verbose: bool = False,
    runs_dir: Path = RUNS_DIR,
) -> None:
    """Start everything, print how to use it, run the demo job, serve until stopped.
    ``monthly_budget`` (else ``$ATLAS_MONTHLY_BUDGET_USD``) wins over cdk.json's. The
    terminal shows a line per job event and per health status change; metrics, JSON logs
    and warnings go to the run's log files (``verbose``: to the terminal as well)."""
    started = time.monotonic()
    out = out or (lambda text: print(text, flush=True))
    stop = stop or threading.Event()
    settings = _with_budget(_settings(allow_fetch or []), monthly_budget)
    site = _demo_site(demo)
    files = terminal.RunFiles.create(runs_dir)
    service_log = files.service_log.open("a", buffering=1)
    real_stdout = sys.stdout
    sys.stdout = terminal.LineRouter(real_stdout, service_log, verbose=verbose)
    if not verbose:
        terminal.capture_warnings(service_log)
    try:
        _serve(
            settings=settings,
            site=site,
            files=files,
            verbose=verbose,
            port=port,
            info_file=info_file,
            out=out,
            stop=stop,
            started=started,
        )
    finally:
        sys.stdout.flush()
        sys.stdout = real_stdout
        service_log.close()


def _serve(
    *,
    settings: Any,
    site: DemoSite | None,
    files: terminal.RunFiles,
    verbose: bool,
    port: int,
    info_file: str | None,
    out: Any,
    stop: threading.Event,
    started: float,
) -> None:
    emulator = EmulatorProcess(log=None if verbose else files.emulator_log).start()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_ENDPOINT_URL": emulator.endpoint,
            "POWERTOOLS_SERVICE_NAME": "atlas-codex-local",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
    )
    servers: list[Any] = []
    threads: list[threading.Thread] = []
    try:
        import boto3

        from atlas_codex_local import deploy

        def client(service: str) -> Any:
            return boto3.client(
                service, endpoint_url=emulator.endpoint, region_name=settings.region
            )  # type: ignore[call-overload]

        if not deploy.templates_cached():
            out("Synthesizing the local stage's CloudFormation templates (once per change)...")
        try:
            templates = deploy.local_templates()
        except deploy.DeployError as exc:
            raise LocalModeError(str(exc)) from None

        def deploy_layers(layers: tuple[str, ...]) -> deploy.Deployed:
            return deploy.deploy(
                client("cloudformation"),
                client("ssm"),
                templates,
                cloudwatch=client("cloudwatch"),
                budgets=client("budgets"),
                dynamodb=client("dynamodb"),
                s3=client("s3"),
                account=settings.account,
                layers=layers,
            )

        try:
            deployed = deploy_layers(("data", "messaging"))
        except deploy.DeployError as exc:
            raise LocalModeError(
                f"deploying the local stage into the emulator failed: {exc}"
            ) from None
        # Alarms, topic and budget are not needed to serve: deployed while the API starts.
        monitoring = threading.Thread(
            target=_deploy_in_background,
            args=(deploy_layers, ("monitoring",)),
            name="deploy-monitoring",
            daemon=True,
        )
        monitoring.start()
        threads.append(monitoring)
        resources = deploy.stage_resources(deployed)
        from atlas_codex_stage.environment import function_environment

        os.environ.update(
            function_environment(
                settings,
                tables=resources.tables,
                queue_urls=resources.queue_urls,
                bucket=resources.bucket,
            )
        )
        from atlas_codex.ground.config import get_config

        get_config.cache_clear()
        from atlas_codex import wiring
        from atlas_codex.handlers import api, webhooks, worker

        wiring.observe(terminal.JobEvents(sys.stdout))

        api_server = ApiServer(
            api.handler,
            port=port,
            environments=lambda: fresh_handler("atlas_codex.handlers.api"),
        ).start()
        servers.append(api_server)
        for name, handler, url, timeout_s, batch_size, returned_later in (
            (
                "worker",
                worker.handler,
                resources.queue_urls["queue"],
                settings.functions.worker.timeout_s,
                limits.JOBS_PER_INVOCATION,  # as the deployed event source hands them
                worker.returns.taken,
            ),
            (
                "webhooks",
                webhooks.handler,
                resources.queue_urls["webhooks"],
                settings.functions.webhooks.timeout_s,
                limits.WEBHOOKS_PER_INVOCATION,
                lambda _message_id: False,
            ),
        ):
            poller = SqsPoller(
                sqs=aws.sqs(emulator.endpoint),
                queue_url=url,
                handler=handler,
                function_name=f"atlas-codex-{name}-local",
                timeout_ms=timeout_s * 1000,
                batch_size=batch_size,
                returned_later=returned_later,
            )
            thread = threading.Thread(
                target=poller.run, args=(stop,), name=f"poller-{name}", daemon=True
            )
            thread.start()
            threads.append(thread)
        from atlas_codex.handlers import health

        monitor = threading.Thread(
            target=_health_forever, args=(health.handler, stop), name="health", daemon=True
        )
        monitor.start()
        threads.append(monitor)
        key = _local_key(api.keys)
        _wait_until_serving(api_server.url)
        ready_s = time.monotonic() - started
        info = {
            "api_url": api_server.url,
            "api_key": key,
            "aws_endpoint_url": emulator.endpoint,
            "stage": "local",
            "demo_url": site.url if site else None,
        }
        for path in dict.fromkeys([str(INFO_FILE), *([info_file] if info_file else [])]):
            # It holds an API key: readable by its owner only (0600), written atomically.
            _write_private(Path(path), json.dumps(info, indent=2))
        out(_banner(info, ready_s, api.config.models_available, files, verbose=verbose))
        if site is not None:
            out(_demo_job(api_server.url, key, site.url))
        out("Serving. Press Ctrl-C to stop.")
        threading.Thread(
            target=_watch_emulator, args=(emulator, stop, out), name="emulator-watch", daemon=True
        ).start()
        stop.wait()
        code = emulator.exit_code()
        if code is not None:
            raise LocalModeError(
                f"the AWS emulator stopped (exit code {code}); local mode stopped with it "
                f"(its output: {files.emulator_log})"
            )
    finally:
        stop.set()
        for server in servers:
            server.close()
        for thread in threads:
            thread.join(timeout=5)
        if site is not None:
            site.close()
        emulator.stop()


def _write_private(path: Path, text: str) -> None:
    """``text`` into ``path``, readable by its owner only (0600) from the first byte, and
    atomically: a reader polling for the file never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    partial.replace(path)


def _local_key(keys: Any) -> str:
    """The key of earlier runs (``.cache/local-api-key``), stored again in this run's fresh
    emulator; a new one the first time (or when the file is not a key)."""
    try:
        kept = KEY_FILE.read_text().strip()
        return str(keys.register(kept, "local-user", name="local mode").key)
    except (OSError, ValueError):
        pass
    key = str(keys.issue("local-user", name="local mode").key)
    _write_private(KEY_FILE, key + "\n")
    return key


EMULATOR_WATCH_S: Final = 1.0


def _watch_emulator(emulator: EmulatorProcess, stop: threading.Event, out: Any) -> None:
    """Once the emulator stops, say so once and stop local mode: every route would answer 500
    and every poll print a traceback without it."""
    while not stop.wait(EMULATOR_WATCH_S):
        code = emulator.exit_code()
        if code is not None:
            out(f"local mode: the AWS emulator stopped (exit code {code}); stopping.")
            stop.set()
            return


def _deploy_in_background(deploy_layers: Any, layers: tuple[str, ...]) -> None:
    try:
        deploy_layers(layers)
    except Exception as exc:  # local mode serves without alarms; say why they are missing
        print(
            f"local mode: deploying {', '.join(layers)} failed: {exc}", file=sys.stderr, flush=True
        )


HEALTH_EVERY_S: Final = 60.0
HEALTH_FIRST_RUN_S: Final = 3.0
"""Local mode runs the health handler (checks, stuck-job sweep, stored report) every minute,
starting just after start-up; deployed stages every five minutes (EventBridge)."""


def _health_forever(handler: Any, stop: threading.Event) -> None:
    from atlas_codex_local.apigw import context

    status = terminal.HealthStatus()
    # The first run waits a little: at start-up it would only compete with getting ready.
    if stop.wait(HEALTH_FIRST_RUN_S):
        return
    run = 0
    while True:
        run += 1
        try:
            event = {"id": f"local-health-{run}", "source": "atlas-codex.local"}
            result = handler(event, context(60_000, function_name="atlas-codex-health-local"))
            line = status.line(result)
            if line is not None:
                print(line, flush=True)
        except Exception as exc:  # the monitor must outlive a passing emulator error
            print(f"health: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if stop.wait(HEALTH_EVERY_S):
            return


def _wait_until_serving(url: str, timeout_s: float = 10) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise LocalModeError(f"the API at {url} did not answer /health within {timeout_s} s")


def _banner(
    info: dict[str, Any],
    ready_s: float,
    models: bool,
    files: terminal.RunFiles,
    *,
    verbose: bool = False,
) -> str:
    body = json.dumps({"urls": [f"{info['demo_url'] or 'https://example.com'}/product/1"]})
    logs = (
        "shown here (--verbose)"
        if verbose
        else f"{files.service_log}  (metrics, JSON logs, warnings; --verbose shows them here)"
    )
    return "\n".join(
        [
            f"Atlas Codex is running locally (ready in {ready_s:.1f} s).",
            f"  Console:      {console_url(info['api_url'], info['api_key'])}",
            f"  API:          {info['api_url']}   (OpenAPI: {info['api_url']}/openapi.json)",
            f"  API key:      {info['api_key']}",
            f"  AWS emulator: {info['aws_endpoint_url']}",
            f"  Demo shop:    {info['demo_url'] or '(off)'}",
            f"  Models:       {'available' if models else 'not configured (set OPENAI_API_KEY); deterministic extraction serves'}",
            f"  Logs:         {logs}",
            "",
            "For the CLI and your own scripts (the key stays the same across runs):",
            f"  export ATLAS_API_URL={info['api_url']} ATLAS_API_KEY={info['api_key']}",
            f"  (also written to {INFO_FILE}, which `atlas-codex extract` reads by default)",
            "",
            "Try:",
            f"  curl -s -X POST {info['api_url']}/extract -H 'x-api-key: {info['api_key']}' "
            f"-H 'Content-Type: application/json' -d '{body}'",
            "",
        ]
    )


def console_url(api_url: str, api_key: str) -> str:
    """The console with the key in the fragment: never sent to a server, read once by the
    page (into the tab's session storage) and removed from the address bar."""
    return f"{api_url}/console#key={quote(api_key, safe='')}"


def _call(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL
        url,
        data=data,
        method=method,
        headers={"x-api-key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def demo_request(site_url: str) -> dict[str, Any]:
    """A multi-page crawl of the demo shop's catalogue with direct (CSS) extraction."""
    return {
        "type": "async",
        "urls": [f"{site_url}/catalog/1"],
        "crawl": {"max_pages": 5, "max_depth": 0, "follow_pagination": True},
        "selectors": {
            "base_selector": "article.product",
            "fields": {
                "name": {"selector": ".name"},
                "url": {"selector": ".name a", "attribute": "href"},
                "price": {"selector": ".price", "type": "number"},
                "in_stock": {"selector": ".stock", "type": "boolean"},
            },
        },
    }


def _demo_job(api_url: str, key: str, site_url: str, timeout_s: float = 60) -> str:
    status, job = _call("POST", f"{api_url}/jobs", key, demo_request(site_url))
    if status not in (200, 202):
        return f"Demo job was refused ({status}): {json.dumps(job)}"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        _, job = _call("GET", f"{api_url}/jobs/{job['job_id']}", key)
        if job["status"] in ("completed", "failed", "cancelled", "timeout"):
            break
        time.sleep(0.2)
    if job["status"] != "completed":
        return f"Demo job {job['job_id']} ended {job['status']}: {json.dumps(job.get('error'))}"
    _, result = _call("GET", f"{api_url}/jobs/{job['job_id']}/result", key)
    items = [item for page in result["result"]["data"] for item in page["data"]]
    lines = [
        f"Demo job {job['job_id']}: crawled {len(result['result']['pages'])} pages, {len(items)} products:"
    ]
    lines += [f"  {json.dumps(item)}" for item in items]
    return "\n".join(lines) + "\n"


def install_signal_handlers(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def spawn(info_file: Path, *args: str, capture: bool = False) -> subprocess.Popen[str]:
    """``atlas-codex local up --port 0 --info-file INFO ARGS...`` in a child process, in the
    checkout, with no AWS or Atlas variables inherited (scripts, tests and benchmarks)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATLAS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_codex_local.cli",
            "local",
            "up",
            "--port",
            "0",
            "--info-file",
            str(info_file),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
    )


def wait_for_info(
    proc: subprocess.Popen[str], info_file: Path, timeout_s: float = 60
) -> dict[str, Any]:
    """The info file's contents once the spawned local mode serves; kills it if it cannot."""
    deadline = time.monotonic() + timeout_s
    while not info_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.stdout.read() if proc.stdout else ""
            raise LocalModeError(f"local mode did not start: {output}")
        time.sleep(0.01)
    info: dict[str, Any] = json.loads(info_file.read_text())
    return info

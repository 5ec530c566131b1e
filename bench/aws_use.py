"""What one job uses in AWS, measured: jobs run through the handlers on the emulator, every
AWS request counted with a botocore hook, CPU timed per function, logs and stored bytes
counted. Writes ``lambdas/atlas_codex/ground/aws_use.json`` (what quotes and job records price)
and docs/COST.md (cost per 1,000 pages by path, AWS and model apart, beside the peers').

How the pieces are separated: a job of 1 page and a job of 5 pages (and a crawl of 2 and of
7 pages) of real product pages (``../shared/benchdata/product-pages``, served on loopback)
give the use of one more page by difference; the rest is the job's own. A model call's AWS
use besides the model (the spend reserved and settled) is measured on the budget guard.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from bench import loopback
from bench.data import benchdata
from bench.product_pages import PRODUCT_SCHEMA, product_view

ROOT = Path(__file__).resolve().parent.parent
USE_FILE = ROOT / "lambdas" / "atlas_codex" / "ground" / "aws_use.json"
COST_DOC = ROOT / "docs" / "COST.md"
REPEATS = 3
"""Each job shape is run this many times; the medians are kept."""


# ---------------------------------------------------------------------- counting


def item_bytes(value: Any) -> int:
    """An attribute value's size as DynamoDB counts it (names and values in UTF-8)."""
    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        if kind == "S":
            return len(str(inner).encode())
        if kind == "N":
            return (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind == "B":
            return len(inner)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + item_bytes(v) for k, v in inner.items())
        if kind == "L":
            return 3 + sum(item_bytes(v) + 1 for v in inner)
        if kind in ("SS", "NS"):
            return sum(len(str(v).encode()) for v in inner)
    return 0


def record_bytes(item: dict[str, Any]) -> int:
    return sum(len(k.encode()) + item_bytes(v) for k, v in item.items())


@dataclass
class Tally:
    """What one stretch of work asked of AWS."""

    calls: Counter[str] = field(default_factory=Counter)
    write_units: float = 0
    read_units: float = 0
    s3_bytes: int = 0
    dynamodb_bytes: int = 0
    index_writes: Counter[str] = field(default_factory=Counter)

    def aws_calls(self) -> int:
        return sum(self.calls.values())


class Meter:
    """botocore hooks on the shared session: every request of every client is counted into
    the current tally, attributed to the function (``api`` or ``worker``) running it."""

    def __init__(self) -> None:
        self.current: dict[str, Tally] | None = None
        self.function = "worker"
        self.index_entries: dict[tuple[str, str], tuple[str, str]] = {}
        self.sizes: dict[str, int] = {}

    def install(self) -> None:
        from atlas_codex.ground import aws

        session = aws._session()
        session.register("before-parameter-build", self._keep)  # type: ignore[arg-type]
        session.register("before-call", self._before)  # type: ignore[arg-type]
        session.register("after-call", self._after)  # type: ignore[arg-type]

    def attach(self, client: Any) -> None:
        """Count the requests of a client made before :meth:`install` (tests' fixtures)."""
        client.meta.events.register("before-parameter-build", self._keep)
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)

    @contextmanager
    def measuring(self, into: dict[str, Tally]) -> Iterator[None]:
        self.current = into
        try:
            yield
        finally:
            self.current = None

    def _tally(self) -> Tally | None:
        if self.current is None:
            return None
        return self.current.setdefault(self.function, Tally())

    @staticmethod
    def _keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """The call's API parameters, for the after-call hook (which sees only the reply)."""
        context["metered_params"] = params

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        tally = self._tally()
        if tally is None:
            return
        service = model.service_model.service_name
        tally.calls[f"{service}:{model.name}"] += 1
        if service == "s3" and model.name == "PutObject":
            tally.s3_bytes += _body_length(params.get("body"))

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        tally = self._tally()
        if tally is None or model.service_model.service_name != "dynamodb":
            return
        params = kwargs.get("context", {}).get("metered_params") or {}
        table = str(params.get("TableName", ""))
        if model.name == "PutItem":
            item = params.get("Item", {})
            size = record_bytes(item)
            tally.write_units += math.ceil(size / 1024) or 1
            self._stored(tally, _identity(table, item), size)
            self._index(tally, item)
        elif model.name == "UpdateItem":
            after = parsed.get("Attributes") or {}
            size = record_bytes(after)
            tally.write_units += math.ceil(size / 1024) or 1
            if after:
                self._stored(tally, _identity(table, after), size)
            self._index(tally, after)
        elif model.name in ("GetItem",):
            size = record_bytes(parsed.get("Item") or {})
            tally.read_units += math.ceil(size / 4096) or 1
        elif model.name == "BatchGetItem":
            for items in (parsed.get("Responses") or {}).values():
                tally.read_units += sum(math.ceil(record_bytes(i) / 4096) or 1 for i in items)
        elif model.name == "Query":
            size = sum(record_bytes(i) for i in parsed.get("Items") or [])
            tally.read_units += (math.ceil(size / 4096) or 1) / 2  # eventually consistent
        elif model.name in ("DeleteItem",):
            tally.write_units += 1

    def _stored(self, tally: Tally, identity: str, size: int) -> None:
        """Bytes stored: an item's growth since it was last seen (its size when new)."""
        tally.dynamodb_bytes += size - self.sizes.get(identity, 0)
        self.sizes[identity] = size

    def _index(self, tally: Tally, item: dict[str, Any]) -> None:
        """The job indexes' writes for this change of a job item, as DynamoDB makes them: an
        entry whose key moved is a delete under the old key and a put under the new one; an
        entry whose projected attributes changed is one write; otherwise none."""
        from atlas_codex.ground.table_specs import JOBS

        job = item.get(JOBS.partition_key, {}).get("S")
        if job is None:
            return
        for index in JOBS.indexes:
            key = item.get(index.partition_key, {}).get("S")
            if key is None:
                continue
            names = (index.sort_key, *index.include)
            projected = json.dumps([item.get(n) for n in names if n])
            before = self.index_entries.get((index.name, job))
            if before is None:
                writes = [key]
            elif before[0] != key:
                writes = [before[0], key]
            elif before[1] != projected:
                writes = [key]
            else:
                writes = []
            for written in writes:
                tally.index_writes[f"{index.name}:{written}"] += 1
                tally.write_units += 1
            self.index_entries[(index.name, job)] = (key, projected)


def _body_length(body: Any) -> int:
    if isinstance(body, str):
        return len(body.encode())
    if isinstance(body, bytes | bytearray):
        return len(body)
    if hasattr(body, "seek") and hasattr(body, "tell"):
        at = body.tell()
        body.seek(0, 2)
        size = int(body.tell())
        body.seek(at)
        return size
    return 0


KEY_NAMES = ("job_id", "pk", "sk", "id", "connection_id")


def _identity(table: str, item: dict[str, Any]) -> str:
    return table + json.dumps([item.get(k) for k in KEY_NAMES])


@contextmanager
def stdout_bytes(into: list[int]) -> Iterator[None]:
    """Everything written to file descriptor 1 meanwhile (Powertools logs, EMF metrics),
    counted and kept out of the terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            into.append(sink.tell())


# ---------------------------------------------------------------------- pages


def product_pages() -> dict[str, bytes]:
    folder = benchdata() / "product-pages" / "html"
    return {
        p.name.removesuffix(".html.gz"): gzip.decompress(p.read_bytes())
        for p in sorted(folder.glob("*.html.gz"))
    }


def _route(pages: dict[str, bytes], path: str) -> tuple[int, bytes]:
    """A shop: an index linking every product page, and the pages."""
    if path == "/robots.txt":
        return 200, b"User-agent: *\nAllow: /\n"
    if path == "/":
        links = "".join(f"<li><a href='/p/{k}'>{k}</a></li>" for k in sorted(pages))
        return 200, (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Products</h1>"
            f"<ul>{links}</ul></body></html>"
        ).encode()
    if path.startswith("/p/") and path[3:] in pages:
        return 200, pages[path[3:]]
    return 404, b"not found"


# ---------------------------------------------------------------------- jobs


@dataclass
class Run:
    tallies: dict[str, Tally]
    cpu_s: dict[str, float]
    invocations: Counter[str]
    log_bytes: int


class Harness:
    def __init__(self, site: str, meter: Meter) -> None:
        from atlas_codex.ground import aws
        from atlas_codex.ground.config import get_config
        from atlas_codex.handlers import api, worker
        from atlas_codex_local.poller import SqsPoller

        config = get_config()
        self.meter = meter
        self.site = site
        self.api = api.handler
        self.worker = worker.handler
        self.key = ""
        self.poller = SqsPoller(
            sqs=aws.sqs(config.aws_endpoint_url),
            queue_url=config.jobs_queue_url,
            handler=worker.handler,
            function_name="atlas-codex-worker-local",
            timeout_ms=300_000,
            retry_delay_s=0,
        )

    def call(self, run: Run, method: str, path: str, body: Any = None) -> dict[str, Any]:
        from atlas_codex_local.apigw import context, rest_event

        event = rest_event(
            method,
            path,
            headers={"x-api-key": self.key or "", "content-type": "application/json"},
            body=json.dumps(body) if body is not None else None,
        )
        self.meter.function = "api"
        started = time.process_time()
        out = self.api(event, context(function_name="atlas-codex-api-local"))
        run.cpu_s["api"] = run.cpu_s.get("api", 0.0) + time.process_time() - started
        run.invocations["api"] += 1
        answer: dict[str, Any] = json.loads(out["body"])
        if out["statusCode"] >= 400:
            raise RuntimeError(f"{method} {path}: {out['statusCode']} {answer}")
        return answer

    def job(self, body: dict[str, Any]) -> Run:
        run = Run({}, {}, Counter(), 0)
        logged: list[int] = []
        with self.meter.measuring(run.tallies), stdout_bytes(logged):
            job_id = self.call(run, "POST", "/jobs", body)["job_id"]
            self.meter.function = "worker"
            for _ in range(20):
                started = time.process_time()
                handled = self.poller.poll_once()
                run.cpu_s["worker"] = run.cpu_s.get("worker", 0.0) + time.process_time() - started
                run.invocations["worker"] += handled
                read = self.call(run, "GET", f"/jobs/{job_id}")
                status = read["status"]
                if status in ("completed", "failed"):
                    break
        run.log_bytes = sum(logged)
        if status != "completed":
            raise RuntimeError(f"the bench job {job_id} ended {status}: {read.get('error')}")
        return run


SELECTORS: dict[str, Any] = {
    "fields": {"title": {"selector": "title"}, "heading": {"selector": "h1"}}
}


def selectors_job(urls: list[str]) -> dict[str, Any]:
    return {"urls": urls, "selectors": SELECTORS}


def crawl_job(site: str, pages: int) -> dict[str, Any]:
    return {
        "urls": [f"{site}/"],
        "selectors": SELECTORS,
        "crawl": {"max_pages": pages, "max_depth": 1},
    }


# ---------------------------------------------------------------------- pieces


def _measured(run: Run) -> Any:
    from atlas_codex.ground.aws_cost import Measured, Requests, Segment

    segments = [
        Segment(
            function=name,
            invocations=run.invocations[name],
            cpu_s=run.cpu_s.get(name, 0.0),
            aws_calls=run.tallies.get(name, Tally()).aws_calls(),
        )
        for name in ("api", "worker")
    ]
    calls: Counter[str] = Counter()
    tallies = list(run.tallies.values())
    for tally in tallies:
        calls.update(tally.calls)
    requests = Requests(
        api_requests=run.invocations["api"],
        sqs_requests=sum(n for name, n in calls.items() if name.startswith("sqs:")),
        dynamodb_write_units=sum(t.write_units for t in tallies),
        dynamodb_read_units=sum(t.read_units for t in tallies),
        s3_put_requests=sum(n for name, n in calls.items() if name in ("s3:PutObject",)),
        s3_get_requests=sum(
            n for name, n in calls.items() if name.startswith("s3:") and name != "s3:PutObject"
        ),
        s3_bytes=sum(t.s3_bytes for t in tallies),
        dynamodb_bytes=sum(t.dynamodb_bytes for t in tallies),
        log_bytes=run.log_bytes,
    )
    return Measured(segments=segments, requests=requests)


def _median(runs: list[Any]) -> Any:
    """Field by field median of several measurements of the same work."""
    from atlas_codex.ground.aws_cost import Measured, Requests, Segment

    first = runs[0]
    segments = [
        Segment(
            function=seg.function,
            invocations=statistics.median(r.segments[i].invocations for r in runs),
            cpu_s=statistics.median(r.segments[i].cpu_s for r in runs),
            aws_calls=statistics.median(r.segments[i].aws_calls for r in runs),
        )
        for i, seg in enumerate(first.segments)
    ]
    fields = first.requests.model_dump()
    requests = Requests(
        **{k: statistics.median(getattr(r.requests, k) for r in runs) for k in fields}
    )
    return Measured(segments=segments, requests=requests)


def _per_unit(big: Any, small: Any, units: int) -> Any:
    """(big - small) / units, field by field, never below zero."""
    from atlas_codex.ground.aws_cost import Measured, Requests, Segment

    segments = [
        Segment(
            function=b.function,
            invocations=max(b.invocations - s.invocations, 0) / units,
            cpu_s=max(b.cpu_s - s.cpu_s, 0) / units,
            aws_calls=max(b.aws_calls - s.aws_calls, 0) / units,
        )
        for b, s in zip(big.segments, small.segments, strict=True)
    ]
    fields = big.requests.model_dump()
    requests = Requests(
        **{k: max(getattr(big.requests, k) - getattr(small.requests, k), 0) / units for k in fields}
    )
    return Measured(segments=segments, requests=requests)


def _minus(total: Any, part: Any) -> Any:
    return _per_unit(total, part, 1)


def _model_call(meter: Meter) -> Any:
    """A model call's AWS use besides the model: the budget guard's reserve and settle."""
    from atlas_codex.accounts.usage import BudgetGuard, UsageLedger
    from atlas_codex.ground import aws
    from atlas_codex.ground.aws_cost import Measured, Requests, Segment
    from atlas_codex.ground.config import get_config

    config = get_config()
    ledger = UsageLedger(
        dynamodb=aws.dynamodb(config.aws_endpoint_url),
        table_name=config.usage_table,
        stage=config.stage,
    )
    guard = BudgetGuard(ledger, monthly_limit_usd=config.monthly_budget_usd)
    runs = []
    for _ in range(REPEATS):
        tallies: dict[str, Tally] = {}
        meter.function = "worker"
        with meter.measuring(tallies):
            started = time.process_time()
            held = guard.reserve(Decimal("0.01"))
            guard.commit(held, Decimal("0.002"), owner_id="bench")
            cpu = time.process_time() - started
        tally = tallies.get("worker", Tally())
        runs.append(
            Measured(
                segments=[
                    Segment(function="api", invocations=0, cpu_s=0, aws_calls=0),
                    Segment(
                        function="worker", invocations=0, cpu_s=cpu, aws_calls=tally.aws_calls()
                    ),
                ],
                requests=Requests(
                    dynamodb_write_units=tally.write_units,
                    dynamodb_read_units=tally.read_units,
                ),
            )
        )
    return _median(runs)


def _model_cost_per_page(site: str, pages: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """The model's expected cost of one product page per tier: the router's estimate of the
    call the service would send (the page's model view, the product schema), per page of
    the product-pages dev set. No model is called."""
    from pydantic import SecretStr

    from atlas_codex.ground.config import get_config
    from atlas_codex.llm.extraction import ModelStrategies

    config = get_config().model_copy(update={"openai_api_key": SecretStr("sk-bench-unused")})
    models = ModelStrategies(config)
    out: dict[str, dict[str, Any]] = {}
    for tier in ("nano", "mini", "full"):
        costs: list[float] = []
        tokens: list[int] = []
        for key, raw in pages.items():
            url = f"{site}/p/{key}"
            markdown = product_view(raw.decode("utf-8", "replace"), url)
            page = models.quote(
                url=url,
                markdown=markdown,
                schema=PRODUCT_SCHEMA,
                instruction=None,
                page_count=1,
                escalations=0,
                start=tier,
            )
            costs.append(float(page.expected))
            tokens.append(sum(c.input_tokens for c in page.calls))
            model = page.calls[-1].model
        out[tier] = {
            "median_usd": statistics.median(costs),
            "mean_usd": statistics.fmean(costs),
            "median_input_tokens": statistics.median(tokens),
            "model": model,
        }
    return out


# ---------------------------------------------------------------------- run


def run() -> str:
    from atlas_codex_local.emulator import EmulatorProcess
    from atlas_codex_local.provision import provision
    from atlas_codex_stage.environment import function_environment
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    pages = product_pages()
    if not pages:
        return "## AWS use per job\n\nSkipped: the product-pages dev set is not on this machine."
    server, port = loopback.start(functools.partial(_route, pages))
    site = f"http://127.0.0.1:{port}"
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = load_stage_settings("local", context[DEFAULTS_KEY], context[STAGES_KEY])
    settings = settings.model_copy(update={"allowed_private_hosts": [f"127.0.0.1:{port}"]})
    emulator = EmulatorProcess().start()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": settings.region,
            "POWERTOOLS_METRICS_NAMESPACE": "AtlasCodexBench",
        }
    )
    os.environ.pop("OPENAI_API_KEY", None)
    meter = Meter()
    meter.install()  # before any client is made: clients copy the session's hooks
    try:
        from atlas_codex.ground import aws

        resources = provision(
            settings,
            dynamodb=aws.dynamodb(emulator.endpoint),
            sqs=aws.sqs(emulator.endpoint),
            s3=aws.s3(emulator.endpoint),
        )
        os.environ.update(
            function_environment(
                settings,
                tables=resources.tables,
                queue_urls=resources.queue_urls,
                bucket=resources.bucket,
            )
        )
        os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
        from atlas_codex.accounts.auth import ApiKeyStore
        from atlas_codex.ground.config import get_config

        get_config.cache_clear()
        config = get_config()
        harness = Harness(site, meter)
        harness.key = (
            ApiKeyStore(dynamodb=aws.dynamodb(emulator.endpoint), table_name=config.usage_table)
            .issue("bench")
            .key
        )
        urls = [f"{site}/p/{k}" for k in sorted(pages)]
        harness.job(selectors_job(urls[:1]))  # warm: imports and first clients are not a job's

        def median_of(body: Callable[[int], dict[str, Any]]) -> Any:
            return _median([_measured(harness.job(body(n))) for n in range(REPEATS)])

        one = median_of(lambda n: selectors_job(urls[n : n + 1]))
        five = median_of(lambda n: selectors_job(urls[5 * n + 3 : 5 * n + 8]))
        crawl_small = median_of(lambda n: crawl_job(site, 2))
        crawl_big = median_of(lambda n: crawl_job(site, 7))
        page = _per_unit(five, one, 4)
        crawled_page = _per_unit(crawl_big, crawl_small, 5)
        job = _minus(one, page)
        model_call = _model_call(meter)
        model_cost = _model_cost_per_page(site, pages)
    finally:
        emulator.stop()
        server.terminate()

    from atlas_codex.ground.aws_cost import UseProfile
    from atlas_codex.llm.output import expected_tokens

    profile = UseProfile(
        measured=f"{time.strftime('%Y-%m-%d')} by bench/aws_use.py ({len(pages)} product pages, "
        f"median of {REPEATS} runs)",
        job=job,
        page=page,
        crawled_page=crawled_page,
        model_call=model_call,
        model_call_tokens=model_cost["nano"]["median_input_tokens"]
        + expected_tokens(PRODUCT_SCHEMA),
    )
    USE_FILE.write_text(profile.model_dump_json(indent=2) + "\n")
    from atlas_codex.ground.aws_cost import use_profile

    use_profile.cache_clear()
    COST_DOC.write_text(cost_document(profile, model_cost))
    return performance_section(profile)


def performance_section(profile: Any) -> str:
    rows = []
    for name in ("job", "page", "crawled_page", "model_call"):
        piece = getattr(profile, name)
        req = piece.requests
        cpu = ", ".join(f"{s.function} {s.cpu_s * 1000:.1f} ms" for s in piece.segments if s.cpu_s)
        rows.append(
            f"| {name.replace('_', ' ')} | {cpu or '-'} | {sum(s.aws_calls for s in piece.segments):.1f} "
            f"| {req.dynamodb_write_units:.1f} | {req.dynamodb_read_units:.1f} | {req.sqs_requests:.1f} "
            f"| {req.s3_put_requests:.1f} | {req.s3_bytes / 1024:.1f} | {req.log_bytes / 1024:.1f} |"
        )
    return "\n".join(
        [
            "## AWS use per job",
            "",
            "Jobs through the api and worker handlers on the emulator, on real product pages "
            "served on loopback; every AWS request counted with botocore hooks (DynamoDB units "
            "from the items' sizes, as DynamoDB bills them), CPU time per function, bytes logged "
            f"and stored. {profile.measured}. Priced in docs/COST.md.",
            "",
            "| piece | CPU | AWS calls | DynamoDB write units | read units | SQS requests | S3 puts | S3 KB | log KB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


API_DETAILED_METRICS: Final = 5
"""Metrics API Gateway publishes per method with detailed metrics on: Count, Latency,
IntegrationLatency, 4XXError and 5XXError (the cache ones only with a cache)."""
SNAPSHOTS: Final = ROOT / "tests" / "infra" / "snapshots"
"""The synthesized templates of every stage, kept current by ``make snapshots`` (the infra
tests fail when they differ from what the stacks synthesize)."""


def custom_metric_series() -> int:
    """The application's own metrics, one per name and dimension set (``metrics.py``)."""
    from atlas_codex.ground import metrics
    from atlas_codex.health import HealthMonitor

    checks = [name for name in dir(HealthMonitor) if name.startswith("check_")]
    per_function = (metrics.MESSAGES_RECEIVED, metrics.MESSAGES_FAILED, metrics.MESSAGES_RETURNED)
    per_outcome = (metrics.JOBS_FINISHED, metrics.JOB_MODEL_SPEND_USD)
    health = (
        metrics.HEALTH_CHECKS_FAILED,
        metrics.HEALTH_CHECKS_DEGRADED,
        metrics.BUDGET_SPENT_PERCENT,
    )
    return (
        len(per_function) * len(metrics.CONSUMERS)
        + len(per_outcome) * len(metrics.OUTCOMES)
        + len(health)
        + len(checks)  # HealthCheckLatency, one per check
    )


def fixed_items(template: dict[str, Any]) -> Any:
    """What a stage pays each month whatever its volume, counted from its synthesized
    stacks (``template``: layer -> CloudFormation template)."""
    from atlas_codex.ground.aws_cost import FixedItems

    resources = [r for layer in template.values() for r in layer["Resources"].values()]

    def of(kind: str) -> list[dict[str, Any]]:
        return [r.get("Properties", {}) for r in resources if r["Type"] == kind]

    detailed = any(
        m.get("MetricsEnabled")
        for stage in of("AWS::ApiGateway::Stage")
        for m in stage.get("MethodSettings", [])
    )
    insights = 0
    for table in of("AWS::DynamoDB::Table"):
        keyed = [table, *table.get("GlobalSecondaryIndexes", [])]
        for part in keyed:
            if part.get("ContributorInsightsSpecification", {}).get("Enabled"):
                insights += 2 if len(part["KeySchema"]) == 2 else 1
    return FixedItems(
        web_acls=len(of("AWS::WAFv2::WebACL")),
        web_acl_rules=sum(len(acl.get("Rules", [])) for acl in of("AWS::WAFv2::WebACL")),
        snapstart_memory_mb=[
            f["MemorySize"] for f in of("AWS::Lambda::Function") if "SnapStart" in f
        ],
        kms_keys=len(of("AWS::KMS::Key")),
        custom_metrics=custom_metric_series()
        + (API_DETAILED_METRICS * len(of("AWS::ApiGateway::Method")) if detailed else 0),
        alarm_metrics=sum(
            len([m for m in a["Metrics"] if "MetricStat" in m]) if "Metrics" in a else 1
            for a in of("AWS::CloudWatch::Alarm")
        ),
        dashboards=len(of("AWS::CloudWatch::Dashboard")),
        contributor_insights_rules=insights,
    )


def fixed_section(stage: str, region: str) -> list[str]:
    from atlas_codex.ground import aws_cost

    items = fixed_items(json.loads((SNAPSHOTS / f"{stage}.json").read_text()))
    monthly = aws_cost.fixed_monthly(items, region)
    what = {
        "waf": f"{items.web_acls} web ACL, {items.web_acl_rules} rules",
        "snapstart_cache": "snapshots cached: "
        + (", ".join(f"{mb} MB" for mb in items.snapstart_memory_mb) or "none"),
        "kms": f"{items.kms_keys} customer managed keys",
        "custom_metrics": f"{items.custom_metrics} metrics (the application's and API "
        "Gateway's detailed per-method ones)",
        "alarms": f"{items.alarm_metrics} alarm metrics",
        "dashboards": f"{items.dashboards} dashboard",
        "contributor_insights": f"{items.contributor_insights_rules} rules",
    }
    return [
        f"Fixed each month, from the synthesized {stage} stage "
        f"(total ${float(sum(monthly.values())):,.2f}): "
        + "; ".join(
            f"{name.replace('_', ' ')} ${float(usd):,.2f} ({what[name]})"
            for name, usd in monthly.items()
            if usd
        )
        + ".",
        "",
    ]


def _batch_counting(table: Any) -> str:
    """What counting a batch's children adds (bench/capacity.py sizes the counter item)."""
    from atlas_codex.ground import limits
    from bench.capacity import counter_item_bytes

    most = limits.MAX_URLS_PER_JOB
    units = math.ceil(counter_item_bytes(most) / 1024)
    per_1000 = float(units * table.of("eu-west-1").dynamodb_write_unit * 1000)
    return (
        f"A batch adds one count per child on its counter item: at most {units} write units "
        f"(a {most:,}-URL batch's), ${per_1000:.4f} per 1,000 children in eu-west-1, plus one "
        "write of the batch's record when it closes (counting on the record itself took "
        "about 91 write units a child, $0.064 per 1,000)."
    )


def cost_document(profile: Any, model_cost: dict[str, dict[str, Any]]) -> str:
    from atlas_codex.engine.pages.crawler import DEFAULT_CONCURRENCY
    from atlas_codex.engine.pages.fetch import FetchLimits
    from atlas_codex.ground import aws_cost, limits
    from atlas_codex.llm.router import MAX_CALL_S
    from atlas_codex_stage.environment import cost_basis
    from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, load_stage_settings

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    table = aws_cost.price_table()
    page_timeout = FetchLimits().total_timeout_s
    lines = [
        "# What a job costs",
        "",
        "Written by `make bench` (`bench/aws_use.py`); do not edit by hand. AWS cost is the "
        'measured use of each piece of work (docs/PERFORMANCE.md, "AWS use per job") times '
        f"on-demand list prices (`lambdas/atlas_codex/ground/aws_prices.json`: {table.as_of}). "
        "Quotes (`POST /jobs/quote`, `aws_usd`) and job records (`cost.aws_usd`) use the same "
        "figures.",
        "",
        "How a function's duration is estimated: the CPU time measured here, scaled by "
        f"{aws_cost.FULL_VCPU_MB} MB / the function's memory when it has less (Lambda's CPU "
        "share is proportional to memory, one vCPU at 1,769 MB), plus waits this machine "
        f"cannot measure (no network): {aws_cost.AWS_CALL_WAIT_S * 1000:g} ms per AWS call, "
        f"{aws_cost.PAGE_FETCH_WAIT_S:g} s per page fetched (divided by the crawl's "
        f"{DEFAULT_CONCURRENCY} fetches at once), {aws_cost.MODEL_CALL_WAIT_S:g} s per model "
        "call. *Low* leaves the waits out; *high* puts every page at its fetch timeout "
        f"({page_timeout:g} s) and every model call, escalations included, at its call timeout "
        f"({MAX_CALL_S:g} s), on every try the queue allows. A job record's "
        "estimate uses the worker's measured wall time instead of the assumed waits. Each job "
        "is counted as if it ran alone: with a backlog the worker runs up to "
        f"{limits.JOBS_PER_INVOCATION} jobs side by side in one invocation and their waits "
        "overlap, so Lambda's share per job falls toward a "
        f"{'quarter' if limits.JOBS_PER_INVOCATION == 4 else f'1/{limits.JOBS_PER_INVOCATION}'}.",
        "",
    ]
    for stage in ("dev", "prod"):
        settings = load_stage_settings(stage, context[DEFAULTS_KEY], context[STAGES_KEY])
        basis = cost_basis(settings)
        lines += [
            f"## {stage} ({basis.region}, {basis.architecture}, api {basis.memory_mb['api']} MB, "
            f"worker {basis.memory_mb['worker']} MB)",
            "",
            "AWS cost per 1,000 pages, USD:",
            "",
            "| path | low | expected | high | of which Lambda (expected) |",
            "|---|---:|---:|---:|---:|",
        ]
        paths = [
            ("one page per job (deterministic)", 1, False, 0, 1, 0),
            ("10 pages per job (deterministic)", 10, False, 0, 1, 0),
            ("crawl of 50 pages (deterministic)", 50, True, 0, DEFAULT_CONCURRENCY, 0),
            ("one page per job, one model call", 1, False, 1, 1, 0),
            ("one page per job, rendered in a browser", 1, False, 0, 1, 1),
        ]
        for name, pages, crawl, calls, concurrency, renders in paths:
            quoted = aws_cost.quote(
                basis,
                page_count=pages,
                crawl=crawl,
                model_calls=calls,
                worst_model_calls=calls * 2,
                page_timeout_s=page_timeout,
                model_timeout_s=MAX_CALL_S,
                concurrency=concurrency,
                renders=renders * pages,
                worst_renders=renders * pages,
                profile=profile,
            )
            per = 1000 / pages
            expected_bill = aws_cost.bill(
                aws_cost.job_pieces(profile, page_count=pages, crawl=crawl, model_calls=calls),
                basis,
                worker_wait_s=pages * aws_cost.PAGE_FETCH_WAIT_S / concurrency
                + calls * aws_cost.MODEL_CALL_WAIT_S
                + renders * pages * aws_cost.RENDER_S,
                renders=renders * pages,
            )
            lines.append(
                f"| {name} | {quoted.low_usd * per:.4f} | {quoted.expected_usd * per:.4f} "
                f"| {quoted.high_usd * per:.2f} | {float(expected_bill.by_service['lambda']) * per:.4f} |"
            )
        one = aws_cost.bill(
            aws_cost.job_pieces(profile, page_count=1, crawl=False, model_calls=0),
            basis,
            worker_wait_s=aws_cost.PAGE_FETCH_WAIT_S,
        )
        lines += [
            "",
            "By service, one page per job, expected, per 1,000 pages: "
            + ", ".join(f"{k} ${float(v) * 1000:.4f}" for k, v in one.by_service.items())
            + ".",
            "",
            *fixed_section(stage, basis.region),
        ]
    lines += [
        "## Model cost per 1,000 pages",
        "",
        "The router's expected cost of the call the service sends for one product page (its "
        "model view and a five-field product schema: exact input tokens, output expected "
        "from the schema), over the product-pages dev set; no model was called. Model prices: "
        "`lambdas/atlas_codex/llm/models.json`.",
        "",
        "| tier | model | median input tokens | median USD / 1,000 pages | mean USD / 1,000 pages |",
        "|---|---|---:|---:|---:|",
        *[
            f"| {tier} | {c['model']} | {c['median_input_tokens']:,.0f} | {c['median_usd'] * 1000:.2f} "
            f"| {c['mean_usd'] * 1000:.2f} |"
            for tier, c in model_cost.items()
        ],
        "",
        "A deterministic job (selectors, or a schema the page's structured data answers) calls "
        "no model: its cost is the AWS column alone.",
        "",
        f"## Peers ({table.peers.as_of})",
        "",
        table.peers.notes,
        "",
        "| service | plan | USD / 1,000 pages |",
        "|---|---|---:|",
        *[f"| {p.service} | {p.plan} | {p.usd_per_1000_pages:.2f} |" for p in table.peers.prices],
        "",
        _batch_counting(table),
        "",
        "Per request, each stage's rows count what its template turns on: X-Ray traces "
        f"(active tracing everywhere; {aws_cost.XRAY_SAMPLED_SHARE:.0%} of invocations "
        "sampled), WAF requests (staging, prod), SnapStart restores of the api function "
        f"(assumed one per {1 / aws_cost.SNAPSTART_RESTORES_PER_INVOCATION:,.0f} invocations), "
        "point-in-time recovery on the job's stored bytes (prod), and the render function "
        f"(x86-64, {aws_cost.RENDER_S:g} s per render expected, its timeout at worst). "
        "Not counted: the health monitor's runs every 5 minutes, Secrets Manager, AWS Budgets "
        "beyond the two free ones, the event source mappings' polling of an empty queue, data "
        "transfer of results to clients, and webhooks (one more invocation and SQS message "
        "each).",
        "",
    ]
    return "\n".join(lines)

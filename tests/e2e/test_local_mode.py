"""`atlas-codex local up` as a user runs it: over HTTP, on free ports, stopped with Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from atlas_codex_local.local import spawn, wait_for_info
from tests.site import Site
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory, site: Site, receiver: Receiver
) -> Iterator[dict[str, Any]]:
    info = tmp_path_factory.mktemp("local") / "info.json"
    allow = ["--allow-fetch", site.host_port, "--allow-fetch", f"127.0.0.1:{receiver.port}"]
    proc = spawn(info, "--no-demo", *allow, capture=True)
    data = wait_for_info(proc, info)
    data["process"] = proc
    data["info_path"] = str(info)
    yield data
    if proc.poll() is None:
        proc.kill()


def client(local: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=local["api_url"], headers={"x-api-key": local["api_key"]}, timeout=30
    )


def wait_for(c: httpx.Client, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = c.get(f"/jobs/{job_id}").json()
        if (
            job["status"] in ("completed", "failed", "cancelled", "timeout")
            or time.monotonic() > end
        ):
            return job
        time.sleep(0.1)


def test_the_info_file_says_how_to_reach_the_service(local: dict[str, Any]) -> None:
    assert set(local) >= {"api_url", "api_key", "aws_endpoint_url", "stage", "demo_url"}
    mode = Path(local["info_path"]).stat().st_mode & 0o777
    assert mode == 0o600, f"the file holds an API key; mode {mode:o}"
    assert local["stage"] == "local"
    assert httpx.get(f"{local['api_url']}/health").json()["status"] == "ok"


def test_a_sync_extraction_answers_with_structured_data(local: dict[str, Any], site: Site) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
    }
    with client(local) as c:
        out = c.post("/extract", json={"urls": [f"{site.url}/product/7"], "json_schema": schema})
    assert out.status_code == 200
    assert out.json()["result"]["data"] == {"name": "Lamp 7", "price": 7.5}


def test_a_page_built_by_javascript_is_rendered_in_local_mode_and_says_so(
    local: dict[str, Any], site: Site
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "sku": {"type": "string"}},
    }
    with client(local) as c:
        created = c.post("/jobs", json={"urls": [f"{site.url}/js/fetched"], "json_schema": schema})
        assert created.status_code == 202
        job = wait_for(c, created.json()["job_id"])
        assert job["status"] == "completed", job
        result = c.get(f"/jobs/{job['job_id']}/result").json()["result"]
    assert result["data"] == {"name": "Desk lamp Vega", "sku": "VEG-3"}
    rendered = result["pages"][0]["rendered"]
    assert "app shell" in rendered["reason"]
    assert rendered["ms"] > 0


def test_an_async_crawl_goes_through_queue_and_worker(local: dict[str, Any], site: Site) -> None:
    body = {
        "urls": [f"{site.url}/catalog/1"],
        "crawl": {"max_pages": 5, "max_depth": 0},
        "selectors": {
            "base_selector": "article.product",
            "fields": {"name": {"selector": ".name"}},
        },
    }
    with client(local) as c:
        created = c.post("/jobs", json=body)
        assert created.status_code == 202
        job = wait_for(c, created.json()["job_id"])
        assert job["status"] == "completed"
        result = c.get(f"/jobs/{job['job_id']}/result").json()["result"]
    names = [item["name"] for page in result["data"] for item in page["data"]]
    assert len(names) == 12


def test_a_job_that_needs_a_model_is_refused_without_a_key_and_nothing_is_fetched(
    local: dict[str, Any], site: Site
) -> None:
    with client(local) as c:
        for path, body, field in (
            ("/jobs", {"type": "ai-process", "urls": [f"{site.url}/catalog/1"]}, "type"),
            (
                "/extract",
                {"urls": [f"{site.url}/catalog/1"], "instruction": "the names"},
                "instruction",
            ),
        ):
            if body.get("type") == "ai-process":
                body["instruction"] = "the names of the products"
            refused = c.post(path, json=body)
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "model_unavailable"
            assert error["field"] == field
            assert "no OpenAI API key" in error["message"]
        quoted = c.post(
            "/jobs/quote", json={"urls": [f"{site.url}/catalog/1"], "instruction": "the names"}
        ).json()
    assert any(n.startswith("model_unavailable") for n in quoted["notes"])


def test_a_batch_closes_when_its_last_child_finishes(local: dict[str, Any], site: Site) -> None:
    urls = [f"{site.url}/product/{i}" for i in (1, 2, 3)] + [f"{site.url}/gone"]
    with client(local) as c:
        parent = c.post("/jobs", json={"type": "batch", "urls": urls}).json()
        job = wait_for(c, parent["job_id"])
    assert job["status"] == "completed"
    assert job["children"] == {"total": 4, "completed": 3, "failed": 1, "cancelled": 0}


def test_a_webhook_job_delivers_a_verifiable_signature(
    local: dict[str, Any], site: Site, receiver: Receiver
) -> None:
    with client(local) as c:
        created = c.post(
            "/jobs",
            json={
                "type": "webhook",
                "urls": [f"{site.url}/product/2"],
                "webhook_url": receiver.url,
            },
        )
        job = wait_for(c, created.json()["job_id"])
        secrets = c.get("/webhook-secret").json()["secrets"]
    end = time.monotonic() + 20
    while not receiver.requests and time.monotonic() < end:
        time.sleep(0.1)
    headers, body = receiver.requests[-1]
    assert Webhook(secrets[0]).verify(body, headers)["data"]["job_id"] == job["job_id"]


def test_ssrf_targets_fail_and_bad_input_is_refused(local: dict[str, Any]) -> None:
    with client(local) as c:
        blocked = c.post(
            "/extract", json={"urls": ["http://169.254.169.254/latest/meta-data/"]}
        ).json()
        assert blocked["job"]["error"]["code"] == "blocked_target"
        assert (
            c.post(
                "/jobs", content=b"{oops", headers={"Content-Type": "application/json"}
            ).status_code
            == 400
        )
        assert (
            c.post(
                "/jobs", json={"urls": ["https://a.example/"]}, headers={"x-api-key": "nope"}
            ).status_code
            == 401
        )


def test_the_extract_command_follows_a_job_to_its_result(
    local: dict[str, Any], site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex_local.cli import main

    selectors = tmp_path / "selectors.json"
    selectors.write_text(
        json.dumps({"base_selector": "article.product", "fields": {"name": {"selector": ".name"}}})
    )
    argv = [
        "extract",
        f"{site.url}/catalog/1",
        "--selectors",
        str(selectors),
        "--crawl-pages",
        "2",
        "--crawl-depth",
        "0",
        "--wait",
        "--endpoint",
        local["api_url"],
        "--api-key",
        local["api_key"],
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [item["name"] for page in out["data"] for item in page["data"]][:2] == [
        "Lamp 1",
        "Lamp 2",
    ]


def test_the_extract_command_reports_bad_input_and_exits_non_zero(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex_local.cli import main

    argv = [
        "extract",
        "file:///etc/passwd",
        "--endpoint",
        local["api_url"],
        "--api-key",
        local["api_key"],
    ]
    assert main(argv) == 2
    assert "validation_error (urls.0)" in capsys.readouterr().err
    assert main(["extract", "https://a.example/", "--endpoint", local["api_url"]]) == 2


def test_validate_passes_against_local_mode_with_a_canary_job(
    local: dict[str, Any], site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex_local.cli import main

    argv = [
        "validate",
        "--stage",
        "local",
        "--endpoint-url",
        local["aws_endpoint_url"],
        "--endpoint",
        local["api_url"],
        "--api-key",
        local["api_key"],
        "--canary-url",
        f"{site.url}/catalog/1",
        "--json",
    ]
    code = main(argv)
    rows = {r["check"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0, [r for r in rows.values() if r["verdict"] == "FAIL"]
    assert rows["canary job"]["verdict"] == "PASS"
    assert rows["stack atlas-codex-data-local"]["verdict"] == "PASS"
    assert rows["alarms"]["verdict"] == "PASS"
    assert rows["stack atlas-codex-compute-local"]["verdict"] == "SKIP"


def test_a_quote_then_a_reextraction_over_the_stored_pages_with_a_diff(
    local: dict[str, Any], site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex_local.cli import main

    url = f"{site.url}/product/7"
    argv = [
        "extract",
        url,
        "--quote",
        "--endpoint",
        local["api_url"],
        "--api-key",
        local["api_key"],
    ]
    assert main(argv) == 0
    quote = json.loads(capsys.readouterr().out)
    assert quote["high_usd"] == 0  # no key in local mode: deterministic strategies, no model
    assert quote["pages"]["fetched"] == 1
    with client(local) as c:
        first = c.post(
            "/extract", json={"urls": [url], "selectors": {"fields": {"name": {"selector": "h1"}}}}
        ).json()
        assert first["job"]["status"] == "completed", first
        assert first["result"]["expires_at"]
        hits = len(site.hits)
        again = c.post(
            f"/jobs/{first['job']['job_id']}/reextract",
            json={
                "selectors": {
                    "fields": {"name": {"selector": "h1"}, "title": {"selector": "title"}}
                }
            },
        )
        assert again.status_code == 202, again.text
        done = wait_for(c, again.json()["job"]["job_id"])
        assert done["status"] == "completed", done
        assert done["reextraction_of"]["job_id"] == first["job"]["job_id"]
        result = c.get(f"/jobs/{done['job_id']}/result").json()["result"]
    assert len(site.hits) == hits  # the site saw no request
    assert [(d["path"], d["change"]) for d in result["diff"]] == [("title", "added")]
    assert result["data"]["name"] == first["result"]["data"]["name"]


def test_the_terminal_shows_job_lines_and_ctrl_c_stops_cleanly(
    local: dict[str, Any], site: Site
) -> None:
    with client(local) as c:
        body = {
            "urls": [f"{site.url}/product/1"],
            "selectors": {"fields": {"n": {"selector": "h1"}}},
        }
        job = c.post("/extract", json=body).json()["job"]
    proc: subprocess.Popen[str] = local["process"]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Stopped." in out
    assert local["api_key"] in out
    # One line a person can read per job event; machine output only in the run's log.
    line = next(x for x in out.splitlines() if job["job_id"] in x and "completed" in x)
    assert re.search(r"completed  1 page  \d+\.\d\d s  \$0\.0000  quality=complete", line), line
    assert '{"_aws"' not in out
    assert "Moto" not in out
    assert "Warning" not in out
    log = Path(re.search(r"Logs: +(\S+service\.log)", out)[1])  # type: ignore[index]
    assert '"_aws"' in log.read_text()  # the EMF metrics went there


def test_the_key_survives_a_restart_and_the_banner_prints_export_lines(
    tmp_path_factory: pytest.TempPathFactory, site: Site
) -> None:
    """Two runs of local mode, one after the other: the same key works in both (kept 0600 in
    .cache/), the banner prints ready-to-paste export lines, and the info file the CLI reads
    by default holds the run's URL and key."""
    from atlas_codex_local.paths import INFO_FILE, KEY_FILE

    keys = []
    for run in range(2):
        info = tmp_path_factory.mktemp(f"restart-{run}") / "info.json"
        proc = spawn(info, "--no-demo", "--allow-fetch", site.host_port, capture=True)
        try:
            data = wait_for_info(proc, info)
            assert (
                httpx.get(
                    f"{data['api_url']}/jobs", headers={"x-api-key": data["api_key"]}, timeout=30
                ).status_code
                == 200
            )
            keys.append(data["api_key"])
            assert json.loads(INFO_FILE.read_text())["api_url"] == data["api_url"]
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
        assert f"export ATLAS_API_URL={data['api_url']} ATLAS_API_KEY={data['api_key']}" in output
    assert keys[0] == keys[1]
    assert KEY_FILE.read_text().strip() == keys[0]
    assert KEY_FILE.stat().st_mode & 0o777 == 0o600
    assert INFO_FILE.stat().st_mode & 0o777 == 0o600

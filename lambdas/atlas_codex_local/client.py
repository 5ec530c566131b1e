"""``atlas-codex extract``: submit a job to any Atlas Codex endpoint and print its result.

The endpoint and key come from ``--endpoint``/``--api-key``, else ``ATLAS_API_URL``/
``ATLAS_API_KEY``, else the ``--info-file`` local mode writes. Without ``--wait`` the job
runs through ``POST /extract`` (answering at once when it finishes in time); with it, the
job is queued and followed with a progress line until it ends.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final, TextIO

import httpx

from atlas_codex_local.paths import INFO_FILE

TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "timeout"})


class ClientError(RuntimeError):
    """The command cannot proceed; the message says why."""


def _load_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise ClientError(f"{what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ClientError(f"{what} {path} is not JSON: {exc}") from None


def endpoint_and_key(
    endpoint: str | None, api_key: str | None, info_file: str | None
) -> tuple[str, str]:
    info: dict[str, Any] = {}
    if info_file:
        info = _load_json(info_file, "--info-file")
    elif not (endpoint or os.environ.get("ATLAS_API_URL")) and INFO_FILE.is_file():
        info = _load_json(str(INFO_FILE), "the local run's info file")
    url = endpoint or os.environ.get("ATLAS_API_URL") or info.get("api_url")
    key = api_key or os.environ.get("ATLAS_API_KEY") or info.get("api_key")
    if not url or not key:
        raise ClientError(
            "no endpoint or API key: pass --endpoint and --api-key, set ATLAS_API_URL and ATLAS_API_KEY, "
            "point --info-file at the file `atlas-codex local up` wrote, or start `make run` "
            "(it writes .cache/local-info.json, read by default)"
        )
    return str(url).rstrip("/"), str(key)


def build_request(
    url: str,
    *,
    schema: str | None,
    selectors: str | None,
    instruction: str | None,
    crawl_pages: int | None,
    crawl_depth: int | None,
    max_cost_usd: float | None = None,
    include_evidence: bool = False,
) -> dict[str, Any]:
    if sum(x is not None for x in (schema, selectors, instruction)) > 1:
        raise ClientError("give at most one of --schema, --selectors, --instruction")
    body: dict[str, Any] = {"urls": [url]}
    if schema is not None:
        body["json_schema"] = _load_json(schema, "--schema")
    if selectors is not None:
        body["selectors"] = _load_json(selectors, "--selectors")
    if instruction is not None:
        body["instruction"] = instruction
    if max_cost_usd is not None:
        body["max_cost_usd"] = max_cost_usd
    if include_evidence:
        body["include_evidence"] = True
    if crawl_pages is not None or crawl_depth is not None:
        body["crawl"] = {
            **({"max_pages": crawl_pages} if crawl_pages is not None else {}),
            **({"max_depth": crawl_depth} if crawl_depth is not None else {}),
        }
    return body


def _error(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
        field = f" ({error['field']})" if error.get("field") else ""
        return ClientError(
            f"HTTP {response.status_code} {error['code']}{field}: {error['message']}"
        )
    except (ValueError, KeyError, TypeError):
        return ClientError(f"HTTP {response.status_code}: {response.text[:200]}")


def quote(body: dict[str, Any], *, endpoint: str, api_key: str, out: TextIO | None = None) -> int:
    """Print what the job would cost (POST /jobs/quote); nothing billable runs."""
    out = out or sys.stdout
    with httpx.Client(base_url=endpoint, headers={"x-api-key": api_key}, timeout=60) as client:
        response = client.post("/jobs/quote", json=body)
        if response.status_code != 200:
            raise _error(response)
        out.write(json.dumps(response.json(), indent=2, ensure_ascii=False) + "\n")
    return 0


EXIT_COMPLETE: Final = 0
EXIT_FAILED: Final = 1
"""The job ended failed, cancelled or timed out."""
EXIT_PARTIAL: Final = 3
"""The job completed, partial: some of what was asked is missing (the reasons are printed)."""


def summary(job: dict[str, Any]) -> tuple[str, int]:
    """One line a person reads about how the job ended, and the exit code it means."""
    status, quality = job.get("status"), job.get("quality")
    line = f"{job.get('job_id')}: {status}"
    if status == "completed":
        line += f", quality {quality or 'complete'}"
        reasons = job.get("quality_reasons") or []
        if quality == "partial":
            line += ": " + ("; ".join(reasons) if reasons else "see the result's pages")
            return line, EXIT_PARTIAL
        return line, EXIT_COMPLETE
    if status in ("pending", "processing"):
        return line + " (still running)", EXIT_COMPLETE
    error = job.get("error") or {}
    if error:
        line += f": {error.get('code')}: {error.get('message')}"
    return line, EXIT_FAILED


def run(
    body: dict[str, Any],
    *,
    endpoint: str,
    api_key: str,
    wait: bool,
    timeout_s: float = 600,
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    # Resolved per call (not at import), so a redirected stdout is the one written to.
    out = out or sys.stdout
    progress = progress or sys.stderr
    with httpx.Client(base_url=endpoint, headers={"x-api-key": api_key}, timeout=60) as client:
        if not wait:
            response = client.post("/extract", json=body)
            if response.status_code not in (200, 202):
                raise _error(response)
            data = response.json()
            if response.status_code == 202:
                job = data["job"]
                print(
                    f"still running as job {job['job_id']}; follow it at {endpoint}{job['status_url']}",
                    file=progress,
                )
            out.write(
                json.dumps(data.get("result") or data["job"], indent=2, ensure_ascii=False) + "\n"
            )
            line, code = summary(data["job"])
            print(line, file=progress)
            return code
        response = client.post("/jobs", json={**body, "type": "async"})
        if response.status_code not in (200, 202):
            raise _error(response)
        job = response.json()
        started = time.monotonic()
        while job["status"] not in TERMINAL:
            if time.monotonic() - started > timeout_s:
                raise ClientError(
                    f"job {job['job_id']} did not finish in {timeout_s:.0f} s (it goes on)"
                )
            print(
                f"\r{job['job_id']}: {job['status']} ({time.monotonic() - started:.0f} s)",
                end="",
                file=progress,
                flush=True,
            )
            time.sleep(0.5)
            response = client.get(f"/jobs/{job['job_id']}")
            if response.status_code != 200:
                raise _error(response)
            job = response.json()
        line, code = summary(job)
        print(f"\r{line} ({time.monotonic() - started:.0f} s)", file=progress)
        if job["status"] != "completed":
            out.write(
                json.dumps(
                    {"job_id": job["job_id"], "status": job["status"], "error": job["error"]},
                    indent=2,
                )
                + "\n"
            )
            return code
        result = client.get(f"/jobs/{job['job_id']}/result").json()
        if result["delivery"] == "url":
            result["result"] = httpx.get(result["url"], timeout=60).json()
        out.write(json.dumps(result["result"], indent=2, ensure_ascii=False) + "\n")
        return code

"""The local AWS emulator answers the AWS SDKs and no web page: a request a browser page would
send (it carries an ``Origin``), a CORS preflight included, is refused, and no response
carries an ``Access-Control-*`` header for a page to read the local jobs through."""

from __future__ import annotations

import httpx

from atlas_codex.ground.config import RuntimeConfig


def test_a_browser_page_cannot_read_the_emulator(config: RuntimeConfig, moto_endpoint: str) -> None:
    queue = f"{moto_endpoint}/?Action=ListQueues"
    asked = httpx.get(queue, headers={"Origin": "https://evil.example"})
    preflight = httpx.options(
        f"{moto_endpoint}/{config.artifacts_bucket}",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    for answer in (asked, preflight):
        assert answer.status_code == 403
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_the_sdk_still_reaches_it(config: RuntimeConfig, moto_endpoint: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert config.artifacts_bucket in names

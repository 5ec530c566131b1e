"""The render function and how the api and worker reach it: the Invoke request checked
against botocore's Lambda model (moto runs functions only in Docker, which this world has
not), and the handler rendering a page built by JavaScript."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from atlas_codex.render.client import LambdaRenderClient, RenderReply, RenderRequest
from atlas_codex.render.result import RenderFailed
from atlas_codex_local.apigw import context
from tests.site import Site


def lambda_client() -> Any:
    return botocore.session.get_session().create_client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def payload(body: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_a_render_is_one_synchronous_invoke_of_the_render_function() -> None:
    client = lambda_client()
    reply = RenderReply(
        ok=True, url="https://shop.example/p/1", status=200, html="<h1>Lamp</h1>", elapsed_ms=812
    )
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": payload(reply.model_dump())},
            {
                "FunctionName": "atlas-codex-render-dev",
                "InvocationType": "RequestResponse",
                "Payload": RenderRequest(
                    url="https://shop.example/p/1", wait_for=".price", timeout_s=15, max_bytes=1000
                )
                .model_dump_json()
                .encode(),
            },
        )
        rendered = LambdaRenderClient("atlas-codex-render-dev", client).render(
            "https://shop.example/p/1", wait_for=".price", timeout_s=15, max_bytes=1000
        )
        stub.assert_no_pending_responses()
    assert rendered.html == "<h1>Lamp</h1>"
    assert rendered.elapsed_ms == 812


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (
            {
                "StatusCode": 200,
                "Payload": payload(
                    RenderReply(
                        ok=False,
                        error_code="blocked_target",
                        error="169.254.169.254 is a cloud metadata address",
                    ).model_dump()
                ),
            },
            "blocked_target",
        ),
        (
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": payload({"errorMessage": "boom"}),
            },
            "render_failed",
        ),
    ],
)
def test_a_refusal_or_a_crash_of_the_render_function_is_a_failed_render(
    response: dict[str, Any], code: str
) -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_response("invoke", response)
        with pytest.raises(RenderFailed) as failed:
            LambdaRenderClient("atlas-codex-render-dev", client).render(
                "https://shop.example/", wait_for=None, timeout_s=5, max_bytes=1000
            )
    assert failed.value.code == code


def test_an_unreachable_render_function_is_render_unavailable() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "ResourceNotFoundException", "no such function")
        with pytest.raises(RenderFailed) as failed:
            LambdaRenderClient("atlas-codex-render-dev", client).render(
                "https://shop.example/", wait_for=None, timeout_s=5, max_bytes=1000
            )
    assert failed.value.code == "render_unavailable"


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.close()


def test_the_handler_renders_a_page_and_answers_bad_input_with_a_reply(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex.handlers import render

    monkeypatch.setenv("ATLAS_STAGE", "local")
    monkeypatch.setenv("ATLAS_ALLOWED_PRIVATE_HOSTS", site.host_port)
    monkeypatch.setattr(render, "_renderer", None)
    ctx: Any = context(30_000, "atlas-codex-render-local")
    try:
        answer = render.handler(
            {"url": f"{site.url}/js/fetched", "timeout_s": 10, "max_bytes": 1 << 20},
            ctx,
        )
        reply = RenderReply.model_validate(answer)
        assert reply.ok
        assert "Desk lamp Vega" in (reply.html or "")
        refused = RenderReply.model_validate(
            render.handler(
                {"url": "http://169.254.169.254/", "timeout_s": 5, "max_bytes": 10},
                ctx,
            )
        )
        assert (refused.ok, refused.error_code) == (False, "blocked_target")
        bad = RenderReply.model_validate(render.handler({"url": "x", "timeout_s": 999}, ctx))
        assert (bad.ok, bad.error_code) == (False, "validation_error")
    finally:
        if render._renderer is not None:
            render._renderer.close()

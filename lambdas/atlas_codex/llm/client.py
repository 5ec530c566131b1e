"""One model call through the ``openai`` SDK, and its failures sorted into kinds the router
acts on. The SDK's own retries are off: the router is the only retry loop.

The SDK is imported here only, and this module only on the path that calls a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import httpx2 as httpx

from atlas_codex.ground.schema_check import violation
from atlas_codex.llm import tokens
from atlas_codex.llm.catalog import Usage

FailureKind = Literal[
    "rate_limited",
    "server_error",
    "timeout",
    "connection",
    "refusal",
    "invalid_output",
    "truncated",
    "context_length",
    "auth",
    "bad_request",
    "not_found",
]
RETRYABLE_ELSEWHERE: frozenset[str] = frozenset(get_args(FailureKind)) - {"auth", "bad_request"}
"""Failures another model of the chain may not have; auth and bad requests stop the chain
(a model the endpoint does not serve, ``not_found``, moves on to the next)."""
ENDPOINT_FAILURES: frozenset[str] = frozenset(
    {"rate_limited", "server_error", "timeout", "connection", "not_found"}
)
"""Failures of the model or the endpoint, which the next request would meet too: they cool
the model down for everyone in the process. A refusal, a cut or invalid answer, a context
too long belong to one request's content and cool nothing."""


class ModelCallFailed(Exception):
    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        usage: Usage | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.usage = usage
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Completion:
    model: str
    data: Any
    usage: Usage
    finish_reason: str | None
    service_tier: str | None = None
    raw_text: str = field(default="", repr=False)


class ModelClient:
    """Chat Completions with JSON-schema structured outputs (any OpenAI-compatible server)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        from openai import OpenAI

        self.sdk = OpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, http_client=http_client
        )

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None,
        max_output_tokens: int,
        timeout_s: float,
        reasoning_effort: str | None = None,
        strict: bool = False,
    ) -> Completion:
        import openai

        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_completion_tokens": max_output_tokens,
            "timeout": timeout_s,
        }
        if schema is not None:
            kwargs["response_format"] = tokens.response_format(schema, strict=strict)
        if reasoning_effort is not None:
            kwargs["reasoning_effort"] = reasoning_effort
        try:
            response = self.sdk.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise ModelCallFailed(
                "rate_limited", _message(exc), retry_after_s=_retry_after(exc.response)
            ) from None
        except openai.APITimeoutError:
            raise ModelCallFailed("timeout", f"no answer within {timeout_s:g} s") from None
        except openai.APIConnectionError as exc:
            raise ModelCallFailed("connection", _message(exc)) from None
        except openai.AuthenticationError as exc:
            raise ModelCallFailed("auth", _message(exc)) from None
        except openai.NotFoundError as exc:
            raise ModelCallFailed("not_found", _message(exc)) from None
        except openai.BadRequestError as exc:
            code = _error_code(exc)
            kind: FailureKind = (
                "context_length" if code == "context_length_exceeded" else "bad_request"
            )
            raise ModelCallFailed(kind, _message(exc)) from None
        except openai.InternalServerError as exc:
            raise ModelCallFailed("server_error", _message(exc)) from None
        except openai.APIStatusError as exc:
            kind = "server_error" if exc.status_code >= 500 else "bad_request"
            raise ModelCallFailed(kind, _message(exc)) from None
        usage = _usage(response.usage)
        choice = response.choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise ModelCallFailed("refusal", str(message.refusal)[:500], usage=usage)
        if choice.finish_reason == "length":
            raise ModelCallFailed(
                "truncated",
                f"the answer hit max_completion_tokens ({max_output_tokens})",
                usage=usage,
            )
        text = message.content or ""
        try:
            data = json.loads(text)
        except ValueError:
            raise ModelCallFailed(
                "invalid_output", f"the answer is not JSON: {text[:200]!r}", usage=usage
            ) from None
        if schema is not None:
            problem = violation(schema, data)
            if problem:
                raise ModelCallFailed("invalid_output", problem, usage=usage)
        return Completion(
            model=response.model or model,
            data=data,
            usage=usage,
            finish_reason=choice.finish_reason,
            service_tier=getattr(response, "service_tier", None),
            raw_text=text,
        )


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) or 0 if details else 0
    return Usage(
        input_tokens=raw.prompt_tokens or 0,
        cached_input_tokens=cached,
        output_tokens=raw.completion_tokens or 0,  # includes reasoning tokens
    )


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    for header in ("retry-after-ms", "retry-after"):
        value = response.headers.get(header)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            return seconds / 1000 if header == "retry-after-ms" else seconds
    return None


def _error_code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error.get("code")
    return getattr(exc, "code", None)


def _message(exc: Exception) -> str:
    return str(exc)[:500]

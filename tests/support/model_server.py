"""The one scripted model server: OpenAI's chat completions in the API's real shapes, reached
through the real ``openai`` SDK over an injected HTTP transport (no socket, no network).

A test gives it a script, either the replies in order or a function of the request body,
and reads back what was sent (``requests``). A reply is an API answer in its real form: a
JSON value the model answers with (billed for the prompt exactly as sent, counted by the
project's own tokenizer), an :class:`Answer` (content, refusal, finish reason and usage of
its own), a whole completion body (:func:`completion`), an HTTP error (:func:`error`), or an
exception the transport raises (a timeout)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
from pydantic import SecretStr

from atlas_codex.accounts.usage import BudgetGuard
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.llm import tokens
from atlas_codex.llm.catalog import Catalog, catalog_for
from atlas_codex.llm.client import ModelClient
from atlas_codex.llm.extraction import ModelStrategies
from atlas_codex.llm.router import Cooldowns, Router

API_KEY = "sk-test"


def completion(
    content: Any,
    *,
    finish: str = "stop",
    refusal: str | None = None,
    model: str = "gpt-5-nano-2025-08-07",
    prompt: int = 812,
    cached: int = 0,
    completion_tokens: int = 31,
    reasoning: int = 0,
) -> dict[str, Any]:
    """A chat completion body as the API returns it (``content``: text, or a JSON value)."""
    text = None if refusal else (content if isinstance(content, str) else json.dumps(content))
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1764374400,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": refusal,
                    "annotations": [],
                },
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": None,
    }


def error(
    status: int, code: str | None, message: str, headers: dict[str, str] | None = None
) -> httpx2.Response:
    """An error answer in the API's shape (a 429 may say when to come back)."""
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error" if status == 400 else "server_error",
            "param": None,
            "code": code,
        }
    }
    return httpx2.Response(status, json=body, headers=headers or {})


def extracted(data: Any, quotes: dict[str, str | None] | None = None) -> dict[str, Any]:
    """An extraction answer: the data, and a quote per field (by default its value as text)."""
    if quotes is None:
        quotes = {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {"data": data, "evidence": [{"field": k, "quote": q} for k, q in quotes.items()]}


@dataclass(frozen=True)
class Answer:
    """A model's answer with its own refusal, finish reason or billed output."""

    content: Any = None
    refusal: str | None = None
    finish: str = "stop"
    completion_tokens: int | None = None
    """Billed output (None: the server's default)."""
    reasoning: int = 0
    """Of the output, the thinking (a reasoning model's)."""


Script = Callable[[dict[str, Any]], Any]
"""The request body -> the reply."""


class ModelServer:
    """A model endpoint answering each request by its script; safe for threads."""

    def __init__(self, script: Script | Sequence[Any], *, completion_tokens: int = 40) -> None:
        self._replies = None if callable(script) else list(script)
        self._script = script if callable(script) else None
        self.completion_tokens = completion_tokens
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @classmethod
    def replying(cls, *replies: Any) -> ModelServer:
        """A server answering each request with the next of ``replies``."""
        return cls(list(replies))

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content)
        with self._lock:
            self.requests.append(sent)
            scripted = self._replies.pop(0) if self._replies is not None else None
        reply = self._script(sent) if self._script is not None else scripted
        return self.respond(sent, reply)

    def respond(self, sent: dict[str, Any], reply: Any) -> httpx2.Response:
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, httpx2.Response):
            return reply
        if isinstance(reply, dict) and reply.get("object") == "chat.completion":
            return httpx2.Response(200, json=reply)
        answer = reply if isinstance(reply, Answer) else Answer(content=reply)
        schema = (sent.get("response_format") or {}).get("json_schema", {}).get("schema")
        out = (
            answer.completion_tokens
            if answer.completion_tokens is not None
            else self.completion_tokens
        )
        body = completion(
            answer.content,
            refusal=answer.refusal,
            finish=answer.finish,
            model=sent["model"],
            prompt=tokens.prompt_tokens(sent["messages"], schema),
            completion_tokens=out,
            reasoning=answer.reasoning,
        )
        return httpx2.Response(200, json=body)

    def models(self) -> list[str]:
        """The model each request was sent to, in order."""
        return [r["model"] for r in self.requests]

    def client(self) -> ModelClient:
        """The real SDK client, talking to this server."""
        return ModelClient(
            api_key=API_KEY, http_client=httpx2.Client(transport=httpx2.MockTransport(self))
        )

    def strategies(
        self,
        config: RuntimeConfig,
        *,
        cooldowns: Cooldowns | None = None,
        catalog: Catalog | None = None,
        budget: BudgetGuard | None = None,
    ) -> ModelStrategies:
        """The model strategies of a stage configured with a key, routed to this server."""
        keyed = config.model_copy(update={"openai_api_key": SecretStr(API_KEY)})
        router = Router(
            client=self.client(),
            catalog=catalog if catalog is not None else catalog_for(config.model_policy),
            policy=keyed.model_policy,
            budget=budget,
            cooldowns=cooldowns if cooldowns is not None else Cooldowns(),
        )
        return ModelStrategies(keyed, router=router)

"""Offline, exact o200k_base token counts (toktok-rs: no network, no vocabulary download).

tiktoken downloads its encoding files at run time, which a Lambda without internet access
cannot; ``toktok-rs`` ships the vocabulary in a 4.5 MB wheel and counts at ~200 MB/s. A test
checks its counts against a second implementation (``bpe-openai``) on mixed text.

:func:`request_tokens` counts what a Chat Completions request bills: each message's framing
(3 tokens, plus the role) and text, the reply priming, and the JSON schema of a structured
output (:func:`prompt_tokens` for the service's own requests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

ENCODING: Final = "o200k_base"
TOKENS_PER_MESSAGE: Final = 3
REPLY_PRIMING: Final = 3
RESPONSE_FORMAT_NAME: Final = "extraction"
"""The name every structured output is sent under."""


def count(text: str) -> int:
    import toktok

    return int(toktok.batch_count([text], ENCODING, threads=1)[0])


def count_many(texts: Iterable[str]) -> list[int]:
    import toktok

    return [int(n) for n in toktok.batch_count(list(texts), ENCODING, threads=1)]


def response_format(schema: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """The ``response_format`` the client sends for ``schema`` (one definition: what is sent
    is what is counted)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": RESPONSE_FORMAT_NAME, "schema": dict(schema), "strict": strict},
    }


def prompt_tokens(
    messages: Sequence[Mapping[str, str]],
    schema: Mapping[str, Any] | None = None,
    model: str = "",
    *,
    strict: bool = False,
) -> int:
    """The input tokens of a Chat Completions request of these messages and schema."""
    body: dict[str, Any] = {"model": model, "messages": list(messages)}
    if schema is not None:
        body["response_format"] = response_format(schema, strict=strict)
    return request_tokens("chat.completions", body)


REASONING_PRIMING: Final = 2
"""Reply priming of the reasoning families (o3, o4, gpt-5...): one token less than chat
models' on every plain request of the recorded dev set (18 of 18; o1-mini keeps 3)."""
NAME_TOKENS: Final = 1
"""A message's ``name`` costs its own tokens and one more."""
SCHEMA_FORMAT_TOKENS: Final = 11
"""Around a JSON-schema response format: the median on the recorded dev set of what the API
billed beyond the schema's compact JSON (without ``additionalProperties`` and
``required``), its name and its description. Not exact: the API renders the schema in a
form of its own (a flat schema is within -2..+4 of this; nested ones further)."""
_REASONING: Final = re.compile(r"^(o[3-9]|gpt-5)")


def is_reasoning(model: str) -> bool:
    """A model of the reasoning families (o3, o4, gpt-5 ...), by name."""
    return bool(_REASONING.match(model))


def request_tokens(endpoint: str, body: Mapping[str, Any]) -> int:
    """The input tokens the API bills for a request body as the service sends it.

    ``chat.completions``: each message's framing (3), role, text (string or text parts) and
    name; the reply priming (3, or 2 for reasoning models); a JSON-schema response format's
    schema, name and description (an estimate, see :data:`SCHEMA_FORMAT_TOKENS`). Exact on
    plain requests of the recorded dev set; the test measures it."""
    if endpoint != "chat.completions":
        raise ValueError(f"request_tokens: no rule for the endpoint {endpoint!r}")
    messages = body.get("messages") or []
    texts: list[str] = []
    extra = 0
    for message in messages:
        texts.append(str(message.get("role", "")))
        texts.append(_content_text(message.get("content")))
        if message.get("name"):
            texts.append(str(message["name"]))
            extra += NAME_TOKENS
    model = str(body.get("model", ""))
    priming = REASONING_PRIMING if is_reasoning(model) else REPLY_PRIMING
    total = sum(count_many(texts)) + TOKENS_PER_MESSAGE * len(messages) + priming + extra
    response_format = body.get("response_format") or {}
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        total += _schema_format_tokens(response_format.get("json_schema") or {})
    return total


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _schema_format_tokens(spec: Mapping[str, Any]) -> int:
    schema = _without(spec.get("schema") or {}, frozenset({"additionalProperties", "required"}))
    texts = [json.dumps(schema, separators=(",", ":"), ensure_ascii=False)]
    texts += [str(spec[k]) for k in ("name", "description") if spec.get(k)]
    return sum(count_many(texts)) + SCHEMA_FORMAT_TOKENS


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def truncate(text: str, max_tokens: int) -> tuple[str, int, int]:
    """``text`` cut to at most ``max_tokens`` tokens; returns (text, tokens before, after)."""
    import toktok

    cut, before = toktok.truncate(text, max_tokens, ENCODING)
    if before <= max_tokens:
        return text, int(before), int(before)
    return str(cut), int(before), count(str(cut))

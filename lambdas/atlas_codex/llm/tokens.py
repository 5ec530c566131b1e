"""Offline, exact o200k_base token counts (toktok-rs: no network, no vocabulary download).

tiktoken downloads its encoding files at run time, which a Lambda without internet access
cannot; ``toktok-rs`` ships the vocabulary in a 4.5 MB wheel and counts at ~200 MB/s. A test
checks its counts against a second implementation (``bpe-openai``) on mixed text.

:func:`request_tokens` counts what a Chat Completions request bills: each message's framing
(3 tokens, plus the role) and text, the reply priming, and the JSON-schema response format
as the API renders it into the prompt (:func:`render_response_format`; :func:`prompt_tokens`
for the service's own requests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from atlas_codex.llm.strict import CONSTRAINT_KEYWORDS

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
RESPONSE_FORMAT_TOKENS: Final = 4
"""Beyond the rendered response format (below), the API bills 4 more tokens for it; when
the request has no system or developer message the format comes in one of its own, which
also costs the message framing (3 + the role)."""
NOT_RENDERED: Final = (
    frozenset({"additionalProperties", "required", "default"}) | CONSTRAINT_KEYWORDS
)
"""Schema keywords the model is not shown (structured outputs enforces them while decoding).
Seen on the recorded calls: ``additionalProperties``, ``required``, ``default``,
``minimum``, ``maximum`` and ``maxItems`` cost nothing; the other constraint keywords of
strict mode are assumed to go the same way (no recorded call has them)."""
_SCHEMA_MAPS: Final = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_REASONING: Final = re.compile(r"^(o[3-9]|gpt-5)")


def is_reasoning(model: str) -> bool:
    """A model of the reasoning families (o3, o4, gpt-5 ...), by name."""
    return bool(_REASONING.match(model))


def request_tokens(endpoint: str, body: Mapping[str, Any]) -> int:
    """The input tokens the API bills for a request body as the service sends it.

    ``chat.completions``: each message's framing (3), role, text (string or text parts) and
    name; the reply priming (3, or 2 for reasoning models); a JSON-schema response format as
    rendered by :func:`render_response_format`, appended to the first system message (or in
    a system message of its own), plus :data:`RESPONSE_FORMAT_TOKENS`. The test measures it
    on the recorded dev set."""
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
        system = next((m for m in messages if m.get("role") in ("system", "developer")), None)
        rendered = render_response_format(response_format.get("json_schema") or {})
        if system is None:
            total += TOKENS_PER_MESSAGE + count("system") + count(rendered)
        else:
            # Appended to the first system message: counted together, as it is tokenized.
            text = _content_text(system.get("content"))
            total += count(f"{text}\n\n{rendered}") - count(text)
        total += RESPONSE_FORMAT_TOKENS
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


def render_response_format(spec: Mapping[str, Any]) -> str:
    """The text a JSON-schema response format becomes in the prompt, as the recorded calls
    bill it: a ``# Response Formats`` section naming it, its description as a ``//``
    comment, and the schema as compact ASCII JSON (keys in the order given) without the
    keywords of :data:`NOT_RENDERED`."""
    text = f"# Response Formats\n\n## {spec.get('name', '')}\n\n"
    if spec.get("description"):
        text += f"// {spec['description']}\n"
    schema = _shown(spec.get("schema") or {})
    return text + json.dumps(schema, separators=(",", ":"), ensure_ascii=True)


def _shown(node: Any) -> Any:
    """A schema node without the keywords the model is not shown (a property that happens
    to be called ``default`` or ``required`` is a name, not a keyword, and stays)."""
    if isinstance(node, list):
        return [_shown(v) for v in node]
    if not isinstance(node, Mapping):
        return node
    shown: dict[str, Any] = {}
    for key, value in node.items():
        if key in NOT_RENDERED:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            shown[key] = {name: _shown(sub) for name, sub in value.items()}
        else:
            shown[key] = _shown(value)
    return shown


def truncate(text: str, max_tokens: int) -> tuple[str, int, int]:
    """``text`` cut to at most ``max_tokens`` tokens; returns (text, tokens before, after)."""
    import toktok

    cut, before = toktok.truncate(text, max_tokens, ENCODING)
    if before <= max_tokens:
        return text, int(before), int(before)
    return str(cut), int(before), count(str(cut))

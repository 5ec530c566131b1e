"""How many tokens a structured answer is expected to take, from its JSON schema.

The answer is the schema filled in: its keys and punctuation (counted), and a value per
leaf whose size is set by its type. The two sizes that are not fixed by the type were found
on the recorded calls of ``../shared/benchdata/openai-recorded`` (JSON-schema requests that
finished, all models): a string value of :data:`STRING_TOKENS` tokens and arrays of
:data:`ARRAY_ITEMS` item minimise the median error there (``bench/token_counts.py`` reports
the signed error by model family). Free text (an explanation, a poem) runs far longer than
a name or a price, so the estimate is a middle, not a bound: the output cap is the bound.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from atlas_codex.llm import tokens

STRING_TOKENS: Final = 4
ARRAY_ITEMS: Final = 1
NUMBER_TOKENS: Final = 2
BOOLEAN_TOKENS: Final = 1
CHOICE_TOKENS: Final = 3
"""An ``enum`` or ``const`` value."""
QUOTE_TOKENS: Final = 12
"""A field's evidence quote (a short span of the page). Assumed, not fitted: the recorded
calls ask for no evidence."""
EVIDENCE_ENTRY_TOKENS: Final = 10
"""``{"field":"...","quote":"..."}`` around the path and the quote."""
ANSWER_CAP_MIN: Final = 512
ANSWER_CAP_FACTOR: Final = 4
ANSWER_CAP_MAX: Final = 4096
"""An answer's output cap is ANSWER_CAP_FACTOR times its expected size, within
[ANSWER_CAP_MIN, ANSWER_CAP_MAX]: no recorded JSON-schema answer that finished was longer than
its cap by this rule (154 calls; a floor of 256 would have cut 8). The cap bounds what a call
can cost; an answer it cuts is retried once with a larger one (the router)."""
REASONING_TOKENS: Final[dict[str, tuple[int, int]]] = {"low": (192, 768), "medium": (256, 2048)}
"""effort -> (expected, allowance): what a reasoning model thinks before it answers, billed
as output. The expected figure is the median of the recorded calls, the allowance (added to
its output cap) lies well above all of them: gpt-5, gpt-5-mini and gpt-5-nano at the default
(medium) effort, 49 calls: p50 256, p90 1,344, max 2,368; low effort, 10 calls of every
reasoning model: p50 64, p90 320, max 320 (gpt-5-nano's own: 192 and 320). The service asks
for low effort except on the full tier."""


def expected_tokens(schema: Mapping[str, Any] | None) -> int:
    """The expected size of an answer to ``schema`` (a whole JSON object)."""
    if not isinstance(schema, Mapping):
        return STRING_TOKENS
    return _value(schema, schema)


def reasoning_tokens(effort: str | None) -> tuple[int, int]:
    """(expected, allowance) of a reasoning model's thinking at ``effort`` (None: the API's
    default, medium)."""
    return REASONING_TOKENS.get(effort or "medium", REASONING_TOKENS["medium"])


def cap_tokens(expected: int) -> int:
    """The output cap of an answer expected to take ``expected`` tokens (reasoning aside)."""
    return max(ANSWER_CAP_MIN, min(ANSWER_CAP_MAX, ANSWER_CAP_FACTOR * expected))


def evidence_tokens(fields: int) -> int:
    """What the evidence list of an extraction answer adds for ``fields`` leaf fields."""
    return 2 + fields * (EVIDENCE_ENTRY_TOKENS + QUOTE_TOKENS + NUMBER_TOKENS)


def leaf_fields(schema: Mapping[str, Any] | None) -> int:
    """The values an answer to ``schema`` holds (an array's items counted once)."""
    if not isinstance(schema, Mapping):
        return 0
    return _leaves(schema, schema)


def _resolve(node: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return target if isinstance(target, Mapping) else {}
    return node


def _kind(node: Mapping[str, Any], root: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The node's type with null taken out (``anyOf`` with null, type lists)."""
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list):
            real = [_resolve(o, root) for o in options]
            real = [o for o in real if o.get("type") != "null"]
            if real:
                return _kind(real[0], root)
            return "null", node
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "enum" in node or "const" in node:
        return "choice", node
    if kind is None and "properties" in node:
        kind = "object"
    return str(kind or "string"), node


def _value(node: Any, root: Mapping[str, Any], depth: int = 0) -> int:
    if depth > 32:
        return STRING_TOKENS
    kind, node = _kind(_resolve(node, root), root)
    if kind == "object":
        properties = node.get("properties") or {}
        return 2 + sum(
            tokens.count(json.dumps(name)) + 1 + _value(sub, root, depth + 1)
            for name, sub in properties.items()
        )
    if kind == "array":
        return 2 + ARRAY_ITEMS * (1 + _value(node.get("items") or {}, root, depth + 1))
    return {
        "integer": NUMBER_TOKENS,
        "number": NUMBER_TOKENS,
        "boolean": BOOLEAN_TOKENS,
        "null": BOOLEAN_TOKENS,
        "choice": CHOICE_TOKENS,
    }.get(kind, STRING_TOKENS)


def _leaves(node: Any, root: Mapping[str, Any], depth: int = 0) -> int:
    if depth > 32:
        return 1
    kind, node = _kind(_resolve(node, root), root)
    if kind == "object":
        return sum(_leaves(sub, root, depth + 1) for sub in (node.get("properties") or {}).values())
    if kind == "array":
        return _leaves(node.get("items") or {}, root, depth + 1)
    return 1

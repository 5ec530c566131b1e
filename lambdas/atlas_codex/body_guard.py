"""What a request body must pass before it is parsed into a model: a bounded nesting depth
(the JSON parser recurses, so a body nested thousands deep would exhaust the stack) and
numbers the job record can store (DynamoDB keeps 38 digits, magnitudes 1e-130 to 1e126).

Both are checked on the raw text, with the path of the offending number, so the answer is a
4xx naming the field instead of a 5xx when the record is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from atlas_codex import limits
from atlas_codex.jobs.schema import DYNAMODB_MAX_DIGITS, unstorable_numbers

_OPEN: Final = frozenset("[{")
_CLOSE: Final = frozenset("]}")


@dataclass(frozen=True)
class BodyProblem:
    status: int
    code: str
    message: str
    field: str | None = None


def nesting_depth(raw: str, stop_at: int) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped), counted
    without recursion; stops counting once past ``stop_at``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    return deepest
        elif char in _CLOSE:
            depth -= 1
    return deepest


def _int(text: str) -> int:
    # More digits than can be stored: a stand-in just past the limit (Python refuses to
    # convert over 4,300 digits, and the exact value is refused anyway).
    limit: int = 10**DYNAMODB_MAX_DIGITS
    if len(text.lstrip("-")) > DYNAMODB_MAX_DIGITS:
        return -limit if text.startswith("-") else limit
    return int(text)


def inspect(raw: str) -> BodyProblem | None:
    """The first reason the body cannot be taken, or None (invalid JSON is left to the
    parser that answers it)."""
    depth = nesting_depth(raw, limits.MAX_BODY_JSON_DEPTH)
    if depth > limits.MAX_BODY_JSON_DEPTH:
        return BodyProblem(
            400,
            "invalid_json",
            f"the body nests arrays and objects more than {limits.MAX_BODY_JSON_DEPTH} deep",
        )
    try:
        value = json.loads(raw, parse_int=_int, parse_constant=float)
    except ValueError:
        return None
    for path, problem in unstorable_numbers(value):
        return BodyProblem(422, "validation_error", f"the number {problem}", path or None)
    return None

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

from atlas_codex.ground import limits
from atlas_codex.ground.values import DYNAMODB_MAX_MAGNITUDE, unstorable_numbers

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


PYTHON_MAX_INT_DIGITS: Final = 4000
"""Python converts at most 4,300 digits to an int; a longer literal is out of range anyway."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > PYTHON_MAX_INT_DIGITS:
        # a stand-in just as far out of range: the exact value is refused either way
        beyond = int(DYNAMODB_MAX_MAGNITUDE) * 10
        return -beyond if text.startswith("-") else beyond
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

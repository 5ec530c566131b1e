"""The value types every room shares: timestamps and the clock, URLs and host names, the
numbers DynamoDB can store, money and token counts, and the strict model base.

They sit on the bottom floor (they import only ``limits``), so the extraction contract, the
engine, the model layer and the job record use them without importing one another.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from atlas_codex.ground import limits

TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone (UTC, 'Z')")
    value = value.astimezone(UTC)
    if not 1970 <= value.year <= 9999:
        raise ValueError("timestamp must be between 1970 and 9999")
    return value


def format_timestamp(value: datetime) -> str:
    """The stored form of a timestamp: fixed width, UTC, microseconds, 'Z'."""
    # Fixed width, so ISO strings sort like the instants they name (GSI sort keys).
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


Timestamp = Annotated[
    datetime,
    AfterValidator(_require_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_http_url(value: str) -> str:
    if len(value) > limits.MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {limits.MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in value) or any(ord(c) < 0x20 for c in value):
        raise ValueError("URL must not contain white space or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("only http and https URLs are accepted")
    if not parts.hostname:
        raise ValueError("URL has no host")
    check_host_name(parts.hostname)
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not carry credentials (user@host)")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError("URL has an invalid port") from exc
    return value


MAX_HOST_NAME_CHARS: Final = 253
"""DNS: a name of at most 253 characters, each label 1 to 63 (RFC 1035, after IDNA)."""


def check_host_name(host: str) -> str:
    """A host name DNS can carry: IDNA-encodable, no empty label, no label over 63
    characters, 253 in all (an address literal passes as it is)."""
    bare = host.strip("[]")
    if ":" in bare:  # an IPv6 literal; the SSRF guard judges the address itself
        return host
    try:
        encoded = bare.rstrip(".").encode("idna")
    except UnicodeError:
        raise ValueError(
            "the URL's host name is not valid: each label must be 1 to 63 characters "
            "(no empty label, as in 'a..b')"
        ) from None
    if not encoded:
        raise ValueError("the URL's host name is empty")
    if len(encoded) > MAX_HOST_NAME_CHARS:
        raise ValueError(
            f"the URL's host name is {len(encoded)} characters; DNS allows {MAX_HOST_NAME_CHARS}"
        )
    return host


HttpUrlStr = Annotated[str, AfterValidator(check_http_url)]


FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ErrorCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
USD_DECIMALS: Final = 12
"""Costs are kept to a millionth of a micro-dollar: finer is noise, and DynamoDB's numbers
stop at 1e-130, which a float can go below."""


DYNAMODB_MIN_MAGNITUDE: Final = 1e-130
DYNAMODB_MAX_MAGNITUDE: Final = 1e126
DYNAMODB_MAX_DIGITS: Final = 38


def storable_problem(value: int | float) -> str | None:
    """Why DynamoDB cannot store the number ``value``, or None when it can (38 digits of
    precision, magnitudes from 1e-130 to below 1e126, finite)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if value and abs(value) >= DYNAMODB_MAX_MAGNITUDE:
            shown = f"{Decimal(value):.3E}"  # a float cannot hold it; a string may not either
            return f"{shown} is outside the range that can be stored (1e-130 to 1e126, or 0)"
        if len(significant(value).as_tuple().digits) > DYNAMODB_MAX_DIGITS:
            return (
                f"has more than {DYNAMODB_MAX_DIGITS} significant digits, more than can be stored"
            )
        return None
    if not math.isfinite(value):
        return "is not a finite number"
    if value != 0 and not DYNAMODB_MIN_MAGNITUDE <= abs(value) < DYNAMODB_MAX_MAGNITUDE:
        return f"{value!r} is outside the range that can be stored (1e-130 to 1e126, or 0)"
    return None


def significant(value: int) -> Decimal:
    """An integer as DynamoDB keeps it: its significant digits and an exponent (1E+50)."""
    return Decimal(value).normalize(_EXACT) if value else Decimal(0)


_EXACT: Final = Context(prec=4400)


def unstorable_numbers(value: Any) -> Iterator[tuple[str, str]]:
    """Each number in a JSON-shaped value that cannot be stored: (dotted path, why)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(((*where, str(k)), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend(((*where, str(i)), v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, int | float):
            problem = storable_problem(item)
            if problem is not None:
                yield ".".join(where), problem


def storable(value: float) -> float:
    """``value`` itself when DynamoDB can store it, else a ValueError saying why."""
    problem = storable_problem(value)
    if problem is not None:
        raise ValueError(f"the number {problem}")
    return value


def _round_usd(value: float) -> float:
    return round(value, USD_DECIMALS)


NonNegativeUsd = Annotated[
    float, Field(ge=0, le=1e9, allow_inf_nan=False), AfterValidator(_round_usd)
]
TokenCount = Annotated[int, Field(ge=0)]


class FieldError(ValueError):
    """A rule across fields, with the field to blame (the API names it in its 422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class StrictModel(BaseModel):
    """Every boundary model: unknown fields rejected, no coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON value with its path; an empty object or list is a leaf too."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            yield from leaves(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for n, sub in enumerate(value):
            yield from leaves(sub, f"{path}[{n}]")
    else:
        yield path, value

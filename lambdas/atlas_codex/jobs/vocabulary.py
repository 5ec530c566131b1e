"""The words every room uses to speak of a job, apart from the record that stores it: the
job types and statuses, the one transition table, and the ids (job, owner, correlation,
idempotency key) with their checks.

The stored record (:mod:`atlas_codex.jobs.record`) is built from these; the health monitor,
the WebSocket handler, the API's door and the finished-job metric speak them without
importing the record.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, Field

from atlas_codex.ground import limits

JobType = Literal["sync", "async", "ai-process", "batch", "webhook"]
JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled", "timeout"]
JOB_TYPES: Final[tuple[JobType, ...]] = get_args(JobType)
JOB_STATUSES: Final[tuple[JobStatus, ...]] = get_args(JobStatus)

# THE transition table. A status not listed as a key has no way out (terminal).
# processing -> pending is the release of a claim after a transient error, so the
# returning queue message can claim the job again.
ALLOWED_TRANSITIONS: Final[Mapping[JobStatus, frozenset[JobStatus]]] = MappingProxyType(
    {
        "pending": frozenset({"processing", "cancelled", "failed", "timeout"}),
        "processing": frozenset({"pending", "completed", "failed", "cancelled", "timeout"}),
        "completed": frozenset(),
        "failed": frozenset(),
        "cancelled": frozenset(),
        "timeout": frozenset(),
    }
)
TERMINAL_STATUSES: Final[frozenset[JobStatus]] = frozenset(
    s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt
)


def can_transition(current: JobStatus, new: JobStatus) -> bool:
    """True when the table allows ``current -> new``."""
    return new in ALLOWED_TRANSITIONS[current]


def sources_of(new: JobStatus) -> frozenset[JobStatus]:
    """Every status from which ``new`` may be reached (for conditional writes)."""
    return frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if new in nxt)


# --------------------------------------------------------------------------- ids


_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ValueError("must start with a letter or digit and use only A-Z a-z 0-9 _ . : -")
    return value


JobId = Annotated[
    str, Field(min_length=1, max_length=limits.MAX_JOB_ID_CHARS), AfterValidator(check_id)
]
OwnerId = Annotated[
    str, Field(min_length=1, max_length=limits.MAX_OWNER_ID_CHARS), AfterValidator(check_id)
]
CorrelationId = Annotated[
    str, Field(min_length=1, max_length=limits.MAX_CORRELATION_ID_CHARS), AfterValidator(check_id)
]
IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x21-\x7e]+$"
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1, max_length=limits.MAX_IDEMPOTENCY_KEY_CHARS, pattern=IDEMPOTENCY_KEY_PATTERN
    ),
]

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now: datetime | None = None) -> str:
    """``job_`` + a ULID: 48 bits of milliseconds then 80 random bits, so ids sort by time."""
    ms = int(now.timestamp() * 1000) if now else time.time_ns() // 1_000_000
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "job_" + "".join(reversed(chars))

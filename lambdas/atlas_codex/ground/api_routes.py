"""The REST API's routes, defined once.

The api handler registers exactly these (a unit test compares them with its resolver) and
the stack creates exactly these resources and methods in API Gateway, with an API key
required on every route but the public ones and the body validated on those that take one.
Paths use API Gateway's ``{param}`` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

API_KEY_HEADER: Final = "x-api-key"
CORRELATION_HEADER: Final = "X-Correlation-Id"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REQUEST_HEADERS: Final = ("Content-Type", API_KEY_HEADER, IDEMPOTENCY_HEADER, CORRELATION_HEADER)
"""The headers a browser client may send (CORS)."""

Method = Literal["GET", "POST", "DELETE"]


@dataclass(frozen=True)
class Route:
    method: Method
    path: str
    public: bool = False
    """Served without an API key (and without a usage plan's quota)."""
    idempotent: bool = False
    """Takes an ``Idempotency-Key`` header: a retry with the same key makes no second job."""

    @property
    def takes_body(self) -> bool:
        return self.method == "POST"

    @property
    def resolver_path(self) -> str:
        """The path in the Powertools resolver's ``<param>`` form."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


ROUTES: Final[tuple[Route, ...]] = (
    Route("POST", "/jobs", idempotent=True),
    Route("POST", "/jobs/quote"),
    Route("GET", "/jobs"),
    Route("GET", "/jobs/{job_id}"),
    Route("DELETE", "/jobs/{job_id}"),
    Route("GET", "/jobs/{job_id}/result"),
    Route("POST", "/jobs/{job_id}/reextract", idempotent=True),
    Route("POST", "/extract", idempotent=True),
    Route("GET", "/webhook-secret"),
    Route("POST", "/webhook-secret/rotate"),
    Route("GET", "/health", public=True),
    Route("GET", "/openapi.json", public=True),
    Route("GET", "/console", public=True),
    Route("GET", "/console/{asset}", public=True),
)


def _pattern(path: str) -> str:
    return "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"


def is_public(path: str) -> bool:
    """Served without an API key: the path matches a public route."""
    return any(r.public and re.fullmatch(_pattern(r.path), path) for r in ROUTES)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods served on ``path`` (empty when no route has that path): a wrong method on
    a known path is answered 405 with them in ``Allow``."""
    found: list[str] = []
    for route in ROUTES:
        if re.fullmatch(_pattern(route.path), path) and route.method not in found:
            found.append(route.method)
    if "GET" in found:
        found.append("HEAD")  # a GET's status and headers, without its body
    return tuple(found)

"""Access-log formats of the two kinds of API, and the context variables each kind accepts.

API Gateway refuses a stage whose access-log format names a variable its API type does not
have (``$context.httpMethod`` is a REST variable, not a WebSocket one), so a wrong format
blocks the whole stack's creation. The sets below are taken from AWS's variable references
("API Gateway mapping template and access logging variable reference" for REST APIs,
"Configure logging for WebSocket APIs in API Gateway" for WebSocket APIs); a guard checks
every synthesized stage's format against the set of its kind.
"""

from __future__ import annotations

import json
import re
from typing import Final

REST_VARIABLES: Final = frozenset(
    {
        "requestId",
        "extendedRequestId",
        "identity.sourceIp",
        "identity.caller",
        "identity.user",
        "identity.userAgent",
        "requestTime",
        "requestTimeEpoch",
        "httpMethod",
        "resourcePath",
        "path",
        "status",
        "protocol",
        "responseLength",
        "responseLatency",
        "integrationLatency",
        "integrationStatus",
        "integration.error",
        "integration.status",
        "integration.latency",
        "error.message",
        "error.responseType",
        "stage",
        "apiId",
    }
)
WEBSOCKET_VARIABLES: Final = frozenset(
    {
        "requestId",
        "extendedRequestId",
        "apiId",
        "connectionId",
        "connectedAt",
        "domainName",
        "eventType",
        "messageId",
        "routeKey",
        "error.message",
    }
)

WEBSOCKET_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "connectionId": "$context.connectionId",
        "connectedAt": "$context.connectedAt",
        "messageId": "$context.messageId",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)
"""One JSON line per WebSocket event: which connection, which route, what went wrong."""

_VARIABLE: Final = re.compile(r"\$context\.([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])")


def variables(log_format: str) -> set[str]:
    """The ``$context`` variables a format names."""
    return set(_VARIABLE.findall(log_format))

"""The OpenAPI document: the resolver's, plus what it cannot see of the door."""

from __future__ import annotations

import json
from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from atlas_codex.api.door import CORRELATION_RE
from atlas_codex.ground import limits
from atlas_codex.ground.api_routes import (
    API_KEY_HEADER,
    CORRELATION_HEADER,
    IDEMPOTENCY_HEADER,
    ROUTES,
)
from atlas_codex.jobs.vocabulary import IDEMPOTENCY_KEY_PATTERN

API_KEY_SCHEME: Final = "apiKey"


def document(app: APIGatewayRestResolver) -> str:
    """The resolver's document with the API key scheme, the headers every route reads and
    answers, and the statuses the door and the gateway answer on every route (401 without a
    key, 429 throttled, 500)."""
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="Atlas Codex API",
            version="1.0.0",
            description="Web data extraction: submit jobs, poll them, fetch results. Every "
            "route but /health, /openapi.json and the console's files needs an API key in the "
            "x-api-key header.",
        )
    )
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[API_KEY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    correlation_out = {
        CORRELATION_HEADER: {
            "description": "The request's correlation id (the one sent, or a new one)",
            "schema": {"type": "string"},
        }
    }
    for route in ROUTES:
        operation = doc["paths"].get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue
        operation["security"] = [] if route.public else [{API_KEY_SCHEME: []}]
        parameters = operation.setdefault("parameters", [])
        parameters.append(
            {
                "name": CORRELATION_HEADER,
                "in": "header",
                "required": False,
                "description": "Your correlation id, followed through queue, worker and logs",
                "schema": {"type": "string", "pattern": CORRELATION_RE.pattern},
            }
        )
        if route.idempotent:
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "A retry with the same key answers with the first job",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": limits.MAX_IDEMPOTENCY_KEY_CHARS,
                        "pattern": IDEMPOTENCY_KEY_PATTERN,
                    },
                }
            )
        responses = operation.setdefault("responses", {})
        extra = {"500": "Unexpected error (quote the correlation id)"}
        if not route.public:
            extra |= {"401": "Missing or unknown API key", "429": "Throttled or over quota"}
        for status, description in extra.items():
            responses.setdefault(status, {"description": description, "content": error})
        for response in responses.values():
            response.setdefault("headers", {}).update(correlation_out)
    extract = doc["paths"]["/extract"]["post"]["responses"]
    extract["202"] = {
        "description": "Still running at the deadline: it goes on asynchronously (poll status_url)",
        "content": extract["200"]["content"],
        "headers": correlation_out,
    }
    return json.dumps(doc)

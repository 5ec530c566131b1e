"""The floor for a handler that answers ``POST /jobs``: the minimal Powertools handler plus
what any such handler must load, pydantic (request validation) and a DynamoDB client
(botocore), and nothing of Atlas Codex."""

from __future__ import annotations

import botocore.session
import pydantic  # noqa: F401 - loaded as a validating handler loads it
from minimal_powertools import handler  # type: ignore[import-not-found]  # beside it in the bundle

dynamodb = botocore.session.get_session().create_client("dynamodb")

__all__ = ["dynamodb", "handler"]

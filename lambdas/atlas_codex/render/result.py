"""What a render gives back, or why it failed: plain values, cheap to import (the engine
imports them on every cold start; the browser's modules only when a page is rendered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Waited = Literal["selector", "network-idle", "time-limit"]


class RenderFailed(Exception):
    """The page could not be rendered; ``code`` is a job error code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Rendered:
    url: str
    """The final URL (after redirects and client-side navigation)."""
    status: int | None
    html: str
    truncated: bool
    """The HTML was longer than the limit and was cut."""
    elapsed_ms: int
    waited: Waited
    blocked_requests: int
    """Images, fonts and media not loaded, and requests the SSRF guard refused."""

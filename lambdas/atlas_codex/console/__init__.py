"""The job console: static HTML, CSS and JavaScript served by the API itself (``GET /console``).

No build step and no CDN: the files beside this module are the whole console. The page reads
the API key the user types (or the local-mode banner's ``#key=`` fragment, once) into the
tab's session storage and calls the API with it; a strict Content-Security-Policy allows
nothing but these files, the API itself and, when one is deployed, the WebSocket API.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
PAGE: Final = "index.html"
ASSETS: Final = {"console.js": "text/javascript", "console.css": "text/css"}
"""The files ``GET /console/{asset}`` serves, with their media types; nothing else is."""
WEBSOCKET_PLACEHOLDER: Final = "{{websocket_url}}"


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str
    headers: dict[str, str]


def security_headers(websocket_url: str | None) -> dict[str, str]:
    """What the browser may do with the console: its own files and API, nothing else."""
    connect = "'self'" + (f" {websocket_url}" if websocket_url else "")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


@functools.cache
def _read(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def page(websocket_url: str | None) -> StaticFile:
    """The console's page; it names the WebSocket URL to subscribe at (empty: poll)."""
    body = _read(PAGE).replace(WEBSOCKET_PLACEHOLDER, html.escape(websocket_url or "", quote=True))
    return StaticFile(body, "text/html; charset=utf-8", security_headers(websocket_url))


def asset(name: str, websocket_url: str | None) -> StaticFile | None:
    """One of the console's files by name, or None (no path is ever read from a request)."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return None
    return StaticFile(
        _read(name), f"{content_type}; charset=utf-8", security_headers(websocket_url)
    )

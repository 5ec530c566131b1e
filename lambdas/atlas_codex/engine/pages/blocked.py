"""Pages that answered 200 but hold no content: bot challenges and login walls.

They are marked failed like a 4xx/5xx, and no model is called on them. The tests are
conservative: a marker only counts on a page with little text of its own, so an article
that mentions a captcha, or a shop page with a sign-in box in its header, is not refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode

CHALLENGE_TITLES: Final = re.compile(
    r"just a moment|attention required|access denied|are you a (robot|human)|"
    r"verify(ing)? you are (a )?human|security check|ddos-guard|pardon our interruption|"
    r"checking your browser|bot verification|request blocked|captcha",
    re.IGNORECASE,
)
CHALLENGE_MARKERS: Final = (
    "cf-chl-",
    "challenge-platform",
    "_cf_chl_opt",
    "px-captcha",
    "captcha-delivery.com",
    "g-recaptcha",
    "h-captcha",
    "cf-turnstile",
    "/_incapsula_resource",
    "perimeterx",
)
THIN_TEXT_CHARS: Final = 1500
"""A page with less visible text than this may be a wall; more is content."""


@dataclass(frozen=True)
class Blocked:
    code: str
    message: str


HIDDEN: Final = frozenset({"script", "style", "noscript", "template"})


def _visible_chars(tree: LexborHTMLParser) -> int:
    """Characters of the body's visible text, white space folded (the tree is not changed:
    it is the page's own, shared with the strategies)."""
    body = tree.body
    if body is None:
        return 0
    words = 0
    chars = 0
    for node in body.traverse(include_text=True):
        if node.tag != "-text" or _hidden(node):
            continue
        for word in (node.text_content or "").split():
            words += 1
            chars += len(word)
    return chars + max(words - 1, 0)


def _hidden(node: LexborNode) -> bool:
    current = node.parent
    while current is not None and current.tag != "body":
        if current.tag in HIDDEN:
            return True
        current = current.parent
    return False


def blocked(tree: LexborHTMLParser, html: str) -> Blocked | None:
    """Why the page (``html`` and its parsed ``tree``) is a wall rather than content, or None."""
    title_node = tree.css_first("title")
    title = (title_node.text() if title_node is not None else "").strip()
    if _visible_chars(tree) >= THIN_TEXT_CHARS:
        return None
    lowered = html.lower()
    marker = next((m for m in CHALLENGE_MARKERS if m in lowered), None)
    if CHALLENGE_TITLES.search(title) or marker is not None:
        why = f"title {title[:80]!r}" if CHALLENGE_TITLES.search(title) else f"marker {marker!r}"
        return Blocked(
            "challenge_page", f"the site answered with a bot challenge, not the page ({why})"
        )
    if tree.css_first("input[type=password]") is not None:
        return Blocked(
            "login_wall", "the site answered with a sign-in form, not the page's content"
        )
    return None

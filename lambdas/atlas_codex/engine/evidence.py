"""Evidence for model output: each value's quoted span of the page, checked to occur in it.

The model answers with the data and, per field, a short verbatim quote of the page that
states it (or null when the page does not give the field). A quote is *verified* when it
occurs in the page's content, compared without case, markup or runs of white space; a value
whose quote is absent from the page, or that came without a quote, is flagged ``unverified``.
A field the page does not give is reported "not found" (``missing``), which is distinct from
a value found to be null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from atlas_codex.engine.quality import leaves
from atlas_codex.extraction.result import Evidence

_MARKUP: Final = re.compile(r"[*_`#>|\[\]()\\]+")
_SPACE: Final = re.compile(r"\s+")
_INDEX: Final = re.compile(r"\[(\d+)\]")
NO_QUOTE: Final = "(the model gave no quote)"


def normalise(text: str) -> str:
    """Lower case, markdown markup and runs of white space folded: what a quote is matched by."""
    return _SPACE.sub(" ", _MARKUP.sub(" ", text.casefold())).strip()


def _path_key(path: str) -> str:
    path = path.strip().removeprefix("$").lstrip(".")
    return _INDEX.sub(r".\1", path)


@dataclass
class Checked:
    evidence: dict[str, Evidence] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def haystack(page_texts: Iterable[str]) -> str:
    """The page's texts as quotes are matched against them (normalised once per page)."""
    return " \n ".join(normalise(t) for t in page_texts)


def check(data: Any, quotes: Iterable[Mapping[str, Any]], page: str) -> Checked:
    """Evidence for every leaf of ``data`` from the model's ``[{"field", "quote"}]``; ``page``
    is the page's :func:`haystack`."""
    by_path: dict[str, str | None] = {}
    for entry in quotes:
        name, quote = entry.get("field"), entry.get("quote")
        if isinstance(name, str):
            by_path.setdefault(_path_key(name), quote if isinstance(quote, str) else None)
    out = Checked()
    for path, value in leaves(data):
        label = path or "$"
        quote = _quote_for(_path_key(path), by_path)
        if value in (None, "", []) and quote is None:
            out.missing.append(label)
            continue
        if quote is None:
            out.evidence[label] = Evidence(kind="quote", source=NO_QUOTE, verified=False)
            out.unverified.append(label)
            continue
        verified = bool(normalise(quote)) and normalise(quote) in page
        out.evidence[label] = Evidence(kind="quote", source=quote, verified=verified)
        if not verified:
            out.unverified.append(label)
    return out


def _quote_for(key: str, by_path: Mapping[str, str | None]) -> str | None:
    """The quote given for the path, or for the nearest enclosing field that has one."""
    while True:
        if by_path.get(key):
            return by_path[key]
        if "." not in key:
            return None
        key = key.rsplit(".", 1)[0]

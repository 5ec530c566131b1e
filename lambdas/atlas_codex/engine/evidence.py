"""Evidence for model output: each value's quoted span of the page, checked to occur in it.

The model answers with the data and, per field, a short verbatim quote of the page that
states it (or null when the page does not give the field). A value is *verified* when its
quote occurs in the page's content (compared without case, markup or runs of white space)
**and the quote states the value**: a number is one of the quote's numbers once its locale's
separators are read (``1.299,00`` and ``1,299.00`` alike), a string (an enum's value too) is
contained in the quote. A value whose quote is absent from the page, does not state it, or
that came without a quote is flagged ``unverified``, and the job is ``partial`` naming it
(``price: 0.01`` quoted as "Price: $129.99" is not evidence of 0.01). Booleans and URLs
cannot be quoted as such: their quote need only be in the page.
A field the page does not give is reported "not found" (``missing``), which is distinct from
a value found to be null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from atlas_codex.engine.facts.direct import parse_number
from atlas_codex.extraction.result import Evidence
from atlas_codex.ground.values import leaves

_MARKUP: Final = re.compile(r"[*_`#>|\[\]()\\]+")
_SPACE: Final = re.compile(r"\s+")
_INDEX: Final = re.compile(r"\[(\d+)\]")
_NUMBERS: Final = re.compile(r"[-+]?\d[\d\s.,']*")
NUMBER_TOLERANCE: Final = 0.005
"""A number is stated by a quote when one of the quote's numbers is this close (relative)."""
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
        verified = bool(normalise(quote)) and normalise(quote) in page and states(quote, value)
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


def states(quote: str, value: Any) -> bool:
    """Whether ``quote`` states ``value`` (see the module's doc)."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        target = float(value)
        for match in _NUMBERS.finditer(quote):
            found = parse_number(match[0].strip(" .,'"))
            if found is not None and abs(found - target) <= NUMBER_TOLERANCE * max(
                1.0, abs(target)
            ):
                return True
        return False
    if isinstance(value, str):
        if value.startswith(("http://", "https://", "/")):
            return True
        wanted = normalise(value)
        return not wanted or wanted in normalise(quote)
    return True

"""The state a JavaScript-built page ships with its HTML, read without running any script.

Single-page apps send an empty mount point and a script that fills it; most also send the
data the first screen is drawn from, so the browser need not fetch it again. This module
reads that data where it is plain data:

* ``<script id="__NEXT_DATA__" type="application/json">`` (Next.js pages router);
* ``<script id="__NUXT_DATA__" type="application/json">`` (Nuxt 3: a flattened array in the
  ``devalue`` format, where objects and arrays hold indexes of their values);
* any other ``<script type="application/json">`` (state handed to the client by an id);
* ``window.__SOMETHING__ = {...}`` and ``window.__SOMETHING__ = JSON.parse("...")``
  assignments whose right-hand side is JSON (``__INITIAL_STATE__``, ``__PRELOADED_STATE__``,
  ``__APOLLO_STATE__``...). A right-hand side that is code (a function call, an identifier)
  is left alone: nothing is evaluated.

:func:`best_objects` then finds, anywhere in that state, the objects whose keys answer the
most of a schema's properties: what the deterministic strategies and the model read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from selectolax.lexbor import LexborHTMLParser

MAX_STATE_CHARS: Final = 5_000_000
"""A script larger than this is not parsed (a page's whole bundle inlined, not its data)."""
MAX_NODES: Final = 200_000
"""Objects and arrays visited in one state at most, when searching it."""
MAX_DEPTH: Final = 60
ASSIGNMENT: Final = re.compile(r"window\.(__[A-Za-z0-9_]+__)\s*=\s*")
JSON_PARSE: Final = re.compile(r"JSON\.parse\(\s*")
APP_MOUNTS: Final = ("#root", "#app", "#__next", "#__nuxt", "#___gatsby", "[data-reactroot]")
NOSCRIPT_CUES: Final = re.compile(r"enable javascript|javascript (is )?(required|disabled)", re.I)
SHELL_MAX_WORDS: Final = 40
"""An app shell's visible text is at most this many words (a title, a loading notice)."""


@dataclass(frozen=True)
class State:
    source: str
    """Where the state was found (``__NEXT_DATA__``, ``window.__INITIAL_STATE__``...)."""
    data: Any


@dataclass(frozen=True)
class Found:
    """An object inside a state, and how well its keys answer a schema."""

    source: str
    """``<state source>`` then the JSON path to the object (``$.props.pageProps.product``)."""
    value: Mapping[str, Any]
    matched: int


def states(tree: LexborHTMLParser) -> list[State]:
    """Every state the page ships as data (scripts are read, never run)."""
    found: list[State] = []
    for node in tree.css("script"):
        kind = (node.attributes.get("type") or "").strip().lower()
        ident = node.attributes.get("id") or ""
        text = node.text(deep=True) or ""
        if not text.strip() or len(text) > MAX_STATE_CHARS:
            continue
        if kind == "application/json" or (kind.endswith("+json") and kind != "application/ld+json"):
            data = _json(text)
            if data is None:
                continue
            if ident == "__NUXT_DATA__":
                data = unflatten(data)
                if data is None:
                    continue
            found.append(State(ident or f"script[type={kind}]", data))
        elif kind in ("", "text/javascript", "application/javascript", "module"):
            found.extend(_assignments(text))
    return found


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _assignments(script: str) -> Iterator[State]:
    """``window.__X__ = <JSON>`` and ``window.__X__ = JSON.parse("<JSON>")``, in a script."""
    decoder = json.JSONDecoder()
    for match in ASSIGNMENT.finditer(script):
        name, start = match.group(1), match.end()
        parse = JSON_PARSE.match(script, start)
        try:
            if parse is not None:
                literal, _ = _js_string(script, parse.end())
                if literal is None:
                    continue
                value = json.loads(literal)
            else:
                value, _ = decoder.raw_decode(script, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict | list):
            yield State(f"window.{name}", value)


def _js_string(script: str, start: int) -> tuple[str | None, int]:
    """A JavaScript string literal at ``start`` (single or double quoted), decoded."""
    if start >= len(script) or script[start] not in "\"'":
        return None, start
    quote = script[start]
    end = start + 1
    while end < len(script):
        char = script[end]
        if char == "\\":
            end += 2
            continue
        if char == quote:
            break
        end += 1
    else:
        return None, start
    body = script[start + 1 : end]
    if quote == "'":  # the escapes JSON knows, with \' and a bare " made JSON's
        body = body.replace("\\'", "'").replace('"', '\\"')
    try:
        return json.loads(f'"{body}"'), end + 1
    except ValueError:
        return None, start


# ---------------------------------------------------------------------- devalue (Nuxt 3)

_SPECIAL: Final[dict[int, Any]] = {
    -1: None,  # undefined
    -2: None,  # a hole in an array
    -3: math.nan,
    -4: math.inf,
    -5: -math.inf,
    -6: 0.0,  # negative zero
}
_WRAPPERS: Final = frozenset(
    {"Reactive", "ShallowReactive", "Ref", "ShallowRef", "Object", "NuxtError", "EmptyShallowRef"}
)


def unflatten(flat: Any) -> Any:
    """A value from devalue's flattened form: a list whose first element is the root and
    whose objects and arrays hold indexes into the list; negative indexes are the special
    values; ``["Date", iso]``, ``["Set", i...]``, ``["Map", k, v...]`` and the like are typed
    values, and one-value wrappers (Nuxt's ``["Reactive", i]``...) stand for what they wrap.
    None when ``flat`` is not in that form."""
    if isinstance(flat, int) and not isinstance(flat, bool):
        return _SPECIAL.get(flat)
    if not isinstance(flat, list) or not flat:
        return None
    cache: dict[int, Any] = {}
    visiting: set[int] = set()

    def value(index: Any, depth: int) -> Any:
        if not isinstance(index, int) or isinstance(index, bool):
            return None
        if index < 0:
            return _SPECIAL.get(index)
        if index >= len(flat) or depth > MAX_DEPTH or index in visiting:
            return None  # out of range, too deep or a cycle: nothing to read there
        if index in cache:
            return cache[index]
        visiting.add(index)
        try:
            out = build(flat[index], depth)
        finally:
            visiting.discard(index)
        cache[index] = out
        return out

    def build(raw: Any, depth: int) -> Any:
        if isinstance(raw, dict):
            return {k: value(v, depth + 1) for k, v in raw.items()}
        if isinstance(raw, list):
            if raw and isinstance(raw[0], str):
                return typed(raw, depth)
            return [value(v, depth + 1) for v in raw]
        return raw

    def typed(raw: list[Any], depth: int) -> Any:
        kind, rest = raw[0], raw[1:]
        if kind in ("Date", "RegExp", "BigInt", "URL"):
            return rest[0] if rest else None
        if kind == "Set":
            return [value(v, depth + 1) for v in rest]
        if kind in ("Map", "null"):
            pairs = zip(rest[::2], rest[1::2], strict=False)
            if kind == "null":  # an object without prototype: keys are plain strings
                return {str(k): value(v, depth + 1) for k, v in pairs}
            return {str(value(k, depth + 1)): value(v, depth + 1) for k, v in pairs}
        if kind in _WRAPPERS or len(rest) == 1:
            return value(rest[0], depth + 1) if rest else None
        return None

    return value(0, 0)


# ---------------------------------------------------------------------- searching


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _objects(data: Any, path: str = "$") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every object in ``data`` with its JSON path, breadth first, up to MAX_NODES."""
    queue: list[tuple[str, Any, int]] = [(path, data, 0)]
    seen = 0
    while queue and seen < MAX_NODES:
        where, node, depth = queue.pop(0)
        seen += 1
        if depth > MAX_DEPTH:
            continue
        if isinstance(node, Mapping):
            yield where, node
            for key, child in node.items():
                if isinstance(child, Mapping | list):
                    queue.append((f"{where}.{key}", child, depth + 1))
        elif isinstance(node, list):
            for i, child in enumerate(node[:200]):
                if isinstance(child, Mapping | list):
                    queue.append((f"{where}[{i}]", child, depth + 1))


def best_objects(
    found: Sequence[State], names: Iterable[str | Sequence[str]], *, limit: int = 3
) -> list[Found]:
    """The objects, anywhere in the page's states, whose keys answer the most of ``names``
    (each name with its synonyms, compared without case or punctuation); best first, at
    least one name answered by a value that is not empty."""
    wanted = [{_norm(n) for n in group} for group in _groups(names)]
    if not wanted:
        return []
    scored: list[Found] = []
    for state in found:
        for path, obj in _objects(state.data):
            keys = {_norm(k) for k, v in obj.items() if v not in (None, "", [], {})}
            matched = sum(1 for group in wanted if group & keys)
            if matched:
                scored.append(Found(f"{state.source}{path[1:]}", obj, matched))
    scored.sort(key=lambda f: (-f.matched, len(f.source)))
    return scored[:limit]


def _groups(names: Iterable[str | Sequence[str]]) -> list[set[str]]:
    groups: list[set[str]] = []
    for name in names:
        if isinstance(name, str):
            groups.append({name})
        else:
            groups.append(set(name))
    return groups


# ---------------------------------------------------------------------- app shells


def visible_words(tree: LexborHTMLParser) -> int:
    body = tree.body
    if body is None:
        return 0
    copy = LexborHTMLParser(body.html or "")
    for node in copy.css("script, style, noscript, template, svg"):
        node.decompose()
    root = copy.body
    return len((root.text(deep=True) if root is not None else "").split())


def app_shell(tree: LexborHTMLParser) -> str | None:
    """Why the page looks built by JavaScript in the browser (None: it does not): little
    visible text beside an empty mount point, or a notice asking for JavaScript."""
    words = visible_words(tree)
    if words > SHELL_MAX_WORDS:
        return None
    for selector in APP_MOUNTS:
        node = tree.css_first(selector)
        if node is not None and len((node.text(deep=True) or "").split()) <= SHELL_MAX_WORDS:
            return f"an app shell: {words} visible words and an empty {selector} mount point"
    for node in tree.css("noscript"):
        if NOSCRIPT_CUES.search(node.text(deep=True) or ""):
            return f"an app shell: {words} visible words and a notice asking for JavaScript"
    return None

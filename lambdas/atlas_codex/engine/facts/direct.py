"""Direct extraction, no model: CSS selector schemas, structured data, and tables.

Nothing is invented: a field whose selector matches nothing, or that no structured data
names, is reported missing and left ``None``. Each value's evidence (the selector, or the
structured-data path it came from) is returned beside the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from atlas_codex.engine.reading import hydration
from atlas_codex.engine.reading.html import WS, Metadata, words
from atlas_codex.extraction.request import SelectorField, SelectorSchema
from atlas_codex.extraction.result import Evidence, ReadView

_NUMBER: Final = re.compile(r"[-+]?\d[\d\s.,']*")
TRUE_WORDS: Final = frozenset(
    {"true", "yes", "y", "1", "on", "in stock", "instock", "available", "ja", "oui", "si"}
)
FALSE_WORDS: Final = frozenset(
    {"false", "no", "n", "0", "off", "out of stock", "outofstock", "unavailable", "nein", "non"}
)


class SelectorError(ValueError):
    """A selector the parser cannot use; the message names the field."""


@dataclass
class Extraction:
    data: Any
    evidence: dict[str, Evidence] = field(default_factory=dict)
    """Field path -> where the value came from (a CSS selector or a structured-data path)."""
    missing: list[str] = field(default_factory=list)
    """Field paths that matched nothing (kept distinct from a value that is null)."""
    unverified: list[str] = field(default_factory=list)
    """Field paths whose quoted evidence is not in the page (model extraction)."""
    problems: list[str] = field(default_factory=list)
    """What the quality gate found wrong with the output (empty when nothing)."""
    view: ReadView | None = None
    """What a model read of the page (model strategies only)."""


# ---------------------------------------------------------------------- coercion


def parse_number(text: str) -> float | None:
    """A number from text such as ``"1,299.50"``, ``"1.299,50 EUR"``, ``"$ 19"``."""
    match = _NUMBER.search(text)
    if not match:
        return None
    raw = match[0].strip().replace(" ", "").replace("'", "")
    if "," in raw and "." in raw:
        decimal = "," if raw.rfind(",") > raw.rfind(".") else "."
        raw = raw.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in raw:
        head, _, tail = raw.rpartition(",")
        raw = (
            raw.replace(",", "")
            if len(tail) == 3 and head.replace(",", "").lstrip("+-").isdigit()
            else raw.replace(",", ".")
        )
    elif raw.count(".") > 1:
        raw = raw.replace(".", "")
    try:
        return float(raw)
    except ValueError:
        return None


def coerce(value: str | None, kind: str, base_url: str = "") -> Any:
    if value is None:
        return None
    text = WS.sub(" ", value).strip()
    if kind == "string":
        return text
    if kind == "url":
        return urljoin(base_url, text) if text else None
    if kind == "html":
        return value
    if kind == "number":
        return parse_number(text)
    if kind == "integer":
        number = parse_number(text)
        return (
            int(number)
            if number is not None and number == int(number)
            else (round(number) if number is not None else None)
        )
    if kind == "boolean":
        lowered = text.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        return None
    return text


# ---------------------------------------------------------------------- selector schemas


def _select(scope: LexborNode, selector: str, path: str) -> list[LexborNode]:
    try:
        return list(scope.css(selector))
    except Exception as exc:  # lexbor raises a plain error for a selector it cannot parse
        raise SelectorError(f"{path}: the selector {selector!r} is not valid CSS ({exc})") from None


def _value(node: LexborNode, spec: SelectorField, base_url: str) -> Any:
    if spec.type == "html":
        return node.html
    raw = node.attributes.get(spec.attribute) if spec.attribute else node.text(deep=True)
    kind = "url" if spec.attribute in ("href", "src") and spec.type == "string" else spec.type
    return coerce(raw, kind, base_url)


def _fields(
    scope: LexborNode,
    fields: Mapping[str, SelectorField],
    base_url: str,
    prefix: str,
    out: Extraction,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, spec in fields.items():
        path = f"{prefix}{name}"
        nodes = _select(scope, spec.selector, path)
        if not nodes:
            result[name] = [] if spec.many else None
            out.missing.append(path)
            continue
        out.evidence[path] = Evidence(kind="selector", source=spec.selector)
        if spec.fields is not None:
            items = [
                _fields(n, spec.fields, base_url, f"{path}[{i}].", out)
                for i, n in enumerate(nodes if spec.many else nodes[:1])
            ]
            result[name] = items if spec.many else items[0]
        elif spec.many:
            result[name] = [v for v in (_value(n, spec, base_url) for n in nodes) if v is not None]
        else:
            result[name] = _value(nodes[0], spec, base_url)
    return result


def extract_selectors(tree: LexborHTMLParser, schema: SelectorSchema, base_url: str) -> Extraction:
    """A dict of fields, or with ``base_selector`` a list of one dict per matching item."""
    out = Extraction(data=None)
    root = tree.root
    if root is None:
        out.data = [] if schema.base_selector else {}
        return out
    if schema.base_selector:
        items = _select(root, schema.base_selector, "base_selector")
        out.data = [
            _fields(node, schema.fields, base_url, f"[{i}].", out) for i, node in enumerate(items)
        ]
        if not items:
            out.missing.append("base_selector")
    else:
        out.data = _fields(root, schema.fields, base_url, "", out)
    return out


# ---------------------------------------------------------------------- structured data

# How a requested field may be named in schema.org / OpenGraph data.
SYNONYMS: Final[Mapping[str, tuple[str, ...]]] = {
    "title": ("name", "headline", "og:title"),
    "name": ("title", "headline", "og:title"),
    "headline": ("name", "title", "og:title"),
    "description": ("og:description", "abstract"),
    "price": ("offers.price", "offers.lowPrice", "product:price:amount", "og:price:amount"),
    "currency": ("offers.priceCurrency", "priceCurrency", "product:price:currency"),
    "image": ("og:image", "thumbnailUrl"),
    "url": ("og:url", "@id"),
    "author": ("author.name", "creator.name", "article:author"),
    "date": ("datePublished", "dateCreated", "article:published_time"),
    "published": ("datePublished", "article:published_time"),
    "brand": ("brand.name",),
    "rating": ("aggregateRating.ratingValue",),
    "availability": ("offers.availability",),
    "sku": ("productID", "mpn"),
}


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _lookup(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(obj, list):
            obj = obj[0] if obj else None
        if not isinstance(obj, Mapping):
            return None
        match = next((v for k, v in obj.items() if _norm(k) == _norm(part)), None)
        obj = match
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    return obj


def _sources(meta: Metadata) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for i, item in enumerate(meta.json_ld):
        yield f"json-ld[{i}]", item
    for i, item in enumerate(meta.microdata):
        yield f"microdata[{i}]", item
    if meta.opengraph:
        yield "opengraph", meta.opengraph
    plain = {
        k: v
        for k, v in (
            ("title", meta.title),
            ("description", meta.description),
            ("url", meta.canonical_url),
        )
        if v
    }
    if plain:
        yield "meta", plain


def _typed(value: Any, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if isinstance(value, Mapping) and "string" in kinds:
        value = value.get("name") or value.get("@id") or value.get("url")
    if "array" in kinds:
        items = value if isinstance(value, list) else [value]
        sub = schema.get("items", {}) if isinstance(schema.get("items"), Mapping) else {}
        return [_typed(v, sub) for v in items if v is not None]
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if "number" in kinds or "integer" in kinds:
        number = (
            value
            if isinstance(value, int | float) and not isinstance(value, bool)
            else parse_number(str(value))
        )
        if number is None:
            return None
        return int(number) if "integer" in kinds and "number" not in kinds else float(number)
    if "boolean" in kinds:
        return value if isinstance(value, bool) else coerce(str(value), "boolean")
    if "object" in kinds:
        return value if isinstance(value, Mapping) else None
    if isinstance(value, str | int | float):
        text = str(value)
        return (
            text.rsplit("/", 1)[-1]
            if text.startswith("http://schema.org/") or text.startswith("https://schema.org/")
            else text
        )
    return None


def extract_structured(meta: Metadata, json_schema: Mapping[str, Any]) -> Extraction:
    """Map JSON-LD, microdata, the page's shipped state, OpenGraph and meta tags onto the
    schema's properties by name."""
    out = Extraction(data={})
    properties = json_schema.get("properties", {})
    if not isinstance(properties, Mapping):
        return out
    sources = list(_sources(meta))
    if meta.states:
        # What a JavaScript-built page ships for its first screen: the objects in it whose
        # keys answer the most of the schema's properties.
        wanted = [(n, *SYNONYMS.get(_norm(n), ())) for n in properties]
        found_in_state = [
            (f"state {f.source}", f.value) for f in hydration.best_objects(meta.states, wanted)
        ]
        # After the page's own structured data and OpenGraph, before its bare meta tags.
        ranked = sum(1 for label, _ in sources if label != "meta")
        sources[ranked:ranked] = found_in_state
    for name, prop_schema in properties.items():
        found = None
        for candidate in (name, *SYNONYMS.get(_norm(name), ())):
            for label, source in sources:
                raw = (
                    source.get(candidate)
                    if candidate.startswith(("og:", "article:", "product:"))
                    else _lookup(source, candidate)
                )
                value = _typed(raw, prop_schema if isinstance(prop_schema, Mapping) else {})
                if value not in (None, [], ""):
                    found = value
                    out.evidence[name] = Evidence(
                        kind="structured-data", source=f"{label}.{candidate}"
                    )
                    break
            if found is not None:
                break
        out.data[name] = found
        if found is None:
            out.missing.append(name)
    return out


def check_required(data: Any, json_schema: Mapping[str, Any]) -> list[str]:
    """Required properties of the schema that the data lacks (missing or null)."""
    required = json_schema.get("required", [])
    if not isinstance(data, Mapping) or not isinstance(required, list):
        return []
    return [r for r in required if data.get(r) is None]


# ---------------------------------------------------------------------- tables


def extract_tables(tree: LexborHTMLParser) -> list[list[dict[str, str]]]:
    """Each table as a list of row objects keyed by its header cells."""
    tables: list[list[dict[str, str]]] = []
    for table in tree.css("table"):
        rows = [
            [words(c) for c in tr.iter(include_text=False) if c.tag in ("th", "td")]
            for tr in table.css("tr")
        ]
        rows = [r for r in rows if any(r)]
        if len(rows) < 2:
            continue
        header = [h or f"column_{i + 1}" for i, h in enumerate(rows[0])]
        tables.append(
            [
                {header[i] if i < len(header) else f"column_{i + 1}": v for i, v in enumerate(r)}
                for r in rows[1:]
            ]
        )
    return tables

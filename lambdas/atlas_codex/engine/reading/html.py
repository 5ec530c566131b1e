"""Parsing HTML (lexbor, through selectolax), absolute URLs, page metadata and links:
what the converter, the main-content selection, direct extraction and the crawler share."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from atlas_codex.engine.reading import hydration
from atlas_codex.engine.reading.hydration import State

DROP_ALWAYS: Final = "script, style, noscript, template, svg, canvas, iframe, object, embed, head"
WS: Final = re.compile(r"\s+")
HEADINGS: Final = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCKS: Final = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "nav",
        "figure",
        "figcaption",
        "address",
        "details",
        "summary",
        "dl",
        "dt",
        "dd",
        "center",
        "body",
        "html",
        "form",
        "fieldset",
    }
)
MAX_DEPTH: Final = 300


@dataclass(frozen=True)
class Link:
    url: str
    text: str
    rel: str = ""


@dataclass
class Metadata:
    title: str | None = None
    description: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    opengraph: dict[str, str] = field(default_factory=dict)
    json_ld: list[Any] = field(default_factory=list)
    microdata: list[dict[str, Any]] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    """The data a JavaScript-built page ships for its first screen (``hydration``)."""


def parse(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def words(node: LexborNode) -> str:
    """``node``'s text with its white space collapsed, as a reader sees it."""
    return WS.sub(" ", node.text(deep=True) or "").strip()


def drop_unreadable(tree: LexborHTMLParser) -> None:
    """Scripts, styles, embedded media frames and the head: nothing a reader sees as text."""
    for node in tree.css(DROP_ALWAYS):
        if node.tag != "head" or node.parent is not None:
            node.decompose()


@functools.lru_cache(maxsize=64)
def _origin(base: str) -> tuple[str, str]:
    """The scheme and the scheme://host of a base URL (cached: a page has one base)."""
    parts = urlsplit(base)
    return parts.scheme, f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def absolute_url(base: str, href: str | None) -> str | None:
    """``href`` made absolute against ``base``; the common forms without urljoin's cost."""
    if not href:
        return None
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "tel:", "data:", "#")):
        return href if href.startswith(("mailto:", "tel:")) else None
    if href.startswith(("http://", "https://")):
        return href
    scheme, origin = _origin(base)
    if href.startswith("//") and scheme:
        return f"{scheme}:{href}"
    if href.startswith("/") and origin and "/.." not in href and "/./" not in href:
        return origin + href
    return urljoin(base, href)


# ---------------------------------------------------------------------- metadata and links


def _jsonld_blocks(tree: LexborHTMLParser) -> list[Any]:
    found: list[Any] = []
    for script in tree.css('script[type="application/ld+json"]'):
        raw = (script.text(deep=True) or "").strip()
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("@graph"), list):
                found.extend(x for x in item["@graph"] if isinstance(x, dict))
            elif isinstance(item, dict):
                found.append(item)
    return found


def _microdata_item(node: LexborNode, base: str, depth: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = {}
    itemtype = node.attributes.get("itemtype")
    if itemtype:
        item["@type"] = itemtype.rstrip("/").rsplit("/", 1)[-1]
    for prop in node.css("[itemprop]"):
        # only properties whose nearest item scope is this node
        owner = prop.parent
        while owner is not None and owner is not node and "itemscope" not in owner.attributes:
            owner = owner.parent
        if owner is None or (owner is not node and owner.mem_id != node.mem_id):
            continue
        name = prop.attributes.get("itemprop") or ""
        if "itemscope" in prop.attributes and depth < 5:
            value: Any = _microdata_item(prop, base, depth + 1)
        elif prop.tag == "meta":
            value = prop.attributes.get("content")
        elif prop.tag in ("a", "link"):
            value = absolute_url(base, prop.attributes.get("href"))
        elif prop.tag in ("img", "source", "video", "audio"):
            value = absolute_url(base, prop.attributes.get("src"))
        elif prop.tag == "time":
            value = prop.attributes.get("datetime") or (prop.text(deep=True) or "").strip()
        else:
            value = prop.attributes.get("content") or words(prop)
        for key in name.split():
            if key in item:
                existing = item[key]
                item[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                item[key] = value
    return item


def metadata(tree: LexborHTMLParser, base_url: str = "") -> Metadata:
    meta = Metadata()
    title = tree.css_first("title")
    meta.title = words(title) or None if title else None
    html_node = tree.css_first("html")
    if html_node is not None:
        meta.language = (html_node.attributes.get("lang") or "").strip() or None
    for node in tree.css("meta"):
        attrs = node.attributes
        key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
        content = (attrs.get("content") or "").strip()
        if not key or not content:
            continue
        if key.startswith(("og:", "article:", "product:")):
            meta.opengraph.setdefault(key, content)
        elif key == "description" and meta.description is None:
            meta.description = content
    canonical = tree.css_first('link[rel="canonical"]')
    if canonical is not None:
        meta.canonical_url = absolute_url(base_url, canonical.attributes.get("href"))
    meta.json_ld = _jsonld_blocks(tree)
    meta.states = hydration.states(tree)
    for node in tree.css("[itemscope]"):
        if "itemprop" in node.attributes:
            continue  # nested items belong to their parent
        item = _microdata_item(node, base_url)
        if item:
            meta.microdata.append(item)
    return meta


def links(tree: LexborHTMLParser, base_url: str) -> list[Link]:
    """Every http(s) link of the page, absolute, without fragments, in document order."""
    seen: set[str] = set()
    out: list[Link] = []
    for node in tree.css("a[href], link[rel~=next][href]"):
        href = absolute_url(base_url, node.attributes.get("href"))
        if not href or urlsplit(href).scheme not in ("http", "https"):
            continue
        href = href.split("#", 1)[0]
        if href in seen:
            continue
        seen.add(href)
        out.append(
            Link(
                url=href,
                text=words(node),
                rel=node.attributes.get("rel") or "",
            )
        )
    return out

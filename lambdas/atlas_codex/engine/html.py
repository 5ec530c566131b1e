"""HTML to markdown in one tree walk on lexbor (selectolax), plus page metadata and links.

``main_content=True`` first removes what is not the page's content — navigation, headers,
footers, asides, cookie banners, share bars, comments, forms — and keeps the ``<main>`` or
the ``<article>`` with the most text when there is one: fewer tokens for a model to read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

DROP_ALWAYS: Final = "script, style, noscript, template, svg, canvas, iframe, object, embed, head"
DROP_BOILERPLATE: Final = "nav, header, footer, aside, form, dialog, button, select, input, textarea, [role=navigation], [role=banner], [role=contentinfo], [role=complementary], [aria-hidden=true], [hidden]"
_BOILERPLATE_RE: Final = re.compile(
    r"(^|[-_\s])(cookie|consent|gdpr|banner|share|sharing|social|comments?|related|sidebar|menu|navbar|"
    r"breadcrumbs?|newsletter|subscribe|advert|ads?|promo|popup|modal|footer|masthead|skip-link|pagination|"
    r"tags?|author-bio|signup|login)($|[-_\s])",
    re.I,
)
_WS: Final = re.compile(r"\s+")
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


def parse(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


# ---------------------------------------------------------------------- markdown


class _Writer:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.out: list[str] = []

    def block(self, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            self.out.append(text)

    def result(self) -> str:
        return "\n\n".join(self.out).strip() + ("\n" if self.out else "")


def _abs(base: str, href: str | None) -> str | None:
    if not href:
        return None
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "tel:", "data:", "#")):
        return href if href.startswith(("mailto:", "tel:")) else None
    return urljoin(base, href)


def _inline(node: LexborNode, base: str, depth: int = 0) -> str:
    """The inline markdown of ``node``'s children (text, links, emphasis, code, images)."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            parts.append(_WS.sub(" ", child.text_content or ""))
            continue
        if tag in ("-comment", None) or depth > MAX_DEPTH:
            continue
        if tag == "br":
            parts.append("  \n")
        elif tag in ("strong", "b"):
            inner = _inline(child, base, depth + 1).strip()
            parts.append(f"**{inner}**" if inner else "")
        elif tag in ("em", "i"):
            inner = _inline(child, base, depth + 1).strip()
            parts.append(f"*{inner}*" if inner else "")
        elif tag == "code":
            inner = (child.text(deep=True) or "").strip()
            parts.append(f"`{inner}`" if inner else "")
        elif tag == "a":
            inner = _inline(child, base, depth + 1).strip()
            href = _abs(base, child.attributes.get("href"))
            parts.append(f"[{inner}]({href})" if href and inner else inner)
        elif tag == "img":
            alt = (child.attributes.get("alt") or "").strip()
            src = _abs(base, child.attributes.get("src"))
            parts.append(f"![{alt}]({src})" if src else alt)
        else:
            parts.append(_inline(child, base, depth + 1))
    return "".join(parts)


def _list(node: LexborNode, w: _Writer, indent: int, depth: int) -> str:
    ordered = node.tag == "ol"
    lines: list[str] = []
    n = 0
    for item in node.iter(include_text=False):
        if item.tag != "li":
            continue
        n += 1
        marker = f"{n}." if ordered else "-"
        text_parts: list[str] = []
        nested: list[str] = []
        for child in item.iter(include_text=True):
            if child.tag in ("ul", "ol"):
                nested.append(_list(child, w, indent + 2, depth + 1))
            elif child.tag == "-text":
                text_parts.append(_WS.sub(" ", child.text_content or ""))
            elif child.tag in BLOCKS or child.tag == "p":
                text_parts.append(" " + _inline(child, w.base, depth + 1) + " ")
            else:
                text_parts.append(_inline_single(child, w.base))
        line = _WS.sub(" ", "".join(text_parts)).strip()
        lines.append(" " * indent + f"{marker} {line}".rstrip())
        lines.extend(x for x in nested if x)
    return "\n".join(lines)


def _cell(node: LexborNode, base: str) -> str:
    return _WS.sub(" ", _inline(node, base)).strip().replace("|", "\\|")


def _table(node: LexborNode, base: str) -> str:
    rows: list[list[str]] = []
    for tr in node.css("tr"):
        cells = [_cell(c, base) for c in tr.iter(include_text=False) if c.tag in ("th", "td")]
        if cells:
            rows.append(cells)
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _walk(node: LexborNode, w: _Writer, depth: int = 0) -> None:
    buffer: list[str] = []

    def flush() -> None:
        text = _WS.sub(" ", "".join(buffer)).strip() if buffer else ""
        if text:
            w.block(text)
        buffer.clear()

    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            buffer.append(child.text_content or "")
            continue
        if tag in ("-comment", None):
            continue
        if depth > MAX_DEPTH:
            buffer.append(child.text(deep=True) or "")
            continue
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            flush()
            text = _WS.sub(" ", _inline(child, w.base)).strip()
            if text:
                w.block("#" * int(tag[1]) + " " + text)
        elif tag == "p":
            flush()
            w.block(_WS.sub(" ", _inline(child, w.base)).strip())
        elif tag in ("ul", "ol"):
            flush()
            w.block(_list(child, w, 0, depth + 1))
        elif tag == "pre":
            flush()
            code = child.text(deep=True) or ""
            w.block("```\n" + code.strip("\n") + "\n```")
        elif tag == "blockquote":
            flush()
            inner = _Writer(w.base)
            _walk(child, inner, depth + 1)
            w.block(
                "\n".join(
                    "> " + line if line else ">" for line in inner.result().strip().splitlines()
                )
            )
        elif tag == "table":
            flush()
            w.block(_table(child, w.base))
        elif tag == "hr":
            flush()
            w.block("---")
        elif tag in BLOCKS or tag in ("li", "tbody", "thead", "tr"):
            flush()
            _walk(child, w, depth + 1)
        else:
            wrapper_text = _inline_single(child, w.base)
            buffer.append(wrapper_text)
    flush()


def _inline_single(node: LexborNode, base: str) -> str:
    """Inline markdown of one element (itself included, not only its children)."""
    tag = node.tag
    inner = _inline(node, base)
    if tag in ("strong", "b") and inner.strip():
        return f"**{inner.strip()}**"
    if tag in ("em", "i") and inner.strip():
        return f"*{inner.strip()}*"
    if tag == "code":
        text = (node.text(deep=True) or "").strip()
        return f"`{text}`" if text else ""
    if tag == "a":
        href = _abs(base, node.attributes.get("href"))
        return f"[{inner.strip()}]({href})" if href and inner.strip() else inner
    if tag == "img":
        alt = (node.attributes.get("alt") or "").strip()
        src = _abs(base, node.attributes.get("src"))
        return f"![{alt}]({src})" if src else alt
    if tag == "br":
        return "  \n"
    return inner


def _strip_boilerplate(tree: LexborHTMLParser) -> None:
    for node in tree.css(DROP_BOILERPLATE):
        node.decompose()
    for node in tree.css("[class], [id]"):
        tokens = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if node.tag not in ("body", "html", "main", "article") and _BOILERPLATE_RE.search(tokens):
            node.decompose()


def _main_node(tree: LexborHTMLParser) -> LexborNode | None:
    candidates = tree.css("main, article, [role=main]")
    if not candidates:
        return tree.body
    return max(candidates, key=lambda n: len((n.text(deep=True) or "").strip()))


def to_markdown(
    html: str | LexborHTMLParser, base_url: str = "", *, main_content: bool = False
) -> str:
    tree = parse(html) if isinstance(html, str) else html.clone()
    for node in tree.css(DROP_ALWAYS):
        if node.tag != "head" or node.parent is not None:
            node.decompose()
    root: LexborNode | None
    if main_content:
        _strip_boilerplate(tree)
        root = _main_node(tree)
    else:
        root = tree.body
    if root is None:
        return ""
    writer = _Writer(base_url)
    _walk(root, writer)
    return writer.result()


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
            value = _abs(base, prop.attributes.get("href"))
        elif prop.tag in ("img", "source", "video", "audio"):
            value = _abs(base, prop.attributes.get("src"))
        elif prop.tag == "time":
            value = prop.attributes.get("datetime") or (prop.text(deep=True) or "").strip()
        else:
            value = (
                prop.attributes.get("content") or _WS.sub(" ", prop.text(deep=True) or "").strip()
            )
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
    meta.title = _WS.sub(" ", title.text(deep=True) or "").strip() or None if title else None
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
        meta.canonical_url = _abs(base_url, canonical.attributes.get("href"))
    meta.json_ld = _jsonld_blocks(tree)
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
        href = _abs(base_url, node.attributes.get("href"))
        if not href or urlsplit(href).scheme not in ("http", "https"):
            continue
        href = href.split("#", 1)[0]
        if href in seen:
            continue
        seen.add(href)
        out.append(
            Link(
                url=href,
                text=_WS.sub(" ", node.text(deep=True) or "").strip(),
                rel=node.attributes.get("rel") or "",
            )
        )
    return out

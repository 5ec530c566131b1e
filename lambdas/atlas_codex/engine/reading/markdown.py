"""HTML to markdown in one tree walk on lexbor (selectolax).

``main_content=True`` writes only what ``main_content.select`` keeps of the page (its
content, without navigation, headers, footers, cookie banners, comments and other
boilerplate), and writes it lean: fewer tokens for a model to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from atlas_codex.engine.reading import main_content as content
from atlas_codex.engine.reading.html import (
    BLOCKS,
    HEADINGS,
    MAX_DEPTH,
    WS,
    absolute_url,
    drop_unreadable,
    parse,
)


class _Writer:
    def __init__(self, base_url: str, *, lean: bool = False, link_urls: bool = True) -> None:
        self.base = base_url
        self.lean = lean
        """Lean: no emphasis, and a link inside running prose is its text."""
        self.link_urls = link_urls
        """False (main content): every link is its text, as trafilatura writes it too. The
        URLs cost tokens a reader of the content seldom needs, and on the second dev
        collection they were most of the difference in F1 (a URL's words are noise)."""
        self.out: list[str] = []
        self.plain = _Style(base_url)
        """How inline content is written outside main content (and in table cells)."""

    def style(self, prose: int = 0, *, self_links: bool = False) -> _Style:
        """How a block's inline content is written: ``prose`` is the block's length."""
        if not self.lean:
            return self.plain
        return _Style(self.base, True, prose, self_links, self.link_urls)

    def block(self, text: str) -> None:
        text = text.strip("\n")
        if text.strip():
            self.out.append(text)

    def result(self) -> str:
        return "\n\n".join(self.out).strip() + ("\n" if self.out else "")


PROSE_MIN_CHARS: Final = 120
"""Shorter blocks are cards and list entries: their links keep their URLs."""
PROSE_LINK_SHARE: Final = 0.6
"""In main-content mode, a link whose text is less than this share of its paragraph's is
part of the prose: its text is kept, its URL (tokens a model rarely needs) is not."""


@dataclass(frozen=True)
class _Style:
    """How inline content is written: against ``base``; ``lean`` (main content): no emphasis
    markers; ``prose``: the length of the block being written (its links in running prose
    lose their URLs); ``self_links``: a link to the page itself is its text (a headline's
    permalink)."""

    base: str
    lean: bool = False
    prose: int = 0
    self_links: bool = False
    link_urls: bool = True

    def in_prose(self, link_text: str) -> bool:
        """A link that is a few words of a longer paragraph (not a card's or a list's link)."""
        return (
            self.lean
            and self.prose >= PROSE_MIN_CHARS
            and len(link_text.strip()) < self.prose * PROSE_LINK_SHARE
        )


_MARKUP: Final = frozenset({"br", "code", "img", "strong", "b", "em", "i", "a"})
"""Inline elements written as more than their content."""


def _inline(node: LexborNode, style: _Style, depth: int = 0) -> str:
    """The inline markdown of ``node``'s children (text, links, emphasis, code, images)."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            parts.append(WS.sub(" ", child.text_content or ""))
        elif tag in _MARKUP:
            if depth <= MAX_DEPTH:
                parts.append(_element(child, style, depth))
        elif tag not in ("-comment", None) and depth <= MAX_DEPTH:
            parts.append(_inline(child, style, depth + 1))  # a <span>, <font>...: its content
    return "".join(parts)


def _element(node: LexborNode, style: _Style, depth: int = 0) -> str:
    """The inline markdown of one element, itself included."""
    tag = node.tag
    if tag == "br":
        return "  \n"
    if tag == "code":
        code = (node.text(deep=True) or "").strip()
        return f"`{code}`" if code else ""
    if tag == "img":
        alt = (node.attributes.get("alt") or "").strip()
        src = absolute_url(style.base, node.attributes.get("src"))
        return f"![{alt}]({src})" if src else alt
    inner = _inline(node, style, depth + 1)
    if tag in ("strong", "b"):
        return inner if style.lean else _around(inner, "**", "**")
    if tag in ("em", "i"):
        return inner if style.lean else _around(inner, "*", "*")
    if tag == "a":
        href = absolute_url(style.base, node.attributes.get("href"))
        if (
            not href
            or not style.link_urls
            or style.in_prose(inner)
            or (style.self_links and href == style.base)
        ):
            return inner
        return _around(inner, "[", f"]({href})")
    return inner


def _around(inner: str, before: str, after: str) -> str:
    """``inner``'s text between ``before`` and ``after``, its outer white space left outside
    (``a<b> bold </b>word`` is ``a **bold** word``); white space alone stays as it is."""
    text = inner.strip()
    if not text:
        return inner
    start = inner[: len(inner) - len(inner.lstrip())]
    end = inner[len(inner.rstrip()) :]
    return f"{start}{before}{text}{after}{end}"


def _list(node: LexborNode, w: _Writer, indent: int, depth: int) -> str:
    ordered = node.tag == "ol"
    lines: list[str] = []
    n = 0
    for item in node.iter(include_text=False):
        if item.tag != "li":
            continue
        text_parts: list[str] = []
        nested: list[str] = []
        prose = len((item.text(deep=True) or "").strip()) if w.lean else 0
        style = w.style(prose)
        for child in item.iter(include_text=True):
            if child.tag in ("ul", "ol"):
                nested.append(_list(child, w, indent + 2, depth + 1))
            elif child.tag == "-text":
                text_parts.append(WS.sub(" ", child.text_content or ""))
            elif child.tag in BLOCKS or child.tag == "p":
                inline = _inline(child, style, depth + 1)
                text_parts.append(" " + inline + " ")
            else:
                text_parts.append(_element(child, style, depth + 1))
        line = WS.sub(" ", "".join(text_parts)).strip()
        nested = [x for x in nested if x]
        if not line and not nested:
            continue  # an empty entry (an icon, a spacer) is not written, nor counted
        n += 1
        marker = f"{n}." if ordered else "-"
        lines.append(" " * indent + f"{marker} {line}".rstrip())
        lines.extend(nested)
    return "\n".join(lines)


def _cell(node: LexborNode, style: _Style) -> str:
    return WS.sub(" ", _inline(node, style)).strip().replace("|", "\\|")


def _table(node: LexborNode, style: _Style) -> str:
    rows: list[list[str]] = []
    for tr in node.css("tr"):
        cells = [_cell(c, style) for c in tr.iter(include_text=False) if c.tag in ("th", "td")]
        if cells:
            rows.append(cells)
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


CALENDAR_CELLS: Final = 28
"""A table of at least this many cells, nearly all of them days of a month, is a date picker."""


def _calendar(table: LexborNode) -> bool:
    cells = [text for cell in table.css("td, th") if (text := (cell.text(deep=True) or "").strip())]
    days = [int(text) for text in cells if text.isdigit() and 1 <= int(text) <= 31]
    # Every day of a month is there (a league table's small numbers are not all of them).
    return (
        len(cells) >= CALENDAR_CELLS
        and len(days) >= len(cells) * 0.8
        and set(range(1, 29)) <= set(days)
    )


def _walk(node: LexborNode, w: _Writer, depth: int = 0) -> None:
    # Bare text and inline elements between blocks, written as one paragraph at the next block.
    buffer: list[str | LexborNode] = []

    def flush() -> None:
        if not buffer:
            return
        texts = [p for p in buffer if isinstance(p, str)]
        if len(texts) == len(buffer):  # white space and text only: the common case
            text = WS.sub(" ", "".join(texts)).strip()
        else:
            prose = (
                sum(len(p if isinstance(p, str) else p.text(deep=True) or "") for p in buffer)
                if w.lean
                else 0
            )
            style = w.style(prose)
            text = WS.sub(
                " ",
                "".join(p if isinstance(p, str) else _element(p, style) for p in buffer),
            ).strip()
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
        if tag in HEADINGS:
            flush()
            style = w.style(self_links=True)
            text = WS.sub(" ", _inline(child, style)).strip()
            if text:
                w.block("#" * int(tag[1]) + " " + text)
        elif tag == "p":
            flush()
            prose = len((child.text(deep=True) or "").strip()) if w.lean else 0
            w.block(WS.sub(" ", _inline(child, w.style(prose))).strip())
        elif tag in ("ul", "ol"):
            flush()
            w.block(_list(child, w, 0, depth + 1))
        elif tag == "pre":
            flush()
            code = child.text(deep=True) or ""
            w.block("```\n" + code.strip("\n") + "\n```")
        elif tag == "blockquote":
            flush()
            inner = _Writer(w.base, lean=w.lean)
            _walk(child, inner, depth + 1)
            w.block(
                "\n".join(
                    "> " + line if line else ">" for line in inner.result().strip().splitlines()
                )
            )
        elif tag == "table":
            flush()
            if w.lean and _calendar(child):
                continue
            if len(child.css("table")) > 1:  # the table itself and one inside it
                # A layout table (tables inside): its cells are blocks of the page, not data.
                _walk(child, w, depth + 1)
            else:
                w.block(_table(child, w.plain))
        elif tag == "hr":
            flush()
            w.block("---")
        elif tag in BLOCKS or tag in ("li", "tbody", "thead", "tfoot", "tr", "td", "th"):
            flush()
            _walk(child, w, depth + 1)
        else:
            buffer.append(child)
    flush()


def copy_tree(tree: LexborHTMLParser) -> LexborHTMLParser:
    """A tree to change without changing the caller's. lexbor cannot clone some documents
    (a legal doctype like ``<!DOCTYPE html SYSTEM "about:legacy-compat">``): those are
    parsed again from their own serialisation."""
    try:
        return tree.clone()
    except SelectolaxError:
        return parse(tree.html or "")


def to_markdown(
    html: str | LexborHTMLParser,
    base_url: str = "",
    *,
    main_content: bool = False,
    link_urls: bool | None = None,
) -> str:
    """``html`` (a string, or a parsed tree, which is left unchanged) as markdown, its links
    made absolute against ``base_url``; with ``main_content``, only the page's content, lean.
    ``link_urls``: write links with their URLs (default: not in main content)."""
    tree = parse(html) if isinstance(html, str) else copy_tree(html)
    urls = not main_content if link_urls is None else link_urls
    writer = _Writer(base_url, lean=main_content, link_urls=urls)
    if main_content:
        chosen = content.select(tree)
        if chosen.title is not None:
            text = WS.sub(" ", _inline(chosen.title, writer.style(self_links=True))).strip()
            if text:
                writer.block("# " + text)
        for root in chosen.roots:
            if root.tag in ("p", "pre", "blockquote", "table", "ul", "ol", "h1", "h2", "h3"):
                # A leaf chosen on its own is written as a block: wrap it in a body.
                holder = LexborHTMLParser(f"<body>{root.html}</body>").body
                if holder is not None:
                    _walk(holder, writer)
            else:
                _walk(root, writer)
        return writer.result()
    drop_unreadable(tree)
    if tree.body is None:
        return ""
    _walk(tree.body, writer)
    return writer.result()


def write_blocks(tree: LexborHTMLParser, base_url: str) -> list[str]:
    """The body of ``tree`` (already cut as the caller needs) as lean markdown blocks, in
    document order: what the model view chooses from."""
    if tree.body is None:
        return []
    writer = _Writer(base_url, lean=True)
    _walk(tree.body, writer)
    return writer.out

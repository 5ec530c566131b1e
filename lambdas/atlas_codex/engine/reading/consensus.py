"""Main content by two readers: this engine's rules and trafilatura's, reconciled.

The rules of :mod:`atlas_codex.engine.reading.main_content` were written on one collection of pages
and scored below trafilatura on every other (docs/ENGINE.md). Two independent readers
disagree where one of them is wrong, so the page is read by both:

- where they **agree** (each holds at least :data:`AGREEMENT` of the other's 4-word
  shingles), this engine's markdown serves (its structure: headings, lists, tables);
- where they **disagree**, one kept boilerplate or one missed content: trafilatura's text
  serves, and when it is much shorter than ours (under :data:`MISSED` of our shingles: it
  probably missed content, as its fast mode does on short extractions) the blocks of ours
  it lacks are added after it.

trafilatura runs in its fast mode (no fallback extractors), favouring precision (no rescue
passes over the whole page when its reading is short: ours is that rescue here) and without
readers' comments. That keeps the pair faster than trafilatura alone in its default mode,
and measured better as a second opinion than its default or its fast mode alone
(docs/PERFORMANCE.md). It is imported on first use.

**Threads.** trafilatura parses with one lxml parser made at its import, shared by every
thread; every tree a parser makes shares that parser's libxml2 dictionary of names, which is
not locked. A job renaming elements of its tree (trafilatura's cleaning) while another
thread parses a page inserts into one dictionary from two threads at once: the heap was
corrupted (``free(): invalid pointer``) in about one stress run in five, killing the
process and every job in it. So each thread parses with a parser of its own
(:func:`_thread_parser`), the same options as trafilatura's, and hands trafilatura the tree:
no tree of one thread shares a dictionary with another's.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Final

from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine.reading.markdown import to_markdown

AGREEMENT: Final = 0.6
"""The share of each reader's 4-word shingles the other must hold for the two to agree.
Measured on both dev collections: from 0.5 to 0.8 both stay above trafilatura alone."""
MISSED: Final = 0.6
"""trafilatura's reading with fewer shingles than this share of ours probably missed content."""
OWN_BLOCK_NEW: Final = 0.5
"""A block of ours is added to trafilatura's text when less than this share of its
shingles is there already."""
_WORD: Final = re.compile(r"\w+", re.U)
SHINGLE: Final = 4


def shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[n : n + SHINGLE]) for n in range(len(words) - SHINGLE + 1)}


_PARSERS = threading.local()


def _thread_parser() -> Any:
    """This thread's own lxml parser, with trafilatura's options (see the module's doc).
    (lxml comes with trafilatura, and carries no types.)"""
    parser: Any = getattr(_PARSERS, "parser", None)
    if parser is None:
        from lxml.html import HTMLParser  # type: ignore[import-untyped]

        parser = HTMLParser(
            collect_ids=False,
            default_doctype=False,
            encoding="utf-8",
            remove_comments=True,
            remove_pis=True,
        )
        _PARSERS.parser = parser
    return parser


def _tree(html: str) -> Any:
    """The page as trafilatura would load it, parsed by this thread's parser: the same
    repairs, the bytes fallback (a string declaring its encoding), the same rejection of
    what is not HTML."""
    from lxml.html import fromstring
    from trafilatura.utils import is_dubious_html, repair_faulty_html

    parser = _thread_parser()
    beginning = html[:50].lower()
    dubious = is_dubious_html(beginning)
    html = repair_faulty_html(html, beginning)

    def from_bytes() -> Any:
        try:
            return fromstring(html.encode("utf8", "surrogatepass"), parser=parser)
        except Exception:
            return None

    tree: Any
    tried_bytes = False
    try:
        tree = fromstring(html, parser=parser)
    except ValueError:  # a unicode string with an encoding declaration
        tree, tried_bytes = from_bytes(), True
    except Exception:
        tree = None
    if (tree is None or len(tree) < 1) and not tried_bytes:
        tree = from_bytes()
    if tree is not None and dubious and len(tree) < 2:
        return None
    return tree


def trafilatura_markdown(html: str, url: str) -> str:
    """trafilatura's reading of the page (fast, precise, no comments), as markdown; empty
    when it finds nothing or fails on the page."""
    import trafilatura

    # Its warnings ("discarding data", "empty HTML tree") are about pages, not the service.
    logging.getLogger("trafilatura").setLevel(logging.ERROR + 1)
    tree = _tree(html)
    if tree is None:
        return ""
    try:
        text = trafilatura.extract(
            tree,
            url=url or None,
            output_format="markdown",
            include_comments=False,
            fast=True,
            favor_precision=True,
        )
    except Exception:
        return ""
    return text or ""


def reconcile(ours: str, theirs: str) -> str:
    """One main-content text from the two readings (see the module's docstring)."""
    mine, other = shingles(ours), shingles(theirs)
    if not other:
        return ours
    if not mine:
        return theirs.strip() + "\n"
    shared = len(mine & other)
    if shared / len(mine) >= AGREEMENT and shared / len(other) >= AGREEMENT:
        return ours
    if len(other) >= MISSED * len(mine):
        return theirs.strip() + "\n"
    added = []
    for block in ours.split("\n\n"):
        words = shingles(block)
        if words and len(words & other) / len(words) < OWN_BLOCK_NEW:
            added.append(block.strip("\n"))
    return "\n\n".join([theirs.strip(), *added]).strip() + "\n"


def main_markdown(html: str, url: str = "", tree: LexborHTMLParser | None = None) -> str:
    """The page's main content as markdown, read by both readers (``tree``: the page already
    parsed, left unchanged)."""
    ours = to_markdown(tree if tree is not None else html, url, main_content=True)
    return reconcile(ours, trafilatura_markdown(html, url))

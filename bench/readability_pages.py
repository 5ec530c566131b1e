"""Main content on a second collection: ../shared/benchdata/readability-pages.

Scored as its README says: 4-token shingles (``\\w+``, Unicode) of the expected article text
against the output's, per document tp/fp/fn divided by their sum; precision and recall are
means over documents (a side without shingles is left out of that mean), F1 from the two
means. Every tool runs in the same process on the same pages; MB/s is conversion alone.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import BENCHDATA

ROOT = Path(__file__).resolve().parent.parent
DATA = BENCHDATA / "readability-pages" / "pages"
_TOKEN = re.compile(r"\w+", re.U)
ARTICLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "the article's text"}},
}
"""The job the model view is scored with on article pages: the article, as the truth is."""
TITLED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, **ARTICLE_SCHEMA["properties"]},
}
BYLINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **TITLED_SCHEMA["properties"],
        "author": {"type": "string"},
        "published": {"type": "string", "description": "the date the article was published"},
    },
}
"""Jobs that also ask for the title, and the byline: their views add the page's headline,
dates and bylines that main content leaves out, which the article-text truth counts as
noise."""


def shingles(text: str, size: int = 4) -> Counter[tuple[str, ...]]:
    words = _TOKEN.findall(text)
    return Counter(tuple(words[n : n + size]) for n in range(len(words) - size + 1))


@dataclass
class Shingled:
    name: str
    precisions: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    failures: int = 0

    def add(self, truth: Counter[tuple[str, ...]], found: Counter[tuple[str, ...]]) -> None:
        # Each count over tp + fp + fn first (a long page weighs no more than a short one);
        # the ratios below are the same whatever the common divisor.
        tp = sum((truth & found).values())
        fp = sum(found.values()) - tp
        fn = sum(truth.values()) - tp
        if tp + fp:
            self.precisions.append(tp / (tp + fp))
        if tp + fn:
            self.recalls.append(tp / (tp + fn))

    @property
    def precision(self) -> float:
        return sum(self.precisions) / len(self.precisions) if self.precisions else 0.0

    @property
    def recall(self) -> float:
        return sum(self.recalls) / len(self.recalls) if self.recalls else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load() -> list[tuple[str, str, str]]:
    """(name, source html, expected text) of every page."""
    from selectolax.lexbor import LexborHTMLParser

    out = []
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        source, expected = folder / "source.html", folder / "expected.html"
        if source.exists() and expected.exists():
            tree = LexborHTMLParser(expected.read_text(encoding="utf-8", errors="replace"))
            root = tree.body or tree.root
            truth = " ".join(root.text(deep=True, separator=" ").split()) if root else ""
            out.append((folder.name, source.read_text(encoding="utf-8", errors="replace"), truth))
    return out


def score(
    name: str, tool: Callable[[str, str], str], pages: list[tuple[str, str, str]]
) -> tuple[Shingled, list[str]]:
    import toktok

    scored = Shingled(name)
    outputs: list[str] = []
    started = time.perf_counter()
    for page, html, _ in pages:
        try:
            text = tool(html, f"http://fakehost/{page}/")
        except Exception:  # a tool that crashes on a page scores nothing for it
            text = ""
            scored.failures += 1
        outputs.append(text)
    scored.seconds = time.perf_counter() - started
    for (_, _, truth), text in zip(pages, outputs, strict=True):
        scored.add(shingles(truth), shingles(text))
    scored.tokens = sum(toktok.batch_count(outputs, "o200k_base"))
    return scored, outputs


def fastest(
    tool: Callable[[str, str], str], pages: list[tuple[str, str, str]], passes: int = 2
) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for page, html, _ in pages:
            with contextlib.suppress(Exception):
                tool(html, f"http://fakehost/{page}/")
        best = min(best, time.perf_counter() - started)
    return best


def tools() -> dict[str, Callable[[str, str], str]]:
    """What is compared on article pages (the content-extraction benchmark uses them too)."""
    import trafilatura

    from atlas_codex.engine.reading import model_view
    from atlas_codex.engine.reading.consensus import main_markdown
    from atlas_codex.engine.reading.html import parse
    from atlas_codex.engine.reading.markdown import to_markdown

    def viewed(schema: dict[str, Any]) -> Callable[[str, str], str]:
        job = model_view.focus(schema, None)

        def read(html: str, url: str) -> str:
            tree = parse(html)
            main = main_markdown(html, url, tree)
            return model_view.view(tree, url, job, main=main).markdown

        return read

    return {
        "atlas-codex main content": lambda html, url: main_markdown(html, url),
        "atlas-codex main content, own rules alone": lambda html, url: to_markdown(
            html, url, main_content=True
        ),
        "atlas-codex model view, article job": viewed(ARTICLE_SCHEMA),
        "atlas-codex model view, title + article job": viewed(TITLED_SCHEMA),
        "atlas-codex model view, title + article + byline job": viewed(BYLINE_SCHEMA),
        "atlas-codex full page": lambda html, url: to_markdown(html, url),
        "trafilatura 2 (markdown)": lambda html, url: (
            trafilatura.extract(html, url=url, output_format="markdown") or ""
        ),
    }


def run() -> str:
    if not DATA.exists():
        return "## Readability pages\n\nSkipped: ../shared/benchdata/readability-pages is not on this machine."
    pages = load()
    mb = sum(len(html.encode()) for _, html, _ in pages) / 1e6
    lines = [
        "## Main content on a second collection (readability pages)",
        "",
        f"{len(pages)} pages of `../shared/benchdata/readability-pages` ({mb:.1f} MB of HTML), "
        "scored as its README says (4-token shingles, per-document precision and recall, "
        "F1 of the means). MB/s: conversion alone, the faster of two passes after the scored "
        "one. The model view is measured with three jobs: the article's text (what the truth "
        "holds), the title and text, and the title, text, author and date.",
        "",
        "| tool | F1 | precision | recall | MB/s | output tokens | crashed pages |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for name, tool in tools().items():
        scored, _ = score(name, tool, pages)
        scored.seconds = min(scored.seconds, fastest(tool, pages))
        results[name] = scored
        lines.append(
            f"| {name} | {scored.f1:.3f} | {scored.precision:.3f} | {scored.recall:.3f} | "
            f"{mb / scored.seconds:.1f} | {scored.tokens:,} | {scored.failures} |"
        )
    ours, traf = results["atlas-codex main content"], results["trafilatura 2 (markdown)"]
    view = results["atlas-codex model view, article job"]
    lines += [
        "",
        "Targets of the model-view issue on this collection:",
        f"- model view F1 no lower than main content's: **{view.f1:.3f}** vs {ours.f1:.3f}",
        f"- main-content F1 >= trafilatura's: **{ours.f1:.3f}** vs {traf.f1:.3f} "
        + ("(met)" if ours.f1 >= traf.f1 else "(**not met**)"),
        f"- tokens <= trafilatura's: **{ours.tokens:,}** vs {traf.tokens:,} "
        + ("(met)" if ours.tokens <= traf.tokens else "(**not met**)"),
        f"- throughput >= trafilatura's: **{traf.seconds / ours.seconds:.2f}x**",
    ]
    return "\n".join(lines)

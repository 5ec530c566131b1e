"""What a model reads of a product page, on ../shared/benchdata/product-pages.

Every page goes through ``atlas-codex extract-page --jsonl`` (offline, the deterministic
strategies and the text a model would read) once per view, with a product schema. Scored as
the collection's README says: the ground-truth price must appear as a number in the text
(thousands separators and decimal commas read either way), the SKU as a string. The text
measured is what the model is given for the page: its ``URL:`` line and the view.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atlas_codex.engine.reading.model_view import View

from bench.data import BENCHDATA

ROOT = Path(__file__).resolve().parent.parent
DATA = BENCHDATA / "product-pages"
PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "currency": {"type": "string"},
        "sku": {"type": "string"},
        "availability": {"type": "string"},
    },
}
VIEWS = ("model", "main", "full")
_NUMBER = re.compile(
    r"(?<![\d.,])(?:\d{1,3}(?:[ \u00a0\u202f.,']\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
)


def product_view(html: str, url: str) -> str:
    """What a model reads of a product page for the product schema (the model view)."""
    return product_read(html, url).markdown


def product_read(html: str, url: str) -> View:
    """The model view of a product page with its sizes (``markdown``, ``tokens``,
    ``full_page_tokens``: what a wider reading would send)."""
    from selectolax.lexbor import LexborHTMLParser

    from atlas_codex.engine.reading import model_view
    from atlas_codex.engine.reading.consensus import main_markdown

    tree = LexborHTMLParser(html)
    focus = model_view.focus(PRODUCT_SCHEMA, None)
    return model_view.view(tree, url, focus, main=main_markdown(html, url, tree))


def numbers(text: str) -> set[float]:
    """Every number of ``text``, each read with '.' and with ',' as its decimal mark."""
    out: set[float] = set()
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"[ \u00a0\u202f']", "", match[0])
        for point, grouping in ((".", ","), (",", ".")):
            try:
                out.add(round(float(digits.replace(grouping, "").replace(point, ".")), 2))
            except ValueError:
                continue
    return out


def price_kept(text: str, prices: list[str]) -> bool:
    found = numbers(text)
    return any(round(float(p), 2) in found for p in prices)


def sku_kept(text: str, skus: list[str]) -> bool:
    return any(s in text for s in skus)


@dataclass
class ViewScore:
    view: str
    priced: int = 0
    price_kept: int = 0
    sku_in_full: int = 0
    sku_kept: int = 0
    tokens: int = 0
    ratios: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 0.0


def cases() -> dict[str, dict[str, Any]]:
    truth: dict[str, dict[str, Any]] = json.loads((DATA / "ground-truth-dev.json").read_text())
    return {k: v for k, v in truth.items() if (DATA / "html" / f"{k}.html.gz").exists()}


def extract_pages(
    view: str, keys: list[str], truth: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One ``extract-page --jsonl`` run over every page: its reports, in order."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as schema:
        json.dump(PRODUCT_SCHEMA, schema)
    command = [sys.executable, "-m", "atlas_codex_local.cli", "extract-page", "--jsonl"]
    command += ["--schema", schema.name, "--view", view]
    for key in keys:
        command += ["--url", truth[key]["url"]]
    command += [str(DATA / "html" / f"{key}.html.gz") for key in keys]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    Path(schema.name).unlink()
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _trafilatura(
    keys: list[str],
    truth: dict[str, dict[str, Any]],
    scores: dict[str, ViewScore],
    full_pages: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """trafilatura's markdown of each page, shaped as a report (the same text is scored)."""
    import gzip

    import toktok
    import trafilatura

    from atlas_codex.engine.pages.fetch import decode

    name = "trafilatura 2 (markdown)"
    started = time.perf_counter()
    texts = []
    for key in keys:
        html, _ = decode(gzip.decompress((DATA / "html" / f"{key}.html.gz").read_bytes()), "")
        texts.append(
            trafilatura.extract(html, url=truth[key]["url"], output_format="markdown") or ""
        )
    scores[name] = ViewScore(name, seconds=time.perf_counter() - started)
    counts = toktok.batch_count(texts, "o200k_base")
    return [
        {"markdown": text, "tokens": count, "full_page_tokens": full["full_page_tokens"]}
        for text, count, full in zip(texts, counts, full_pages, strict=True)
    ]


def score_views(*, peer: bool = True) -> dict[str, ViewScore]:
    """Every view's score, and trafilatura's beside them with ``peer``."""
    truth = cases()
    keys = sorted(truth)
    reports: dict[str, list[dict[str, Any]]] = {}
    scores: dict[str, ViewScore] = {}
    for view in VIEWS:
        started = time.perf_counter()
        reports[view] = extract_pages(view, keys, truth)
        scores[view] = ViewScore(view, seconds=time.perf_counter() - started)
    if peer:
        reports["trafilatura 2 (markdown)"] = _trafilatura(keys, truth, scores, reports["full"])
    for n, key in enumerate(keys):
        case = truth[key]
        full = f"URL: {case['url']}\n" + reports["full"][n]["markdown"]
        for view in reports:
            report = reports[view][n]
            text = f"URL: {case['url']}\n" + report["markdown"]
            score = scores[view]
            score.tokens += report["tokens"]
            if case.get("price"):
                score.priced += 1
                score.price_kept += price_kept(text, case["price"])
                score.ratios.append(report["tokens"] / max(report["full_page_tokens"], 1))
            if case.get("sku") and sku_kept(full, case["sku"]):
                score.sku_in_full += 1
                score.sku_kept += sku_kept(text, case["sku"])
    return scores


def run() -> str:
    if not (DATA / "ground-truth-dev.json").exists():
        return (
            "## Product pages\n\nSkipped: ../shared/benchdata/product-pages is not on this machine."
        )
    scores = score_views()
    lines = [
        "## What a model reads of a product page",
        "",
        f"{len(cases())} pages of `../shared/benchdata/product-pages`, each through "
        "`atlas-codex extract-page --jsonl` with a product schema (name, price, currency, "
        "sku, availability), once per view. Kept: the ground-truth price as a number in the "
        "text the model is given (its `URL:` line and the view), the SKU as a string on the "
        "pages whose full-page markdown has it. Tokens are o200k_base; the ratio is the "
        "view's tokens over the full page's, per page. Seconds: the whole command, all pages.",
        "",
        "| view | price kept | SKU kept | median tokens vs full page | tokens, all pages | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in scores.values():
        lines.append(
            f"| {s.view} | {s.price_kept} of {s.priced} | {s.sku_kept} of {s.sku_in_full} | "
            f"{s.median_ratio:.1%} | {s.tokens:,} | {s.seconds:.1f} |"
        )
    model = scores["model"]
    lines += [
        "",
        "Targets of the model-view issue, measured here:",
        f"- price kept on >= 44 of 46 pages: **{model.price_kept} of {model.priced}**",
        f"- SKU kept wherever the full page has it: **{model.sku_kept} of {model.sku_in_full}**",
        f"- median tokens <= 35% of the full page's: **{model.median_ratio:.1%}**",
    ]
    return "\n".join(lines)

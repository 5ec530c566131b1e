"""Product facts without a model, on ../shared/benchdata/product-pages.

Every page goes through ``atlas-codex extract-page --jsonl`` with the product schema (the
deterministic strategies only). Scored per field as the benchmark the pages come from does:
a value is right when it equals the truth after normalisation (prices as numbers, SKUs as
trimmed strings, availability as a schema.org value); a wrong value counts as a false
positive and a false negative; a value where the truth has none, as a false positive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bench.content_extraction import Score
from bench.product_pages import DATA, cases, extract_pages

FIELDS = ("price", "sku", "availability", "currency", "name")
PUBLISHED = {
    "price": {"extruct": 0.685, "Diffbot": 0.824, "Zyte": 0.918},
    "sku": {"extruct": 0.537, "Diffbot": 0.765, "Zyte": 0.841},
    "availability": {"extruct": 0.626, "Diffbot": 0.943, "Zyte": 0.957},
}
"""F1 published by github.com/scrapinghub/product-extraction-benchmark (README of the
collection), for the rows that have them."""


def _price(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(float(value), 2)
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return round(float(text), 2)
    return None


def _availability(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    word = value.strip().rsplit("/", 1)[-1]
    return word


def normalised(field_name: str, value: Any) -> Any:
    if value is None:
        return None
    if field_name == "price":
        return _price(value)
    if field_name == "availability":
        return _availability(value)
    if field_name == "currency":
        from atlas_codex.engine.facts.product import currency_code

        return currency_code(str(value))
    if isinstance(value, str):
        return value.strip() or None
    return str(value)


@dataclass
class FieldScore(Score):
    """One field's counts (precision, recall and F1 as the content benchmark computes them),
    and how many right values each source gave."""

    sources: dict[str, int] = field(default_factory=dict)


def score() -> dict[str, FieldScore]:
    truth = cases()
    keys = sorted(truth)
    reports = extract_pages("full", keys, truth)
    scores = {name: FieldScore(name) for name in FIELDS if name != "name"}
    for key, report in zip(keys, reports, strict=True):
        case, data = truth[key], report["data"] or {}
        for name, s in scores.items():
            expected = {normalised(name, v) for v in case.get(name) or []} - {None}
            got = normalised(name, data.get(name))
            if name == "currency" and not expected:
                continue  # the truth's sign names no one currency ("$"): not scored
            if got is None:
                s.fn += bool(expected)
                continue
            source = str((report["evidence"].get(name) or {}).get("source", "?")).split(":")[0]
            if got in expected:
                s.tp += 1
                s.sources[source] = s.sources.get(source, 0) + 1
            else:
                s.fp += 1
                s.fn += bool(expected)
    return scores


def run() -> str:
    if not (DATA / "ground-truth-dev.json").exists():
        return (
            "## Product facts\n\nSkipped: ../shared/benchdata/product-pages is not on this machine."
        )
    scores = score()
    lines = [
        "## Product facts without a model",
        "",
        f"{len(cases())} pages of `../shared/benchdata/product-pages` through `atlas-codex "
        "extract-page --jsonl` with a product schema (deterministic strategies only), scored "
        "per field as the benchmark they come from (a wrong value is a false positive and a "
        "false negative). Beside: the F1 that benchmark publishes for other extractors.",
        "",
        "| field | F1 | precision | recall | right values by source | extruct | Diffbot | Zyte |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, s in scores.items():
        peers = PUBLISHED.get(name, {})
        by_source = ", ".join(f"{k} {v}" for k, v in sorted(s.sources.items())) or "-"
        lines.append(
            f"| {name} | {s.f1:.3f} | {s.precision:.3f} | {s.recall:.3f} | {by_source} | "
            + " | ".join(
                f"{peers[p]:.3f}" if p in peers else "-" for p in ("extruct", "Diffbot", "Zyte")
            )
            + " |"
        )
    goals = {"price": 0.85, "sku": 0.75, "availability": 0.90}
    lines += ["", "Goals of the product-facts issue (F1, with precision >= 0.9 on each):"]
    for name, goal in goals.items():
        s = scores[name]
        met = s.f1 >= goal and s.precision >= 0.9
        lines.append(
            f"- {name} F1 >= {goal:.2f}: **{s.f1:.3f}** (precision {s.precision:.3f}) "
            + ("met" if met else "**not met**")
        )
    return "\n".join(lines)

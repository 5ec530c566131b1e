"""What a model reads: the view chosen for the job keeps what the job's fields need, prunes
only what is never content, never cuts inside a block, and says what it saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from atlas_codex.engine.reading import model_view
from atlas_codex.engine.reading.consensus import main_markdown
from atlas_codex.engine.reading.html import parse
from atlas_codex.engine.reading.markdown import to_markdown
from bench.data import benchdata
from tests.support.html_pages import html_pages


def _view(tree: Any, url: str, job: model_view.Focus, **options: Any) -> model_view.View:
    """The view as the engine makes it: with the page's main content from both readers."""
    return model_view.view(
        tree, url, job, main=main_markdown(tree.html or "", url, tree), **options
    )


PRODUCT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "sku": {"type": "string"},
        "availability": {"type": "string"},
    },
}
PROSE = (
    "<p>This kettle boils a litre of water in three minutes and keeps it warm for an hour, "
    "with a steel body and a handle that stays cool to the touch.</p>"
)
SHOP = (
    "<html><head><title>Kettle</title></head><body>"
    "<header><a href='/'>Home</a><h1>Steel kettle 1.7 l</h1></header>"
    "<nav><ul>"
    + "".join(f"<li><a href='/c/{n}'>Category {n}</a></li>" for n in range(30))
    + "</ul></nav><div class='cookie-banner'>We use cookies. Accept all</div>"
    "<main><article><h2>About this kettle</h2>" + PROSE * 3 + "</article></main>"
    "<aside><p>Price</p><p>1.234,50 €</p><p>Item number: KT-1700-S</p>"
    "<p>In stock</p><button>Add to cart</button></aside>"
    "<section class='more'>"
    + "".join(f"<p><a href='/p/{n}'>Other kettle {n}</a></p>" for n in range(40))
    + "</section><footer><p>© Shop 2026 · Imprint · Terms</p></footer></body></html>"
)
ARTICLE = (
    "<html><head><title>On kettles</title></head><body><nav><a href='/'>Home</a></nav>"
    "<article><h1>On kettles</h1><p>12 March 2026</p>" + PROSE * 4 + "</article>"
    "<footer>© Magazine</footer></body></html>"
)


def test_the_product_view_keeps_the_buy_box_that_main_content_drops() -> None:
    tree = parse(SHOP)
    main = main_markdown(SHOP, "https://shop.example/k", tree)
    assert "1.234,50" not in main  # the reason the view exists
    seen = _view(tree, "https://shop.example/k", model_view.focus(PRODUCT, None))
    assert seen.name == "model"
    for kept in ("1.234,50 €", "Item number: KT-1700-S", "In stock", "Steel kettle 1.7 l"):
        assert kept in seen.markdown
    # Never content, and blocks that are not what the job asks for, are left out.
    for dropped in ("Category 3", "We use cookies", "Other kettle 7", "Imprint"):
        assert dropped not in seen.markdown
    assert seen.markdown.index("About this kettle") < seen.markdown.index("1.234,50")
    assert 0 < seen.tokens < seen.full_page_tokens


def test_a_job_that_needs_nothing_more_reads_the_main_content() -> None:
    tree = parse(ARTICLE)
    main = main_markdown(ARTICLE, "https://mag.example/a", tree)
    article_job = {"type": "object", "properties": {"title": {}, "published": {}, "text": {}}}
    seen = _view(tree, "https://mag.example/a", model_view.focus(article_job, None))
    assert seen.name == "main"
    assert seen.markdown == main
    nothing = _view(tree, "https://mag.example/a", model_view.Focus())
    assert nothing.name == "main"


def test_the_outside_budget_drops_the_least_relevant_whole_blocks() -> None:
    specs = "".join(f"<p>Spec {n}: part number PN-{n:05d}</p>" for n in range(400))
    page = SHOP.replace("<aside>", f"<div class='specs'>{specs}</div><aside>")
    tree = parse(page)
    full_blocks = set(model_view._pruned_blocks(tree, "https://shop.example/k"))
    seen = _view(tree, "https://shop.example/k", model_view.focus(PRODUCT, None), budget_tokens=300)
    outside = seen.markdown.split(model_view.ELSEWHERE, 1)[1].strip().split("\n\n")
    assert all(block in full_blocks for block in outside)  # no block is cut
    assert "1.234,50 €" in outside  # a price with its currency outranks a bare code
    assert len(outside) < 400


@pytest.mark.parametrize(
    ("schema", "instruction", "kinds"),
    [
        (PRODUCT, None, {"title", "price", "code", "availability"}),
        ({"properties": {"productPrice": {}, "gtin13": {}}}, None, {"price", "code", "title"}),
        ({"properties": {"Preis": {}, "verfügbarkeit": {}}}, None, {"price", "availability"}),
        (None, "When was it published, and by whom?", {"date"}),
        ({"properties": {"x": {"description": "the cost in euros"}}}, None, {"price"}),
    ],
)
def test_the_focus_is_read_from_names_descriptions_and_instructions(
    schema: dict[str, Any] | None, instruction: str | None, kinds: set[str]
) -> None:
    assert model_view.focus(schema, instruction).kinds == kinds


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(html=html_pages())
def test_no_generated_page_breaks_a_view(html: str) -> None:
    job = model_view.focus(PRODUCT, "the price")
    for name in model_view.VIEW_NAMES:
        seen = _view(parse(html), "https://x.example/a/", job, name=name)
        assert isinstance(seen.markdown, str)
        assert seen.tokens >= 0


# --------------------------------------------------------------- the dev collections

BENCHDATA = benchdata()
needs_products = pytest.mark.skipif(
    not (BENCHDATA / "product-pages" / "ground-truth-dev.json").exists(),
    reason="../shared/benchdata/product-pages is not on this machine",
)


@needs_products
def test_on_the_product_dev_set_the_model_view_keeps_price_and_sku_at_a_third_of_the_tokens() -> (
    None
):
    """The issue's figures, through `atlas-codex extract-page --jsonl` as the benchmark runs it."""
    from bench import product_pages

    scores = product_pages.score_views(peer=False)
    view, main = scores["model"], scores["main"]
    assert view.priced == 46
    assert view.price_kept >= 44 > main.price_kept
    assert view.sku_kept == view.sku_in_full
    assert view.median_ratio <= 0.35


def _dev_pages() -> list[tuple[str, str]]:
    import gzip

    from atlas_codex.engine.pages.fetch import decode

    pages: list[tuple[str, str]] = []
    for path in sorted((BENCHDATA / "content-extraction" / "html").glob("*")):
        pages.append((str(path), decode(path.read_bytes(), "")[0]))
    for path in sorted((BENCHDATA / "readability-pages" / "pages").glob("*/source.html")):
        pages.append((str(path), decode(path.read_bytes(), "")[0]))
    for path in sorted((BENCHDATA / "product-pages" / "html").glob("*.html.gz")):
        pages.append((str(path), decode(gzip.decompress(path.read_bytes()), "")[0]))
    return pages


@pytest.mark.skipif(not BENCHDATA.exists(), reason="../shared/benchdata is not on this machine")
def test_every_dev_page_converts_in_every_mode_and_view() -> None:
    pages = _dev_pages()
    assert len(pages) > 400
    job = model_view.focus(PRODUCT, None)
    for name, html in pages:
        tree = parse(html)
        for view in model_view.VIEW_NAMES:
            seen = _view(tree, "https://dev.example/page", job, name=view)
            assert seen.tokens <= seen.full_page_tokens or view == "model", name


# ------------------------------------------------------------------------ the command


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_codex_local.cli", "extract-page", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_extract_page_prints_data_evidence_and_the_view_as_jsonl(tmp_path: Path) -> None:
    shop = SHOP.replace(
        "</head>",
        "<script type='application/ld+json'>"
        + json.dumps({"@type": "Product", "name": "Steel kettle", "sku": "KT-1700-S"})
        + "</script></head>",
    )
    page = tmp_path / "kettle.html"
    page.write_text(shop)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(PRODUCT))
    done = _cli(
        str(page), str(page), "--url", "https://shop.example/k", "--schema", str(schema), "--jsonl"
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2
    report = lines[0]
    assert set(report) == {
        "file",
        "url",
        "data",
        "evidence",
        "missing",
        "view",
        "markdown",
        "tokens",
        "full_page_tokens",
    }
    assert report["data"]["sku"] == "KT-1700-S"
    assert "sku" in report["evidence"]
    assert report["data"]["price"] == 1234.5  # shown beside the add-to-cart button
    assert report["evidence"]["price"]["source"].startswith("buy-box")
    assert report["view"] == "model"
    assert "1.234,50 €" in report["markdown"]
    assert report["tokens"] < report["full_page_tokens"]
    full = _cli(
        str(page),
        "--url",
        "https://shop.example/k",
        "--schema",
        str(schema),
        "--view",
        "full",
        "--jsonl",
    )
    assert json.loads(full.stdout)["markdown"] == to_markdown(shop, "https://shop.example/k")


def test_extract_page_refuses_bad_input_with_a_message(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(ARTICLE)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    selectors = tmp_path / "selectors.json"
    selectors.write_text(json.dumps({"fields": {"title": {"selector": "h1["}}}))
    cases = [
        (["--url", "https://x.example/", "--schema", str(bad)], "is not JSON"),
        (["--url", "https://x.example/", "--schema", str(tmp_path / "none.json")], "No such file"),
        (["--url", "https://x.example/", "--selectors", str(selectors)], "fields"),
        (["--url", "ftp://x.example/", "--schema", str(bad)], "not an http(s) URL"),
        (
            ["--url", "https://a.example/", "--url", "https://b.example/", "--schema", str(bad)],
            "once per file",
        ),
    ]
    for args, message in cases:
        done = _cli(str(page), *args)
        assert done.returncode == 2, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
    missing = _cli(
        str(tmp_path / "gone.html"),
        "--url",
        "https://x.example/",
        "--selectors",
        str(tmp_path / "s.json"),
    )
    assert missing.returncode == 2
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"fields": {"title": {"selector": "h1"}}}))
    gone = _cli(
        str(tmp_path / "gone.html"), "--url", "https://x.example/", "--selectors", str(good)
    )
    assert gone.returncode == 1
    assert "gone.html" in gone.stderr

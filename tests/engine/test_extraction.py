"""Markdown, direct extraction, crawling and the engine's strategy chain on the test site."""

from __future__ import annotations

import time
from typing import Any

import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.engine.facts.direct import (
    extract_selectors,
    extract_structured,
    extract_tables,
    parse_number,
)
from atlas_codex.engine.pages.crawler import Crawler, normalize
from atlas_codex.engine.pages.fetch import Fetcher
from atlas_codex.engine.reading import model_view
from atlas_codex.engine.reading.consensus import main_markdown
from atlas_codex.engine.reading.html import metadata, parse
from atlas_codex.engine.reading.markdown import to_markdown
from atlas_codex.engine.strategies import CHAINS, MODEL_STRATEGIES, NO_MODEL, STRATEGIES, plan
from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
from atlas_codex.extraction.request import CrawlOptions, JobRequest, SelectorSchema
from tests.site import Site, catalog, product

SELECTORS = SelectorSchema.model_validate(
    {
        "base_selector": "article.product",
        "fields": {
            "name": {"selector": ".name"},
            "url": {"selector": ".name a", "attribute": "href"},
            "price": {"selector": ".price", "type": "number"},
            "in_stock": {"selector": ".stock", "type": "boolean"},
            "rating": {"selector": ".rating"},
        },
    }
)


def never() -> bool:
    return False


# ---------------------------------------------------------------------- markdown


def test_main_content_mode_drops_navigation_cookie_banners_and_footers() -> None:
    html = catalog(1)
    full = to_markdown(html, "https://shop.example/catalog/1")
    main = to_markdown(html, "https://shop.example/catalog/1", main_content=True)
    assert "We use cookies" in full
    assert "We use cookies" not in main
    assert "Imprint" not in main
    assert "# Catalog page 1" in main
    # Main content is text: links without their URLs (tokens a reader seldom needs).
    assert "Lamp 1" in main
    assert "https://shop.example/product/1" not in main
    assert len(main) < len(full)


def test_a_job_that_asks_for_links_reads_the_main_content_with_their_urls() -> None:
    html = catalog(1)
    tree = parse(html)
    url = "https://shop.example/catalog/1"
    main = main_markdown(html, url, tree)
    links_job = model_view.focus(
        {"properties": {"products": {"items": {"properties": {"name": {}, "url": {}}}}}}, None
    )
    seen = model_view.view(tree, url, links_job, main=main)
    assert "[Lamp 1](https://shop.example/product/1)" in seen.markdown
    names_job = model_view.focus({"properties": {"products": {"items": {}}}}, None)
    assert (
        "https://shop.example/product/1"
        not in model_view.view(tree, url, names_job, main=main).markdown
    )


PROSE = "The council met on Tuesday, and after a long debate, it voted to keep the library open. "


def test_main_content_keeps_a_page_wrapped_in_a_form_and_text_written_straight_into_divs() -> None:
    # ASP.NET wraps the whole page in one <form>; many CMSs write paragraphs as bare text.
    html = (
        "<html><body><form class='search'><input name='q'><p>Search the site</p></form>"
        "<form id='mainform'><nav><a href='/'>Home</a></nav>"
        "<div class='teaser'><p>Short teaser, one line, read more.</p></div>"
        f"<div class='story'>{PROSE * 6}<br><br>{PROSE * 6}</div>"
        "</form></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "voted to keep the library open" in main
    assert "Search the site" not in main
    assert "Home" not in main


def test_an_element_the_page_marks_as_its_article_body_wins_over_a_wordier_box() -> None:
    bio = (
        "<p>" + "Our editor, born in 1983, writes about politics, culture, and sport. " * 4 + "</p>"
    )
    body = "".join(f"<p>Paragraph {n}: {PROSE}</p>" for n in range(5))
    html = (
        f"<html><body><div class='author content'>{bio}{bio}</div>"
        f"<div itemprop='articleBody'>{body}</div></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "Paragraph 4" in main


def test_main_content_is_lean_prose_links_lose_their_urls_listed_links_keep_them() -> None:
    html = (
        "<html><body><main><h1>Report</h1>"
        f"<p>{PROSE} The <a href='/budget'>budget</a> was <b>approved</b> on <i>Monday</i>.</p>"
        "<p><a href='/minutes'>Read the minutes</a></p>"
        "<figure><img src='/a.jpg' alt='x'><figcaption>Photo: City archive</figcaption></figure>"
        f"<p>{PROSE}</p><h2>Related</h2></main></body></html>"
    )
    # With link URLs (what a job asking for links reads): prose links lose theirs.
    main = to_markdown(html, "https://news.example/a", main_content=True, link_urls=True)
    assert "The budget was approved on Monday." in main  # no URL, no emphasis in prose
    assert "[Read the minutes](https://news.example/minutes)" in main  # a link on its own
    text = to_markdown(html, "https://news.example/a", main_content=True)
    assert "Read the minutes" in text
    assert "https://" not in text  # main content's default: no URL at all
    assert "City archive" not in main  # captions and credits
    assert "Related" not in main  # a heading with nothing under it
    full = to_markdown(html, "https://news.example/a")
    assert "[budget](https://news.example/budget)" in full
    assert "**approved**" in full


def test_on_a_page_of_several_articles_the_one_under_the_title_is_the_content() -> None:
    first = "".join(f"<p>First story, part {n}: {PROSE}</p>" for n in range(3))
    second = "".join(f"<p>Second story, part {n}: {PROSE}{PROSE}</p>" for n in range(5))
    html = (
        "<html><head><title>Council keeps the library open | Daily</title></head><body>"
        f"<article><h1>Council keeps the library open</h1>{first}</article>"
        f"<article><h2>Another story</h2>{second}</article></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "First story, part 2" in main
    assert "Second story" not in main


def test_the_lead_paragraph_is_kept_though_it_sits_in_the_header_or_beside_the_body() -> None:
    body = "".join(f"<p>Paragraph {n}: {PROSE}</p>" for n in range(5))
    in_header = (
        "<html><body><article><header><h1>Library stays open</h1><span>12 May, by Ann</span>"
        "<p class='article-lead'>The council voted late on Tuesday to keep the branch in the old town open.</p>"
        f"</header><div class='text'>{body}</div></article></body></html>"
    )
    main = to_markdown(in_header, "https://news.example/a", main_content=True)
    assert "voted late on Tuesday" in main
    assert "by Ann" not in main  # the rest of the header still goes
    beside = (
        "<html><body><div class='page'><div class='col'>"
        "<p class='intro'>The council voted late on Tuesday to keep the branch in the old town open.</p>"
        f"<div itemprop='articleBody'>{body}</div></div></div></body></html>"
    )
    main = to_markdown(beside, "https://news.example/a", main_content=True)
    assert main.index("voted late on Tuesday") < main.index("Paragraph 0")
    teasers = (
        "<html><body><div class='stories'><article><h1>Library stays open</h1>"
        f"<div itemprop='articleBody'>{body}</div></article>"
        "<article><h2>Pool closes</h2><p class='summary'>The pool on the hill closes for the "
        "winter, and it will not open again before the spring.</p></article></div></body></html>"
    )
    main = to_markdown(teasers, "https://news.example/a", main_content=True)
    assert "Paragraph 4" in main
    assert "pool on the hill" not in main  # another story's summary is not this one's lead


def test_related_links_comments_teaser_cards_and_date_pickers_are_not_content() -> None:
    body = "".join(f"<p>Paragraph {n}: {PROSE}</p>" for n in range(6))
    cards = "".join(
        f"<h3>Other story {n}</h3><p><a href='/s/{n}'>Read the article</a></p>" for n in range(3)
    )
    days = "".join(
        "<tr>" + "".join(f"<td>{d:02d}</td>" for d in range(w * 7 + 1, w * 7 + 8)) + "</tr>"
        for w in range(4)
    )
    html = (
        "<html><body><div id='main'><h1>Library stays open</h1>"
        "<div class='text'><p>Share this article</p><div>Facebook | Twitter | WhatsApp | E-Mail</div>"
        f"{body}<p>Permalink https://news.example/p/1</p><p>Share prices rose.</p>"
        f"{cards}<table><tr><th>Mo</th><th>Di</th></tr>{days}</table>"
        "<h2>Das könnte Sie auch interessieren!</h2>"
        "<p>Sommerfest im Park: die Stadt lädt am Samstag alle Familien ein.</p></div>"
        "<div class='thread'><h2>27 commentaires</h2>"
        + "".join(f"<p>Reader {n} writes: {PROSE}{PROSE}</p>" for n in range(12))
        + "</div></div></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "Paragraph 5" in main
    assert "Sommerfest" not in main
    assert "interessieren" not in main
    assert "Share this" not in main
    assert "WhatsApp" not in main
    assert "Permalink" not in main
    assert "Share prices rose." in main
    assert "Other story" not in main
    assert "Read the article" not in main
    assert "| 01 |" not in main
    assert "Reader 3" not in main
    assert "commentaires" not in main


def test_on_a_listing_page_the_cards_and_a_table_of_small_numbers_are_the_content() -> None:
    cards = "".join(
        f"<h2>Lamp {n}, brass, hand made</h2><p><a href='/lamp/{n}'>See the lamp</a></p>"
        for n in range(6)
    )
    rows = "".join(
        f"<tr><td>{rank}</td><td>Team {rank}</td><td>28</td><td>{rank % 9 + 1}</td>"
        f"<td>{rank % 5 + 1}</td><td>{rank % 6 + 1}</td><td>{rank % 20 + 1}</td></tr>"
        for rank in range(1, 23)
    )
    html = (
        f"<html><body><main><h1>Lamps</h1>{cards}"
        "<table><tr><th>#</th><th>Team</th><th>P</th><th>W</th><th>D</th><th>L</th><th>Pts</th>"
        f"</tr>{rows}</table>"
        "</main></body></html>"
    )
    main = to_markdown(html, "https://shop.example/lamps", main_content=True, link_urls=True)
    assert "## Lamp 5, brass, hand made" in main
    assert "[See the lamp](https://shop.example/lamp/5)" in main
    assert "| 22 | Team 22 | 28 | 5 | 3 | 5 | 3 |" in main  # mostly days, but not a month


def test_a_short_description_widens_to_the_recipe_around_it_and_empty_entries_are_skipped() -> None:
    # No <article>/<main>, and the steps and ingredients are not paragraphs: only the short
    # description votes as prose.
    ingredients = "".join(
        f"<div class='ingredient'><span>{n}</span><span>{n} cup of flour</span></div>"
        for n in range(1, 8)
    )
    steps = "".join(
        f"<div class='step'><div class='num'>{n}</div><div class='text'>Step {n}: stir, wait, "
        "then stir again until the batter is smooth.</div></div>"
        for n in range(1, 5)
    )
    html = (
        "<html><body><div class='nav'><a href='/'>Home</a></div><div class='recipe'>"
        f"<div class='description'><div class='part'><p>{PROSE * 3}</p></div></div>"
        f"<div class='ingredients'><h2>Ingredients</h2>{ingredients}</div>"
        f"<div class='steps'><h2>Steps</h2>{steps}</div>"
        "<h2>Tips</h2><ol><li><span class='icon'></span></li><li>Serve warm.</li><li></li>"
        "<li>Keep it covered.</li></ol></div></body></html>"
    )
    main = to_markdown(html, "https://food.example/cake", main_content=True)
    assert "7 cup of flour" in main
    assert "Step 4: stir" in main
    assert (
        "1. Serve warm.\n2. Keep it covered." in main
    )  # empty entries neither written nor counted


def test_a_comments_heading_at_the_top_of_the_page_drops_its_section_not_the_page() -> None:
    body = "".join(f"<p>Paragraph {n}: {PROSE}</p>" for n in range(4))
    html = (
        f"<html><body><h2>Comments</h2><p>Reader: {PROSE}</p><h2>The vote</h2>{body}</body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "Paragraph 3" in main
    assert "Reader:" not in main


def test_a_thread_is_all_its_posts_but_a_titled_entry_among_others_is_only_itself() -> None:
    long_post = PROSE * 8
    posts = "".join(
        f"<li class='postbit postcontainer' id='post_{n}'><div class='author'>user{n}</div>"
        f"<div class='postbody'><div class='content'><blockquote class='postcontent'>"
        f"Post {n}: {long_post if n == 1 else PROSE}</blockquote></div></div></li>"
        for n in range(1, 5)
    )
    thread = (
        "<html><head><title>Update arrives | Forum</title></head><body>"
        f"<h1>Update arrives</h1><ol class='posts'>{posts}</ol></body></html>"
    )
    main = to_markdown(thread, "https://forum.example/t/1", main_content=True)
    assert "Post 1:" in main
    assert "Post 4:" in main

    entries = "".join(
        f"<div class='entry'><h2>Story {n} of the day</h2><p>Story {n}: "
        f"{PROSE * (8 if n == 1 else 1)}</p></div>"
        for n in range(1, 5)
    )
    news = (
        "<html><head><title>Story 1 of the day - Daily</title></head><body>"
        f"<div class='entries'>{entries}</div></body></html>"
    )
    main = to_markdown(news, "https://news.example/1", main_content=True)
    assert "Story 1:" in main
    assert "Story 3:" not in main


def test_a_long_heading_is_a_subtitle_and_stays_though_nothing_follows_it() -> None:
    body = "".join(f"<p>Paragraph {n}: {PROSE}</p>" for n in range(4))
    subtitle = (
        "The port operator will send 125 workers home while the talks go on, the ministry says"
    )
    html = (
        f"<html><body><article><div class='top'><h1>Port dispute</h1><h2>{subtitle}</h2></div>"
        f"<div class='body'>{body}<h2>Share</h2></div></article></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert subtitle in main
    assert "Share" not in main


def test_links_in_bare_text_and_headings_are_lean_and_layout_tables_are_read_once() -> None:
    html = (
        "<html><body><main><h2><a href='/a'>Council keeps the library open</a></h2>"
        f"<div>{PROSE}{PROSE} See the <a href='/vote'>vote</a> for details.</div>"
        "<table><tr><td><table><tr><td>Opening hours</td><td>9 to 5</td></tr></table></td>"
        "<td><p>A layout cell with its own paragraph of text in it.</p></td></tr></table>"
        "</main></body></html>"
    )
    main = to_markdown(html, "https://news.example/a", main_content=True)
    assert "## Council keeps the library open" in main  # the headline's permalink
    assert "See the vote for details." in main
    full = to_markdown(html, "https://news.example/a")
    assert "[vote](https://news.example/vote)" in full
    assert full.count("Opening hours") == 1
    assert "| Opening hours | 9 to 5 |" in full


def test_markup_keeps_the_white_space_between_words_outside_its_markers() -> None:
    html = (
        "<html><body><p>A<b> bold </b>word, an<i> </i>empty one and a"
        "<a href='/x'> link </a>here.</p><div>Text <b>in</b> a div, <a href='/y'>linked</a>.</div>"
        "</body></html>"
    )
    full = to_markdown(html, "https://news.example/a")
    assert "A **bold** word, an empty one and a [link](https://news.example/x) here." in full
    assert "Text **in** a div, [linked](https://news.example/y)." in full


def test_metadata_includes_json_ld_opengraph_and_language() -> None:
    meta = metadata(parse(product(3)), "https://shop.example/product/3")
    assert meta.title == "Lamp 3"
    assert meta.language == "en"
    assert meta.opengraph["og:title"] == "Lamp 3"
    assert meta.json_ld[0]["sku"] == "SKU-3"


# ---------------------------------------------------------------------- direct extraction


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1,50 €", 1.5),
        ("$1,299.50", 1299.5),
        ("1.299,50 EUR", 1299.5),
        ("12", 12.0),
        ("1,299", 1299.0),
        ("n/a", None),
    ],
)
def test_numbers_are_read_in_either_decimal_convention(text: str, number: float | None) -> None:
    assert parse_number(text) == number


def test_a_selector_schema_yields_typed_items_with_evidence_and_missing_fields() -> None:
    found = extract_selectors(parse(catalog(1)), SELECTORS, "https://shop.example/catalog/1")
    assert found.data[0] == {
        "name": "Lamp 1",
        "url": "https://shop.example/product/1",
        "price": 1.5,
        "in_stock": True,
        "rating": None,
    }
    assert found.data[1]["in_stock"] is False
    assert len(found.data) == 5
    assert found.evidence["[0].price"].source == ".price"
    assert "[0].rating" in found.missing  # not found is not the same as null


def test_structured_data_is_mapped_onto_the_schema_by_name_and_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "price": {"type": "number"},
            "currency": {"type": "string"},
            "sku": {"type": "string"},
            "color": {"type": "string"},
        },
        "required": ["title", "price"],
    }
    found = extract_structured(
        metadata(parse(product(4)), "https://shop.example/product/4"), schema
    )
    assert found.data == {
        "title": "Lamp 4",
        "price": 4.5,
        "currency": "EUR",
        "sku": "SKU-4",
        "color": None,
    }
    assert found.evidence["price"].source == "json-ld[0].offers.price"
    assert found.missing == ["color"]


def test_tables_become_rows_keyed_by_their_header() -> None:
    assert extract_tables(parse(product(2))) == [[{"Spec": "Watt", "Value": "20"}]]


# ---------------------------------------------------------------------- crawling


def test_urls_are_normalised_for_deduplication() -> None:
    assert normalize("HTTP://Shop.Example:80/a?utm_source=x&b=1#top") == "http://shop.example/a?b=1"
    assert normalize("https://shop.example") == "https://shop.example/"


def test_the_crawl_follows_pagination_within_its_limits(fetcher: Fetcher, site: Site) -> None:
    options = CrawlOptions(max_pages=20, max_depth=0, follow_pagination=True)
    pages = list(Crawler(fetcher, options).crawl([f"{site.url}/catalog/1"]))
    assert [p.url for p in pages] == [f"{site.url}/catalog/{n}" for n in (1, 2, 3)]


def test_the_crawl_respects_depth_pages_robots_and_excludes(fetcher: Fetcher, site: Site) -> None:
    options = CrawlOptions(max_pages=8, max_depth=2, exclude=["*/imprint"], follow_pagination=False)
    pages = list(Crawler(fetcher, options).crawl([f"{site.url}/"]))
    urls = [p.url for p in pages]
    assert len(urls) == 8
    assert len(set(urls)) == 8
    assert not any("imprint" in u for u in urls)
    private = [p for p in pages if "/private/" in p.url]
    assert all(p.error is not None and p.error.code == "robots_disallowed" for p in private)


def test_the_sitemap_seeds_the_crawl(fetcher: Fetcher, site: Site) -> None:
    options = CrawlOptions(max_pages=4, max_depth=1, use_sitemap=True)
    urls = [p.url for p in Crawler(fetcher, options).crawl([f"{site.url}/imprint"])]
    assert f"{site.url}/product/1" in urls


def test_the_crawl_stops_at_its_deadline(fetcher: Fetcher, site: Site) -> None:
    crawler = Crawler(
        fetcher, CrawlOptions(max_pages=50, max_depth=5), deadline=time.monotonic() - 1
    )
    assert list(crawler.crawl([f"{site.url}/"])) == []
    assert crawler.state.stopped_by == "deadline"


# ---------------------------------------------------------------------- the engine


def test_the_plan_is_deterministic_and_explained() -> None:
    request = JobRequest(
        urls=["https://a.example/"], json_schema={"type": "object", "properties": {}}
    )
    chosen = plan(request, models_available=False)
    assert chosen.chain == ("schema-model", "structured-data")
    assert NO_MODEL in chosen.reason
    assert not chosen.navigation
    assert plan(
        JobRequest(urls=["https://a.example/", "https://a.example/b"]), models_available=False
    ).navigation


def test_every_strategy_a_chain_names_can_run() -> None:
    named = {strategy for chain in CHAINS.values() for strategy in chain}
    assert named <= set(STRATEGIES) | MODEL_STRATEGIES
    assert not set(STRATEGIES) & MODEL_STRATEGIES


def test_without_a_model_a_schema_job_falls_back_to_structured_data(
    fetcher: Fetcher, site: Site
) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    request = JobRequest(
        urls=[f"{site.url}/product/5"],
        json_schema={
            "type": "object",
            "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
        },
    )
    outcome = engine.extract(request, ExtractionTask.within(10))
    assert outcome.data == {"name": "Lamp 5", "price": 5.5}
    assert outcome.strategy == "structured-data"
    # Product facts are read from the page first: complete, so no model is needed at all.
    assert [(a.strategy, a.error.code if a.error else None) for a in outcome.attempts] == [
        ("structured-data", None),
    ]
    assert any("no model call" in r for r in outcome.routing)


def test_a_selector_crawl_returns_every_page_with_its_data(fetcher: Fetcher, site: Site) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    request = JobRequest(
        urls=[f"{site.url}/catalog/1"],
        selectors=SELECTORS,
        crawl=CrawlOptions(max_pages=5, max_depth=0),
    )
    outcome = engine.extract(request, ExtractionTask.within(20))
    assert outcome.strategy == "navigation(direct-css)"
    data: Any = outcome.data
    names = [item["name"] for page in data for item in page["data"]]
    assert names == [f"Lamp {i}" for i in range(1, 13)]
    assert all(p.status == "ok" for p in outcome.pages)


def test_a_page_that_cannot_be_fetched_fails_with_the_fetch_code(
    fetcher: Fetcher, site: Site
) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    with pytest.raises(ExtractionError) as caught:
        engine.extract(JobRequest(urls=[f"{site.url}/gone"]), ExtractionTask.within(5))
    assert caught.value.code == "http_error"
    assert not caught.value.retryable


def test_content_jobs_return_main_content_markdown(fetcher: Fetcher, site: Site) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    outcome = engine.extract(JobRequest(urls=[f"{site.url}/product/1"]), ExtractionTask.within(5))
    assert outcome.strategy == "content"
    data: Any = outcome.data
    assert data["title"] == "Lamp 1"
    assert "We use cookies" not in data["markdown"]


def test_a_crawl_keeps_the_pages_it_could_read_when_others_have_no_structured_data(
    fetcher: Fetcher, site: Site
) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    schema: dict[str, Any] = {"type": "object", "properties": {"sku": {"type": "string"}}}
    request = JobRequest(
        urls=[f"{site.url}/product/1", f"{site.url}/imprint", f"{site.url}/product/2"],
        json_schema=schema,
    )
    outcome = engine.extract(request, ExtractionTask.within(10))
    data: Any = outcome.data
    assert [d["data"]["sku"] for d in data] == ["SKU-1", "SKU-2"]
    failed = [p for p in outcome.pages if p.status == "failed"]
    assert [(p.url.rsplit("/", 1)[-1], p.error.code if p.error else None) for p in failed] == [
        ("imprint", "no_structured_data")
    ]

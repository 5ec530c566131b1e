"""Pages built by JavaScript: the data they ship read without running a script, used by the
deterministic strategies and the model view; an empty app shell says why it is empty."""

from __future__ import annotations

import json

import pytest
from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine.engine import Engine
from atlas_codex.engine.pages.fetch import Fetcher
from atlas_codex.engine.reading import hydration, model_view
from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
from atlas_codex.extraction.request import JobRequest
from tests.site import (
    INITIAL_STATE,
    NEXT_STATE,
    NUXT_PAYLOAD,
    PRODUCT_SCHEMA,
    Site,
    app_page,
)


def tree(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def test_next_nuxt_and_window_state_are_read_as_data() -> None:
    next_page = app_page(
        f"<script id='__NEXT_DATA__' type='application/json'>{NEXT_STATE}</script>"
    )
    [state] = hydration.states(tree(next_page))
    assert state.source == "__NEXT_DATA__"
    assert state.data["props"]["pageProps"]["product"]["sku"] == "AUR-7"

    nuxt_page = app_page(
        f"<script type='application/json' id='__NUXT_DATA__'>{NUXT_PAYLOAD}</script>"
    )
    [state] = hydration.states(tree(nuxt_page))
    # devalue's indexes resolved, Nuxt's reactive wrappers unwrapped
    assert state.data == {
        "data": {
            "product-7": {
                "name": "Floor lamp Nova",
                "price": 129,
                "currency": "EUR",
                "sku": "NOV-1",
            }
        },
        "state": {"cart": []},
    }

    script = f"window.__INITIAL_STATE__ = JSON.parse({json.dumps(INITIAL_STATE)});"
    [state] = hydration.states(tree(app_page(f"<script>{script}</script>")))
    assert state.source == "window.__INITIAL_STATE__"
    assert state.data["catalog"]["item"]["salePrice"] == 19.5


@pytest.mark.parametrize(
    "script",
    [
        "window.__STATE__ = loadState();",  # a call: code, not data
        "window.__STATE__ = {a: 1};",  # an object literal that is not JSON
        "window.__STATE__ = JSON.parse(encoded);",  # a variable, not a literal
        "window.__STATE__ = JSON.parse('{\"a\": ');",  # a literal that is not JSON
        'var x = {"not": "assigned to window"};',
    ],
)
def test_code_is_never_taken_for_data(script: str) -> None:
    assert hydration.states(tree(app_page(f"<script>{script}</script>"))) == []


def test_a_single_quoted_json_parse_literal_is_decoded() -> None:
    script = """window.__APOLLO_STATE__ = JSON.parse('{"Product:1":{"name":"Lamp \\\\"Iris\\\\"","sku":"I-1"}}');"""
    [state] = hydration.states(tree(app_page(f"<script>{script}</script>")))
    assert state.data == {"Product:1": {"name": 'Lamp "Iris"', "sku": "I-1"}}


def test_devalue_cycles_and_bad_indexes_do_not_loop_or_crash() -> None:
    assert hydration.unflatten([{"self": 0, "missing": 99, "neg": -1}]) == {
        "self": None,
        "missing": None,
        "neg": None,
    }
    assert hydration.unflatten("not a payload") is None
    assert hydration.unflatten([["Date", "2026-01-01T00:00:00Z"]]) == "2026-01-01T00:00:00Z"
    assert hydration.unflatten([["Map", 1, 2], "k", "v"]) == {"k": "v"}


def test_the_object_answering_most_fields_is_found_anywhere_in_the_state() -> None:
    state = hydration.State(
        "s",
        {
            "layout": {"name": "Shop"},
            "deep": {"x": [{"product": {"name": "A", "price": 1, "sku": "S"}}]},
        },
    )
    [best, *_] = hydration.best_objects([state], ["name", "price", "sku"])
    assert best.value == {"name": "A", "price": 1, "sku": "S"}
    assert best.source == "s.deep.x[0].product"
    assert best.matched == 3


def test_an_app_shell_is_told_from_a_page_with_content() -> None:
    assert hydration.app_shell(tree(app_page())) is not None
    assert "JavaScript" in str(hydration.app_shell(tree(app_page(noscript=True, mount="main"))))
    words = " ".join(["word"] * 200)
    assert (
        hydration.app_shell(tree(f"<html><body><div id='root'><p>{words}</p></div></body></html>"))
        is None
    )
    assert hydration.app_shell(tree(f"<html><body><p>{words}</p></body></html>")) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/app/next",
            {"name": "Desk lamp Aurora", "price": 49.9, "currency": "EUR", "sku": "AUR-7"},
        ),
        (
            "/app/nuxt",
            {"name": "Floor lamp Nova", "price": 129.0, "currency": "EUR", "sku": "NOV-1"},
        ),
        ("/app/state", {"name": "Wall lamp Iris", "price": 19.5, "currency": "USD", "sku": None}),
    ],
)
def test_a_javascript_built_product_page_extracts_without_a_browser_or_a_model(
    fetcher: Fetcher, site: Site, path: str, expected: dict[str, object]
) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    request = JobRequest(urls=[f"{site.url}{path}"], json_schema=PRODUCT_SCHEMA)
    outcome = engine.extract(request, ExtractionTask.within(10))
    assert outcome.data == expected
    [page] = outcome.pages
    assert page.evidence["name"].source is not None
    assert "state" in page.evidence["name"].source  # where it was read, for the client


def test_an_empty_app_shell_fails_saying_the_page_is_built_by_javascript(
    fetcher: Fetcher, site: Site
) -> None:
    engine = Engine(fetcher=fetcher, models_available=False)
    request = JobRequest(urls=[f"{site.url}/app/shell"], json_schema=PRODUCT_SCHEMA)
    with pytest.raises(ExtractionError) as raised:
        engine.extract(request, ExtractionTask.within(10))
    assert "built by JavaScript" in raised.value.message
    assert "renders no page" in raised.value.message


def test_the_model_reads_the_shipped_data_of_a_thin_page() -> None:
    html = app_page(f"<script id='__NEXT_DATA__' type='application/json'>{NEXT_STATE}</script>")
    page = tree(html)
    job = model_view.focus(PRODUCT_SCHEMA, None)
    seen = model_view.view(page, "https://shop.example/p/7", job, main="")
    assert model_view.SHIPPED in seen.markdown
    assert "AUR-7" in seen.markdown
    assert "49.90" in seen.markdown
    # a page with content of its own is read as before
    words = " ".join(f"word{n}" for n in range(400))
    full = f"<html><body><main><p>{words}</p></main>{html[html.index('<script id') :]}"
    seen = model_view.view(tree(full), "https://shop.example/p/7", job, main=words)
    assert model_view.SHIPPED not in seen.markdown

"""Product facts without a model: each source on a small page of its own, prices in their
locales, and the choice between sources that disagree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atlas_codex.engine.facts import product
from atlas_codex.engine.reading.html import metadata, parse

URL = "https://shop.example/p/lamp-7"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "currency": {"type": "string"},
        "sku": {"type": "string"},
        "availability": {"type": "string"},
        "in_stock": {"type": "boolean"},
    },
}


def facts(html: str) -> dict[str, Any]:
    tree = parse(html)
    found = product.extract(tree, metadata(tree, URL), URL, SCHEMA)
    return {k: v for k, v in found.data.items() if v is not None}


def page(head: str = "", body: str = "") -> str:
    return (
        f"<html><head><title>Lamp 7</title>{head}</head><body><h1>Lamp 7</h1>{body}</body></html>"
    )


def jsonld(value: Any) -> str:
    return f"<script type='application/ld+json'>{json.dumps(value)}</script>"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1.234,50 €", 1234.5),
        ("$1,234.50", 1234.5),
        ("23.450 Rs", 23450.0),
        ("₹2,433", 2433.0),
        ("12,-", 12.0),
        ("CHF 1'299.90", 1299.9),
        ("44 890 тг.", 44890.0),
        ("9,99", 9.99),
    ],
)
def test_prices_are_read_in_their_locale(text: str, amount: float) -> None:
    assert product.parse_price(text) == amount


def test_json_ld_in_a_graph_with_a_list_of_offers_and_a_price_specification() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "name": "Lamp 7 | Shop"},
            {
                "@type": "Product",
                "name": "Lamp 7",
                "sku": "L-7",
                "brand": {"@type": "Brand", "name": "Lumen"},
                "offers": [
                    {
                        "@type": "Offer",
                        "priceSpecification": {"price": "49.90", "priceCurrency": "EUR"},
                        "availability": "https://schema.org/OutOfStock",
                    },
                    {"@type": "Offer", "price": 49.9, "availability": "https://schema.org/InStock"},
                ],
            },
        ],
    }
    assert facts(page(jsonld(graph))) == {
        "name": "Lamp 7",
        "price": 49.9,
        "currency": "EUR",
        "sku": "L-7",
        "availability": "InStock",  # one offer in stock: the product is
        "in_stock": True,
    }


def test_an_aggregate_offer_gives_its_low_price_and_a_zero_price_is_no_price() -> None:
    lowest = {
        "@type": "Product",
        "name": "Lamp 7",
        "offers": {"@type": "AggregateOffer", "lowPrice": "19.00", "priceCurrency": "GBP"},
    }
    assert facts(page(jsonld(lowest)))["price"] == 19.0
    on_request = {"@type": "Product", "name": "Lamp 7", "offers": {"price": 0}}
    assert "price" not in facts(page(jsonld(on_request)))


def test_the_pages_own_product_is_chosen_among_several() -> None:
    other = {
        "@type": "Product",
        "name": "Cable 3",
        "url": "https://shop.example/p/cable-3",
        "offers": {"price": "3.00"},
    }
    mine = {"@type": "Product", "name": "Lamp 7", "url": URL, "offers": {"price": "70.00"}}
    assert facts(page(jsonld(other) + jsonld(mine)))["price"] == 70.0


def test_microdata_with_content_attributes_and_a_link_for_availability() -> None:
    body = (
        "<div itemscope itemtype='https://schema.org/Product'><span itemprop='name'>Lamp 7</span>"
        "<span itemprop='sku'>L-7</span><div itemprop='offers' itemscope "
        "itemtype='https://schema.org/Offer'><span itemprop='price' content='1234.50'>1.234,50 €"
        "</span><meta itemprop='priceCurrency' content='EUR'>"
        "<link itemprop='availability' href='https://schema.org/InStock'></div></div>"
    )
    assert facts(page(body=body)) == {
        "name": "Lamp 7",
        "price": 1234.5,
        "currency": "EUR",
        "sku": "L-7",
        "availability": "InStock",
        "in_stock": True,
    }


def test_rdfa_properties_are_read() -> None:
    body = (
        "<div vocab='https://schema.org/' typeof='Product'><span property='name'>Lamp 7</span>"
        "<div property='offers' typeof='Offer'><span property='price' content='15.00'>15 €</span>"
        "<span property='priceCurrency' content='EUR'></span></div></div>"
    )
    found = facts(page(body=body))
    assert found["price"] == 15.0
    assert found["currency"] == "EUR"


def test_product_meta_tags_are_read() -> None:
    head = (
        "<meta property='product:price:amount' content='29.95'>"
        "<meta property='product:price:currency' content='USD'>"
        "<meta property='product:availability' content='out of stock'>"
        "<meta property='product:retailer_item_id' content='L-7'>"
    )
    assert facts(page(head)) == {
        "price": 29.95,
        "currency": "USD",
        "availability": "OutOfStock",
        "sku": "L-7",
        "in_stock": False,
    }


BUY_BOX = (
    "<div class='product'><div class='gallery'><p>Lamp 7 in brass</p></div>"
    "<div class='buy'><span class='price-old'>59,90 €</span>"
    "<span class='price-now'>49,90 €</span><p>Shipping: 4,90 €</p>"
    "<button class='btn'>In den Warenkorb</button></div></div>"
    "<div class='related'><p>Lamp 8</p><span class='price'>99,00 €</span></div>"
)


def test_the_buy_box_price_is_the_one_beside_the_buy_control_not_the_struck_one() -> None:
    found = facts(page(body=BUY_BOX))
    assert found["price"] == 49.9
    assert found["currency"] == "EUR"
    assert found["availability"] == "InStock"


def test_a_sold_out_message_or_a_disabled_control_is_out_of_stock() -> None:
    sold_out = BUY_BOX.replace("<p>Shipping: 4,90 €</p>", "<p>Leider ausverkauft</p>")
    assert facts(page(body=sold_out))["availability"] == "OutOfStock"
    disabled = BUY_BOX.replace("<button class='btn'>", "<button class='btn' disabled>")
    assert facts(page(body=disabled))["in_stock"] is False


def test_without_a_buy_control_no_price_is_guessed_from_the_page() -> None:
    carousel = "<div class='recs'><p>Others bought</p><span class='price'>2,86 €</span></div>"
    assert "price" not in facts(page(body=carousel))


@pytest.mark.parametrize(
    ("body", "sku"),
    [
        ("<p>Product code: 141677</p>", "141677"),
        ("<table><tr><th>ASIN</th><td>B01GOH7PKA</td></tr></table>", "B01GOH7PKA"),
        ("<dl><dt>Art.-Nr.</dt><dd>4711-0815</dd></dl>", "4711-0815"),
        ("<span>Tootekood:</span> 763127", "763127"),
    ],
)
def test_a_product_code_shown_after_its_label(body: str, sku: str) -> None:
    assert facts(page(body=body))["sku"] == sku


def test_a_shown_code_outranks_an_internal_one_and_the_choice_is_recorded() -> None:
    html = page(
        jsonld({"@type": "Product", "name": "Lamp 7", "sku": "236840879"}),
        "<p>Product code: 46286401</p>",
    )
    tree = parse(html)
    found = product.extract(tree, metadata(tree, URL), URL, SCHEMA)
    assert found.data["sku"] == "46286401"
    assert "also seen: 236840879" in found.evidence["sku"].source


def test_a_model_number_is_an_mpn_not_a_sku() -> None:
    tree = parse(page(body="<p>Model number: Z031-BLBL</p>"))
    read = product.read_facts(tree, metadata(tree, URL), URL)
    assert read.values["mpn"].value == "Z031-BLBL"
    assert "sku" not in read.values


def test_which_schemas_ask_for_a_product() -> None:
    assert product.product_fields(SCHEMA)["in_stock"] == "availability"
    assert product.product_fields({"properties": {"Preis": {}, "artikelnummer": {}}}) == {
        "Preis": "price",
        "artikelnummer": "sku",
    }
    assert product.product_fields({"properties": {"title": {}, "author": {}}}) == {}
    assert product.product_fields(product.PRESET_SCHEMA)["gtin"] == "gtin"


def test_shop_systems_embedded_data_is_read() -> None:
    magento = (
        "<span data-price-type='oldPrice' data-price-amount='59.9'>59,90 €</span>"
        "<span data-price-type='finalPrice' data-price-amount='49.9'>49,90 €</span>"
    )
    assert facts(page(body=magento))["price"] == 49.9
    shopify = json.dumps(
        {
            "title": "Lamp 7",
            "vendor": "Lumen",
            "available": True,
            "variants": [{"sku": "L-7-BR", "price": 4990}],
        }
    )
    found = facts(
        page(body=f"<script type='application/json' data-product-json>{shopify}</script>")
    )
    assert (found["price"], found["sku"], found["availability"]) == (49.9, "L-7-BR", "InStock")
    variations = json.dumps(
        [
            {"sku": "L-7", "display_price": 19.5, "is_in_stock": False},
            {"sku": "L-7-XL", "display_price": 24.5, "is_in_stock": True},
        ]
    ).replace('"', "&quot;")
    woo = facts(
        page(body=f"<form class='variations_form' data-product_variations=\"{variations}\"></form>")
    )
    assert (woo["price"], woo["sku"], woo["availability"]) == (19.5, "L-7", "InStock")

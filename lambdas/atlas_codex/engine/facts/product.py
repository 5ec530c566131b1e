"""Product facts without a model: name, price, currency, SKU, availability, brand, GTIN, MPN.

Read from what pages publish for machines first, then from what they show people:

1. JSON-LD ``Product`` nodes anywhere in the page's blocks (``@graph``, nested entities),
   with ``offers`` as an object or a list, ``AggregateOffer`` (``lowPrice``) and
   ``priceSpecification``;
2. microdata (``itemprop`` with ``content`` attributes, nested ``Offer`` items) and RDFa
   (``property`` attributes);
3. product meta tags (``product:price:amount``, ``og:price:amount``, ``product:availability``,
   ``product:retailer_item_id``), and the data shop systems embed (Magento's price boxes,
   Shopify's product JSON, WooCommerce's variations);
4. the visible buy box, last: the price shown next to the add-to-cart control (struck list
   prices skipped), the stock state of that control and the page's stock messages, and
   labelled product codes ("SKU:", "Art.-Nr.", "Product code", ...).

Each value keeps its source and path; when sources disagree the first by rank serves and the
disagreement is recorded. Rules name formats and vocabularies, never a site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from selectolax.lexbor import LexborHTMLParser, LexborNode

from atlas_codex.engine.facts.direct import Extraction, extract_structured
from atlas_codex.engine.reading import hydration
from atlas_codex.engine.reading.html import Metadata, words
from atlas_codex.extraction.result import Evidence
from atlas_codex.ground.presets import AVAILABILITY, schema_of

FIELDS: Final = ("name", "price", "currency", "sku", "availability", "brand", "gtin", "mpn")
SOURCE_RANK: Final = (
    "json-ld",
    "microdata",
    "rdfa",
    "meta",
    "platform",
    "state",
    "buy-box",
    "page-label",
)
"""Where a fact may come from, in the order :func:`read_facts` ranks them; a SKU written
after its label on the page ("page-label") outranks them all."""

# ------------------------------------------------------------------ which fields a job asks

_FIELD_NAMES: Final[Mapping[str, re.Pattern[str]]] = {
    "price": re.compile(
        r"^(price|cost|amount|(current|sale|offer|final|our|selling)price|preis|prix|precio|"
        r"preco|prezzo|prijs|cena|kaina|cijena|hinta|fiyat|pris|цена|price(amount|value))$"
    ),
    "currency": re.compile(
        r"^(currency|pricecurrency|currencycode|wahrung|waehrung|devise|moneda)$"
    ),
    "sku": re.compile(
        r"^(sku|skuid|productcode|itemnumber|itemno|articlenumber|artikelnummer|artnr|"
        r"reference|ref|productreference|partnumber|productid|retaileritemid|codigo|codice)$"
    ),
    "availability": re.compile(
        r"^(availability|available|instock|isinstock|stock|stockstatus|inventorystatus|"
        r"verfugbarkeit|verfuegbarkeit|disponibilite|disponibilidad|disponibilita)$"
    ),
    "name": re.compile(r"^(name|title|productname|producttitle|nombre|nom|titel|titolo)$"),
    "brand": re.compile(r"^(brand|brandname|manufacturer|marke|marque|marca|hersteller)$"),
    "gtin": re.compile(r"^(gtin|gtin8|gtin12|gtin13|gtin14|ean|ean13|upc|isbn|barcode)$"),
    "mpn": re.compile(r"^(mpn|model|modelnumber|manufacturerpartnumber|modelno)$"),
}
_PRODUCT_TYPE: Final = re.compile(
    r"(^|/)(Product|ProductGroup|IndividualProduct|ProductModel|"
    r"SomeProducts|Book|Vehicle|Car)$",
    re.I,
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("ä", "a").replace("ü", "u"))


def product_fields(schema: Mapping[str, Any] | None) -> dict[str, str]:
    """The schema's top-level properties that are product facts: {property: fact}. A
    schema asks for a product when it names a price, a SKU or a stock state this way."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return {}
    found: dict[str, str] = {}
    for prop in properties:
        key = _key(str(prop))
        for fact, pattern in _FIELD_NAMES.items():
            if pattern.match(key):
                found[str(prop)] = fact
                break
    if not {"price", "sku", "availability"} & set(found.values()):
        return {}
    return found


PRESET_SCHEMA: Final = schema_of("product")
"""The built-in ``product`` preset (``atlas_codex.ground.presets``): every fact this module reads."""

# ------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class Candidate:
    fact: str
    value: Any
    source: str
    """One of :data:`SOURCE_RANK`."""
    path: str
    """Where in the source: a JSON-LD path, an itemprop, a meta name, a CSS-like path."""


@dataclass
class ProductFacts:
    values: dict[str, Candidate] = field(default_factory=dict)
    """The chosen value of each fact found."""
    notes: list[str] = field(default_factory=list)
    """Choices made between sources that disagreed."""


_CURRENCY_SIGNS: Final[Mapping[str, str]] = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "₫": "VND",
    "฿": "THB",
    "₱": "PHP",
    "₸": "KZT",
    "₴": "UAH",
    "₦": "NGN",
    "zł": "PLN",
    "kč": "CZK",
    "ft": "HUF",
    "lei": "RON",
    "лв": "BGN",
    "руб": "RUB",
    "р.": "RUB",
    "тг": "KZT",
    "грн": "UAH",
    "kn": "HRK",
    "rs": "INR",
    "rs.": "INR",
    "rp": "IDR",
    "rm": "MYR",
    "us$": "USD",
    "nt$": "TWD",
    "hk$": "HKD",
    "s$": "SGD",
    "a$": "AUD",
    "c$": "CAD",
    "r$": "BRL",
    "ر.س": "SAR",
    "د.إ": "AED",
    "б.р.": "BYN",
}
_ISO: Final = re.compile(r"^[A-Z]{3}$")
_AMOUNT: Final = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:[.,\s\u00a0\u202f']\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?![\d])"
)


def parse_price(text: str) -> float | None:
    """A price from text as shops print it: ``1.234,50 €``, ``$1,234.50``, ``23.450 Rs``,
    ``₹2,433``, ``12,-``. The decimal mark is the last separator followed by 1-2 digits."""
    match = _AMOUNT.search(text.replace("\u2009", " "))
    if match is None:
        return None
    raw = re.sub(r"[\s\u00a0\u202f']", "", match[1])
    last = max(raw.rfind("."), raw.rfind(","))
    if last >= 0 and len(raw) - last - 1 in (1, 2):
        whole, cents = raw[:last], raw[last + 1 :]
        raw = re.sub(r"[.,]", "", whole) + "." + cents
    else:
        raw = re.sub(r"[.,]", "", raw)
    try:
        return round(float(raw), 2)
    except ValueError:
        return None


def currency_code(text: str | None) -> str | None:
    """ISO 4217 from a code or a sign that names one currency (``$`` alone does not)."""
    if not text:
        return None
    cleaned = text.strip()
    if _ISO.match(cleaned.upper()) and cleaned.isalpha() and len(cleaned) == 3:
        return cleaned.upper()
    return _CURRENCY_SIGNS.get(cleaned.lower())


_AVAILABILITY: Final = (*AVAILABILITY, "SoldOut", "PreSale")
"""The values read (a page's "SoldOut" is OutOfStock)."""


def availability_value(value: Any) -> str | None:
    """A schema.org ItemAvailability name from a URL, a name, or a boolean."""
    if isinstance(value, bool):
        return "InStock" if value else "OutOfStock"
    if not isinstance(value, str):
        return None
    word = value.strip().rstrip("/").rsplit("/", 1)[-1].replace(" ", "").replace("_", "")
    for name in _AVAILABILITY:
        if word.lower() == name.lower():
            return "OutOfStock" if name == "SoldOut" else name
    lowered = word.lower()
    if lowered in ("true", "yes", "instock", "available", "1"):
        return "InStock"
    if lowered in ("false", "no", "outofstock", "unavailable", "0"):
        return "OutOfStock"
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("name") or value.get("@id")
    if isinstance(value, list):
        value = next((v for v in value if v not in (None, "")), None)
        return _text(value)
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def _price_value(value: Any) -> float | None:
    """A structured price; zero is "on request" or a placeholder, not a price."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(float(value), 2) if value > 0 else None
    if isinstance(value, str):
        # Structured data writes a plain number ("1234.50"); some write "1.234,50".
        if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
            return round(float(value), 2) if float(value) > 0 else None
        return parse_price(value) or None
    return None


# ------------------------------------------------------------------- structured sources


def _types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("@type")
    return [str(k) for k in (kind if isinstance(kind, list) else [kind]) if k]


def _walk_jsonld(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if depth > 8:
        return
    if isinstance(value, Mapping):
        if any(_PRODUCT_TYPE.search(t) for t in _types(value)):
            yield path, value
        for key, sub in value.items():
            if key in ("offers", "isSimilarTo", "isRelatedTo", "isAccessoryOrSparePartFor"):
                continue  # another product's facts are not this one's
            yield from _walk_jsonld(sub, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for n, sub in enumerate(value):
            yield from _walk_jsonld(sub, f"{path}[{n}]", depth + 1)


def _offers(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    offers = node.get("offers")
    items = offers if isinstance(offers, list) else [offers]
    out: list[Mapping[str, Any]] = []
    for offer in items:
        if not isinstance(offer, Mapping):
            continue
        nested = offer.get("offers")  # an AggregateOffer listing its offers
        out.append(offer)
        if isinstance(nested, list):
            out.extend(o for o in nested if isinstance(o, Mapping))
    return out


def _from_item(item: Mapping[str, Any], source: str, where: str) -> Iterator[Candidate]:
    """The facts of one Product item (JSON-LD or microdata)."""
    name = _text(item.get("name"))
    if name:
        yield Candidate("name", name, source, f"{where}.name")
    brand = _text(item.get("brand") or item.get("manufacturer"))
    if brand:
        yield Candidate("brand", brand, source, f"{where}.brand")
    for key in ("sku", "productID", "productId"):
        sku = _text(item.get(key))
        if sku:
            yield Candidate("sku", sku.removeprefix("sku:").strip(), source, f"{where}.{key}")
            break
    for key in ("gtin13", "gtin", "gtin12", "gtin14", "gtin8", "isbn"):
        gtin = _text(item.get(key))
        if gtin:
            yield Candidate("gtin", gtin, source, f"{where}.{key}")
            break
    mpn = _text(item.get("mpn"))
    if mpn:
        yield Candidate("mpn", mpn, source, f"{where}.mpn")
    for n, offer in enumerate(_offers(item)):
        at = f"{where}.offers[{n}]"
        price, price_key = None, ""
        for key in ("price", "lowPrice"):
            price = _price_value(_first(offer.get(key)))
            if price is not None:
                price_key = key
                break
        spec = offer.get("priceSpecification")
        specs = spec if isinstance(spec, list) else [spec]
        if price is None:
            for m, entry in enumerate(s for s in specs if isinstance(s, Mapping)):
                price = _price_value(_first(entry.get("price")))
                if price is not None:
                    price_key = f"priceSpecification[{m}].price"
                    currency = _text(entry.get("priceCurrency"))
                    if currency:
                        yield Candidate("currency", currency, source, f"{at}.priceSpecification")
                    break
        if price is not None:
            yield Candidate("price", price, source, f"{at}.{price_key}")
        currency = _text(offer.get("priceCurrency"))
        if currency:
            yield Candidate("currency", currency, source, f"{at}.priceCurrency")
        stock = availability_value(_text(offer.get("availability")))
        if stock:
            yield Candidate("availability", stock, source, f"{at}.availability")
        sku = _text(offer.get("sku"))
        if sku:
            yield Candidate("sku", sku, source, f"{at}.sku")
    # Microdata and some JSON-LD put offer fields on the product itself.
    for key, fact in (
        ("price", "price"),
        ("priceCurrency", "currency"),
        ("availability", "availability"),
    ):
        raw = _first(item.get(key))
        if raw is None:
            continue
        value = (
            _price_value(raw)
            if fact == "price"
            else availability_value(_text(raw))
            if fact == "availability"
            else _text(raw)
        )
        if value is not None:
            yield Candidate(fact, value, source, f"{where}.{key}")


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _jsonld(meta: Metadata, page_url: str, title: str) -> Iterator[Candidate]:
    products = [
        (f"json-ld[{i}]{path}", node)
        for i, block in enumerate(meta.json_ld)
        for path, node in _walk_jsonld(block, "")
    ]
    if not products:
        return

    # The page's own product: the one whose address is the page's, else whose name the
    # title or heading carries, else the first with an offer.
    def fit(entry: tuple[str, Mapping[str, Any]]) -> tuple[int, int, int]:
        _, node = entry
        url = str(node.get("url") or node.get("@id") or "")
        name = (_text(node.get("name")) or "").lower()
        return (
            0 if url and page_url and url.split("#")[0].rstrip("/") == page_url.rstrip("/") else 1,
            0 if name and name[:40] in title else 1,
            0 if _offers(node) else 1,
        )

    where, node = min(products, key=fit)
    yield from _from_item(node, "json-ld", where)


def _microdata(meta: Metadata) -> Iterator[Candidate]:
    for i, item in enumerate(meta.microdata):
        kind = str(item.get("@type") or "")
        if _PRODUCT_TYPE.search(kind):
            yield from _from_item(item, "microdata", f"microdata[{i}]")
        elif kind in ("Offer", "AggregateOffer"):
            yield from _from_item({"offers": item}, "microdata", f"microdata[{i}]")


def _rdfa(tree: LexborHTMLParser) -> Iterator[Candidate]:
    """``property="schema:price"``-style attributes (RDFa Lite), outside <meta>."""
    for node in tree.css("[property]:not(meta)"):
        prop = (node.attributes.get("property") or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        raw = node.attributes.get("content") or node.attributes.get("href") or words(node)
        if not raw:
            continue
        if prop == "price":
            price = _price_value(raw)
            if price is not None:
                yield Candidate("price", price, "rdfa", f"[property={prop}]")
        elif prop == "priceCurrency":
            yield Candidate("currency", raw.strip(), "rdfa", "[property=priceCurrency]")
        elif prop == "availability":
            stock = availability_value(raw)
            if stock:
                yield Candidate("availability", stock, "rdfa", "[property=availability]")
        elif prop in ("sku", "productID"):
            yield Candidate("sku", raw.strip(), "rdfa", f"[property={prop}]")


_META: Final = (
    ("product:price:amount", "price"),
    ("og:price:amount", "price"),
    ("product:price:currency", "currency"),
    ("og:price:currency", "currency"),
    ("product:availability", "availability"),
    ("og:availability", "availability"),
    ("product:retailer_item_id", "sku"),
    ("product:sku", "sku"),
    ("product:brand", "brand"),
    ("og:brand", "brand"),
)


def _meta(meta: Metadata) -> Iterator[Candidate]:
    for name, fact in _META:
        raw = meta.opengraph.get(name)
        if not raw:
            continue
        value: Any = raw.strip()
        if fact == "price":
            value = _price_value(raw)
        elif fact == "availability":
            value = availability_value(
                raw.replace("in stock", "InStock").replace("out of stock", "OutOfStock")
            )
        if value is not None:
            yield Candidate(fact, value, "meta", name)


# ------------------------------------------------------- a JavaScript app's shipped state

STATE_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "name": ("name", "title", "productName"),
    "price": ("price", "salePrice", "currentPrice", "finalPrice", "sellingPrice", "offerPrice"),
    "currency": ("currency", "priceCurrency", "currencyCode"),
    "sku": ("sku", "productId", "productID"),
    "brand": ("brand", "manufacturer", "brandName"),
    "availability": ("availability", "stockStatus", "inStock", "isInStock", "available"),
    "gtin": ("gtin", "gtin13", "ean", "upc"),
    "mpn": ("mpn",),
}
"""The keys a shipped state's product object names its facts with (compared without case
or punctuation); the first key present serves."""


def _state_value(obj: Mapping[str, Any], fact: str) -> tuple[Any, str] | None:
    keys = {_key(k): k for k in obj}
    for name in STATE_KEYS[fact]:
        key = keys.get(_key(name))
        if key is not None and obj[key] not in (None, "", [], {}):
            return obj[key], key
    return None


def _state_price(value: Any) -> tuple[float | None, str | None]:
    """A price and, when it says, its currency: a number, a string, or an object such as
    ``{"amount": "12.50", "currencyCode": "USD"}``."""
    if isinstance(value, Mapping):
        currency = _text(value.get("currency") or value.get("currencyCode"))
        for key in ("value", "amount", "current", "raw", "price", "formatted"):
            price = _price_value(value.get(key))
            if price is not None:
                return price, currency
        return None, currency
    return _price_value(_first(value)), None


def _state(meta: Metadata) -> Iterator[Candidate]:
    """The product a JavaScript app ships for its first screen (``__NEXT_DATA__``, Nuxt's
    payload, ``window.__INITIAL_STATE__``...): the object with the most product keys that
    has both a price and a name."""
    if not meta.states:
        return
    for found in hydration.best_objects(meta.states, list(STATE_KEYS.values()), limit=5):
        obj = found.value
        price_at = _state_value(obj, "price")
        name_at = _state_value(obj, "name")
        if price_at is None or name_at is None:
            continue
        price, currency = _state_price(price_at[0])
        name = _text(name_at[0])
        if price is None or not name:
            continue
        yield Candidate("name", name, "state", f"{found.source}.{name_at[1]}")
        yield Candidate("price", price, "state", f"{found.source}.{price_at[1]}")
        if currency:
            yield Candidate("currency", currency, "state", f"{found.source}.{price_at[1]}")
        for fact in ("currency", "sku", "brand", "gtin", "mpn"):
            at = _state_value(obj, fact)
            text = _text(at[0]) if at is not None else None
            if at is not None and text:
                yield Candidate(fact, text, "state", f"{found.source}.{at[1]}")
        stock = _state_value(obj, "availability")
        value = availability_value(stock[0]) if stock is not None else None
        if stock is not None and value is not None:
            yield Candidate("availability", value, "state", f"{found.source}.{stock[1]}")
        return


# ------------------------------------------------------------- shop systems' own data


def _platform(tree: LexborHTMLParser) -> Iterator[Candidate]:
    """Product data that widespread shop systems embed in their pages: Magento's price
    boxes (``data-price-type="finalPrice"``), Shopify's product JSON, WooCommerce's
    variations (``data-product_variations``)."""
    for node in tree.css("[data-price-type=finalPrice][data-price-amount]"):
        price = _price_value(node.attributes.get("data-price-amount"))
        if price is not None:
            yield Candidate("price", price, "platform", "Magento finalPrice")
            break
    for script in tree.css(
        "script[type='application/json'][data-product-json], "
        "script[type='application/json'][id^=ProductJson]"
    ):
        try:
            shopify = json.loads(script.text(deep=True) or "")
        except ValueError:
            continue
        if isinstance(shopify, Mapping):
            yield from _shopify(shopify)
            break
    form = tree.css_first("form[data-product_variations]")
    if form is not None:
        try:
            variations = json.loads(form.attributes.get("data-product_variations") or "")
        except ValueError:
            variations = None
        if isinstance(variations, list) and variations and isinstance(variations[0], Mapping):
            first = variations[0]
            price = _price_value(first.get("display_price"))
            if price is not None:
                yield Candidate("price", price, "platform", "WooCommerce variation display_price")
            if _text(first.get("sku")):
                yield Candidate("sku", _text(first.get("sku")), "platform", "WooCommerce sku")
            if isinstance(first.get("is_in_stock"), bool):
                stock = (
                    "InStock"
                    if any(isinstance(v, Mapping) and v.get("is_in_stock") for v in variations)
                    else "OutOfStock"
                )
                yield Candidate("availability", stock, "platform", "WooCommerce is_in_stock")


def _shopify(data: Mapping[str, Any]) -> Iterator[Candidate]:
    """Shopify's product JSON: prices in cents, variants with sku and availability."""
    variants = [v for v in data.get("variants") or [] if isinstance(v, Mapping)]
    first = variants[0] if variants else data
    cents = first.get("price", data.get("price"))
    if isinstance(cents, int | float) and not isinstance(cents, bool) and cents > 0:
        yield Candidate("price", round(cents / 100, 2), "platform", "Shopify product JSON price")
    if _text(first.get("sku")):
        yield Candidate("sku", _text(first.get("sku")), "platform", "Shopify variant sku")
    available = data.get("available")
    if isinstance(available, bool):
        yield Candidate(
            "availability", "InStock" if available else "OutOfStock", "platform", "Shopify"
        )
    if _text(data.get("title")):
        yield Candidate("name", _text(data.get("title")), "platform", "Shopify title")
    if _text(data.get("vendor")):
        yield Candidate("brand", _text(data.get("vendor")), "platform", "Shopify vendor")


# -------------------------------------------------------------------------- the buy box

_BUY: Final = re.compile(
    r"add[\s_-]?to[\s_-]?(cart|basket|bag|trolley)|buy[\s_-]?now|\bbuy\b|in den warenkorb|"
    r"warenkorb|ajouter au panier|añadir al carrito|anadir al carrito|agregar al carrito|"
    r"aggiungi al carrello|in winkelwagen|do koszyka|do košíku|kosárba|în coș|adaugă în coș|"
    r"в корзину|купить|sepete ekle|lägg i varukorg|læg i kurv|legg i handlekurv|"
    r"lisää ostoskoriin|pievienot grozam|į krepšelį|ostukorvi|カートに入れる|加入购物车|"
    r"加入購物車|立即購買|立即购买|马上购买|장바구니|הוסף לסל|أضف إلى السلة|comprar|acheter|kaufen|"
    r"koop|naroči|naroci|kupi|u košaricu|v košarico|do košíku|vložit do košíku|"
    r"(^|[\s_-])(button-cart|btn-cart|cart-btn|cart-button|add-?cart|addtocart|add_to_cart|"
    r"addtobasket|add-to-basket|buy-?btn|btn-?buy|buy-button)($|[\s_-])",
    re.I,
)
_SOLD_OUT: Final = re.compile(
    r"out of stock|sold out|currently unavailable|no longer available|"
    r"ausverkauft|nicht (mehr )?(verfügbar|lieferbar|auf lager)|épuisé|en rupture|rupture de stock|"
    r"agotado|sin stock|no disponible|esaurito|non disponibile|uitverkocht|niet op voorraad|"
    r"niedostępny|wyprzedany|vyprodáno|nincs készleten|stoc epuizat|нет в наличии|"
    r"распродано|немає в наявності|stokta yok|tükendi|slutsåld|udsolgt|utsolgt|loppuunmyyty|"
    r"在庫切れ|缺货|售完|품절|אזל מהמלאי|غير متوفر|نفذت الكمية",
    re.I,
)
_STRUCK_NAME: Final = re.compile(
    r"(old|was|regular|list|before|strike|compare|original|rrp|uvp|msrp|crossed)[-_]?price|"
    r"price[-_]?(old|was|regular|list|before|original|compare|strike|crossed)",
    re.I,
)
_NOT_THE_PRICE: Final = re.compile(
    r"^\s*(was|rrp|uvp|statt|before|list price|regular price|antes|avant|prima|было|"
    r"total|subtotal|shipping|delivery|save|you save|sparen|économisez|ahorra|risparmi)\b|"
    r"shipping|delivery|versand|livraison|envío|spedizione|доставка|per month|/month|"
    r"monthly|a month|mensual|par mois|pro monat|al mese|in \d+ (installments|rate)|"
    r"/\s*(\d+\s*)?(unit|unità|unidad|unité|stück|stk|kg|g|l|ml|m|m²|piece|pièce|pezzo)\b|"
    r"per (unit|kg|litre|liter)",
    re.I,
)
_STRUCK: Final = re.compile(
    r"(^|[-_\s])(old|was|regular|list|before|strike|compare|original|rrp|uvp|msrp)"
    r"([-_\s]|price|$)",
    re.I,
)
_PRICE_CLASS: Final = re.compile(r"price|preis|prix|precio|prezzo|cena|kaina|cijena|fiyat", re.I)
_CURRENCY_TEXT: Final = re.compile(
    r"[$€£¥₹₩₽₺₪₫฿₱₸₴₦]|(?<![A-Za-z])(?:USD|EUR|GBP|JPY|INR|CHF|SEK|NOK|DKK|PLN|CZK|HUF|RON|"
    r"BGN|RUB|UAH|KZT|TRY|BRL|MXN|ARS|CLP|COP|PEN|CAD|AUD|NZD|ZAR|CNY|HKD|TWD|SGD|MYR|THB|"
    r"IDR|PHP|VND|KRW|PKR|AED|SAR|ILS|HRK|kn|kr|zł|Kč|Ft|lei|лв|руб|тг|грн|Rs\.?|Rp|RM|"
    r"ر\.س|د\.إ|б\.р\.|р\.)(?![A-Za-z])",
)
_SKU_LABELS: Final = (
    r"sku|asin|item (?:number|no\.?|#)|item code|product (?:code|number|no\.?|id)|web code|"
    r"article (?:number|no\.?)|art(?:ikel)?[\s.-]*(?:nr|no|nummer|number)\.?|artikelnummer|"
    r"bestell[\s-]?(?:nr|nummer)\.?|tootekood|код(?: товара)?|артикул|cod(?:ice)?(?: produs| articolo)?|"
    r"código|kod produktu|numer katalogowy|קוד מוצר|réf(?:érence)?\.?|ref(?:erence)?\.?"
)
_MPN_LABELS: Final = r"model (?:number|no\.?)|part (?:number|no\.?)|mpn|manufacturer part number"
_CODE_VALUE: Final = r"[A-Za-z0-9][\w./-]{2,30}"
_LABEL_ALONE: Final = re.compile(
    rf"^\s*(?:(?P<sku>{_SKU_LABELS})|(?P<mpn>{_MPN_LABELS}))\s*[:#.]?\s*$", re.I
)
_LABEL_INLINE: Final = re.compile(
    rf"(?:^|(?<=\W))(?:(?P<sku>{_SKU_LABELS})|(?P<mpn>{_MPN_LABELS}))\s*[:#]\s*(?P<value>{_CODE_VALUE})",
    re.I,
)
MAX_BUY_BOX_LEVELS: Final = 6
LABEL_TEXT_MAX_CHARS: Final = 80
PRICE_TEXT_MAX_CHARS: Final = 40
PRICE_SEARCH_NODES: Final = 1500
"""How far (in elements, document order) from the buy control a shown price is looked for."""
STOCK_MESSAGE_MAX_CHARS: Final = 80
MAX_BUY_BOX_CHARS: Final = 3000


def _controls(tree: LexborHTMLParser) -> list[LexborNode]:
    found = []
    for node in tree.css("button, input[type=submit], input[type=button], a, [role=button]"):
        label = " ".join(
            filter(
                None,
                (
                    words(node),
                    node.attributes.get("value"),
                    node.attributes.get("aria-label"),
                    node.attributes.get("title"),
                    node.attributes.get("name"),
                    node.attributes.get("id"),
                    node.attributes.get("class"),
                ),
            )
        )
        if label and _BUY.search(label) and len(words(node)) < 60:
            found.append(node)
    return found


def _struck(node: LexborNode, stop: LexborNode) -> bool:
    current: LexborNode | None = node
    while current is not None and current is not stop:
        if current.tag in ("del", "s", "strike"):
            return True
        names = f"{current.attributes.get('class') or ''} {current.attributes.get('id') or ''}"
        if _STRUCK.search(names) or _STRUCK_NAME.search(names):
            return True
        style = current.attributes.get("style") or ""
        if "line-through" in style:
            return True
        current = current.parent
    return False


def _shown_price(node: LexborNode, named: bool) -> tuple[float, str | None] | None:
    """The price ``node`` shows, if it is one: a short text with an amount and a currency
    sign, or an amount in an element the shop names as a price."""
    text = words(node)
    if not text or len(text) > PRICE_TEXT_MAX_CHARS or _NOT_THE_PRICE.search(text):
        return None
    if any(_struck(inner, node) for inner in node.css("del, s, strike, [class], [style]")):
        return None  # a box holding a struck list price: its own price is read inside it
    sign = _CURRENCY_TEXT.search(text)
    if sign is None and not named:
        return None
    amount = parse_price(text)
    if amount is None or amount <= 0:
        return None
    return amount, sign[0] if sign else None


def _nearest_price(
    tree: LexborHTMLParser, anchor: LexborNode
) -> tuple[Candidate, str | None] | None:
    """The shown price nearest the anchor (the buy control) in document order, struck list
    prices skipped; a shop's own price element first; before the anchor wins a tie."""
    if tree.body is None:
        return None
    order: list[LexborNode] = list(tree.body.traverse(include_text=False))
    at = next((n for n, node in enumerate(order) if node.mem_id == anchor.mem_id), None)
    if at is None:
        return None
    best: tuple[int, int, float, str | None, str] | None = None
    low, high = max(0, at - PRICE_SEARCH_NODES), min(len(order), at + PRICE_SEARCH_NODES)
    for n in range(low, high):
        node = order[n]
        names = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        named = bool(_PRICE_CLASS.search(names))
        shown = _shown_price(node, named)
        if shown is None or _struck(node, tree.body):
            continue
        # A shop's own price element first, then the nearest; before the anchor wins a tie.
        rank = (0 if named else 1, (at - n) * 2 if n <= at else (n - at) * 2 + 1)
        if best is None or rank < best[:2]:
            where = "a price element" if named else "a price shown"
            best = (*rank, shown[0], shown[1], where)
    if best is None:
        return None
    _, _, amount, sign, where = best
    return Candidate("price", amount, "buy-box", f"{where} nearest the buy control"), sign


def _buy_box(tree: LexborHTMLParser) -> Iterator[Candidate]:
    """The price shown nearest the buy control, and the stock state of that control and of
    the messages around it (a page-wide search finds other items' and
    images' "not available")."""
    controls = _controls(tree)
    # Without a buy control the product may not be for sale: a price near the heading was
    # measured to be another item's (a carousel's) more often than its own.
    if controls:
        shown = _nearest_price(tree, controls[0])
        if shown is not None:
            price, sign = shown
            yield price
            code = currency_code(sign)
            if code:
                yield Candidate("currency", code, "buy-box", f"the price's sign {sign!r}")
    if controls:
        control = controls[0]
        disabled = "disabled" in control.attributes or (
            control.attributes.get("aria-disabled") == "true"
        )
        message = _stock_message(_box_of(control))
        if disabled or message:
            why = f"stock message {message!r}" if message else "the buy control is disabled"
            yield Candidate("availability", "OutOfStock", "buy-box", why)
        else:
            yield Candidate("availability", "InStock", "buy-box", "an enabled buy control")


def _box_of(control: LexborNode) -> LexborNode | None:
    """The buy box: the largest ancestor of the control under MAX_BUY_BOX_CHARS of text."""
    box, parent = None, control.parent
    for _ in range(MAX_BUY_BOX_LEVELS):
        if parent is None or len(words(parent)) > MAX_BUY_BOX_CHARS:
            break
        box, parent = parent, parent.parent
    return box


def _stock_message(box: LexborNode | None) -> str | None:
    """A short "sold out" line inside the buy box."""
    if box is None:
        return None
    for node in box.css("*"):
        text = words(node)
        if text and len(text) <= STOCK_MESSAGE_MAX_CHARS:
            found = _SOLD_OUT.search(text)
            if found:
                return found[0]
    return None


def _labelled_codes(tree: LexborHTMLParser) -> Iterator[Candidate]:
    """Product codes written after their label, the first of each kind: "SKU: 123", "ASIN"
    and its cell, "Product code: 141677"; model and part numbers are MPNs, not SKUs."""
    found: set[str] = set()
    for node in tree.css("th, dt, td, span, div, li, p, strong, b, label"):
        text = words(node)
        if not text or len(text) > LABEL_TEXT_MAX_CHARS:
            continue
        inline = _LABEL_INLINE.search(text)
        if inline is not None:
            fact = "sku" if inline["sku"] else "mpn"
            label, value = inline["sku"] or inline["mpn"], inline["value"].rstrip(".,;")
        else:
            alone = _LABEL_ALONE.match(text)
            if alone is None:
                continue
            fact = "sku" if alone["sku"] else "mpn"
            label, value = alone["sku"] or alone["mpn"], _value_after(node)
            if not value or not re.fullmatch(_CODE_VALUE, value):
                continue
        if fact in found or not any(ch.isdigit() for ch in value):
            continue
        found.add(fact)
        yield Candidate(fact, value, "page-label", f"label {label!r}")
        if found == {"sku", "mpn"}:
            return


def _value_after(label: LexborNode) -> str:
    """The text that follows a label: its next sibling's, or the next cell's."""
    sibling = label.next
    while sibling is not None:
        if sibling.tag == "-text":
            text = (sibling.text_content or "").strip()
            if text:
                return text
        elif words(sibling):
            return words(sibling)
        sibling = sibling.next
    return ""


# ---------------------------------------------------------------------------- choosing


def read_facts(tree: LexborHTMLParser, meta: Metadata, page_url: str) -> ProductFacts:
    """Every fact found, the first source by rank serving, disagreements noted."""
    heading = tree.css_first("h1")
    title = " ".join(filter(None, (meta.title, words(heading) if heading else None))).lower()
    candidates: list[Candidate] = [
        *_jsonld(meta, page_url, title),
        *_microdata(meta),
        *_rdfa(tree),
        *_meta(meta),
        *_platform(tree),
        *_state(meta),
    ]
    structured = {c.fact for c in candidates}
    # The code a shop shows its customers next to its label is what people mean by the
    # SKU; structured data often carries an internal one.
    labelled = list(_labelled_codes(tree))
    candidates = [c for c in labelled if c.fact == "sku"] + candidates
    candidates += [c for c in labelled if c.fact != "sku" and c.fact not in structured]
    if not {"price", "availability"} <= structured:
        candidates += [c for c in _buy_box(tree) if c.fact not in structured]
    facts = ProductFacts()
    for fact in FIELDS:
        mine = [c for c in candidates if c.fact == fact]
        if fact == "currency":
            mine = [
                Candidate(c.fact, code, c.source, c.path)
                for c in mine
                if (code := currency_code(str(c.value))) is not None
            ]
        if not mine:
            continue
        chosen = mine[0]
        if fact == "availability" and chosen.source == mine[0].source:
            # A product with several offers (variants, sellers) is in stock if one is.
            same = [c for c in mine if c.source == chosen.source]
            chosen = next((c for c in same if c.value == "InStock"), chosen)
        facts.values[fact] = chosen
        others = sorted({str(c.value) for c in mine if c.value != chosen.value})
        if others:
            facts.notes.append(
                f"{fact}: {chosen.value} from {chosen.source} ({chosen.path}); "
                f"also seen: {', '.join(others[:3])}"
            )
    return facts


def typed(fact: str, value: Any, schema: Mapping[str, Any]) -> Any:
    """A fact in the type the client's property asks for (``in_stock: boolean`` from an
    availability; a price as a string when the schema wants one)."""
    kind = schema.get("type")
    kinds = set(kind if isinstance(kind, list) else [kind])
    if fact == "availability" and "boolean" in kinds:
        return value in ("InStock", "LimitedAvailability", "OnlineOnly", "InStoreOnly", "PreOrder")
    if fact == "price" and "string" in kinds and not kinds & {"number", "integer"}:
        return f"{value:.2f}"
    if fact == "price" and "integer" in kinds and "number" not in kinds:
        return round(value)
    if isinstance(value, int | float) and "string" in kinds:
        return str(value)
    return value


def facts_for(
    schema: Mapping[str, Any] | None, facts: ProductFacts
) -> Iterable[tuple[str, Candidate]]:
    """(property, candidate) for each property of the schema that a fact answers."""
    for prop, fact in product_fields(schema).items():
        if fact in facts.values:
            yield prop, facts.values[fact]


def extract(
    tree: LexborHTMLParser, meta: Metadata, page_url: str, schema: Mapping[str, Any]
) -> Extraction:
    """The structured-data strategy: schema properties by name from JSON-LD, microdata,
    OpenGraph and meta tags, and, when the schema asks for a product, its facts read as
    above (they replace what the name match found for those properties)."""
    found = extract_structured(meta, schema)
    asked = product_fields(schema)
    if not asked:
        return found
    facts = read_facts(tree, meta, page_url)
    properties = schema.get("properties", {})
    for prop in asked:  # a product fact comes from the reader or not at all
        found.data[prop] = None
        found.evidence.pop(prop, None)
        if prop not in found.missing:
            found.missing.append(prop)
    for prop, candidate in facts_for(schema, facts):
        sub = properties.get(prop) if isinstance(properties, Mapping) else None
        value = typed(candidate.fact, candidate.value, sub if isinstance(sub, Mapping) else {})
        found.data[prop] = value
        note = next((n for n in facts.notes if n.startswith(f"{candidate.fact}:")), None)
        source = f"{candidate.source}: {candidate.path}" + (f" ({note})" if note else "")
        found.evidence[prop] = Evidence(kind="structured-data", source=source)
        if prop in found.missing:
            found.missing.remove(prop)
    return found

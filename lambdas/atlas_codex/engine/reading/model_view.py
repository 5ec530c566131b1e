"""What a model reads of a page: text chosen for the job, not one article block.

Main content (``main_content.select``) is an article's body: on a product page it leaves out
the buy box, so a job asking for ``price`` would be sent text without one. The model view
starts from the whole page, prunes only what is never content (navigation, page-level header
and footer chrome, cookie and consent banners, scripts), and keeps:

- the main content, whole;
- outside it, the blocks the job's fields may need: blocks naming a field (its name, its
  description's words, the instruction's words, common synonyms in several languages) or
  holding a value of a field's kind (a price with its currency, a product code, a date, a
  stock message);

and fits what is outside the main content into a token budget by dropping the least relevant
blocks first, never cutting inside a block. A job that asks for nothing the main content
lacks reads the main content alone (``main``): on an article the view *is* main content.

:func:`view` returns the text with its tokens beside the full page's, which the job records
per page (the saving a client can see).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from selectolax.lexbor import LexborHTMLParser, LexborNode

from atlas_codex.engine.reading import hydration
from atlas_codex.engine.reading.html import WS, drop_unreadable
from atlas_codex.engine.reading.markdown import copy_tree, to_markdown, write_blocks

ViewName = Literal["main", "model", "full"]
VIEW_NAMES: Final[tuple[ViewName, ...]] = ("model", "main", "full")

OUTSIDE_BUDGET_TOKENS: Final = 3000
"""Tokens of blocks outside the main content a view may add (the least relevant go first)."""
CONTEXT_MAX_CHARS: Final = 80
"""A block this short beside a relevant one is its label or its value: it is kept with it."""
LABEL_MAX_CHARS: Final = 200
"""A block naming a field is kept only this short (a label and its value, a spec line):
prose that mentions the word is not where the value is."""
ELSEWHERE: Final = "---\nElsewhere on the page:"
"""Written between the main content and the blocks kept from outside it."""
SHIPPED: Final = "---\nData the page ships for its first screen (JSON):"
"""Written before the data a thin page ships (``hydration``)."""
THIN_PAGE_TOKENS: Final = 200
"""An app shell's view this small has its shipped data added."""
STATE_BUDGET_CHARS: Final = 8_000
"""At most this much of the shipped data is added (about 2,000 tokens)."""

# Never content: the page's own navigation, modal dialogs and consent chrome. Page-level
# headers and footers go too (an <article>'s own header holds its byline and stays).
_NEVER: Final = "nav, [role=navigation], dialog"
_PAGE_CHROME: Final = "header, footer, [role=banner], [role=contentinfo]"
_CHROME_CLASS: Final = re.compile(
    r"(^|[-_\s])(cookies?|consent|gdpr|cookie-?banner|newsletter|breadcrumbs?|skip-?link|"
    r"mega-?menu|menu|navbar|site-?header|site-?footer|footer|header)($|[-_\s])",
    re.I,
)
CHROME_MAX_CHARS: Final = 2000
"""A block named like chrome is dropped only when small: some shops wrap the page in one."""
_LINK: Final = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")

# The kinds of value a field may ask for, told from its name, description or the instruction.
Kind = Literal["title", "price", "code", "availability", "date", "link"]
_KIND_WORDS: Final[Mapping[Kind, re.Pattern[str]]] = {
    "title": re.compile(r"name|title|headline|product|nombre|nom\b|titel|titolo|название", re.I),
    "price": re.compile(
        r"price|cost|amount|fee|currency|preis|prix|precio|preço|prezzo|prijs|cena|kaina|"
        r"cijena|hinta|fiyat|pris|цена|ціна|价格|価格|가격|מחיר|سعر|कीमत",
        re.I,
    ),
    "code": re.compile(
        r"sku|gtin|ean|upc|mpn|isbn|asin|\bcode\b|_code|code_|part.?number|article.?number|"
        r"item.?number|product.?id|model.?number|reference|artikelnummer|référence",
        re.I,
    ),
    "availability": re.compile(
        r"availab|in.?stock|stock|inventory|verfügbar|disponib|lager|наличи|在庫|库存", re.I
    ),
    "date": re.compile(
        r"date|published|updated|created|modified|time|when|datum|fecha|дата|日付", re.I
    ),
    "link": re.compile(r"url|link|href|website|homepage|web.?site|permalink|enlace|lien", re.I),
}
# What a block holding such a value, or its label, looks like on a page.
_CURRENCY: Final = (
    r"(?:[$€£¥₹₩₽₺₪₫฿₱₸₴₦₵₼₾৳₨]|(?<!\w)(?:kn|kr|zł|Kč|Ft|lei|лв|руб|р\.|б\.р\.|тг|грн|"
    r"RM|KSh|ден|дин|din|元|円|원|[A-Z]{0,2}\$)(?!\w)|\b(?:USD|EUR|GBP|JPY|INR|CHF|SEK|NOK|DKK|"
    r"PLN|CZK|HUF|RON|BGN|RUB|UAH|BYN|KZT|TRY|BRL|MXN|ARS|CLP|COP|PEN|UYU|CAD|AUD|NZD|ZAR|"
    r"CNY|RMB|HKD|TWD|SGD|MYR|THB|IDR|PHP|VND|KRW|PKR|LKR|BDT|NPR|AED|SAR|QAR|KWD|EGP|ILS|"
    r"NGN|KES|GHS|MAD|ISK|HRK|RSD|Rs\.?|Rp)\b)"
)
_AMOUNT: Final = r"\d{1,3}(?:[.,\s\u00a0\u202f']\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_VALUES: Final[Mapping[Kind, re.Pattern[str]]] = {
    "title": re.compile(r"^# "),
    "price": re.compile(
        rf"{_CURRENCY}\s?(?:{_AMOUNT})|(?:{_AMOUNT})\s?{_CURRENCY}|\d[.,]-(?!\d)", re.I
    ),
    # A product code alone or after its label: digits with separators, or letters and digits.
    "code": re.compile(
        r"(?:sku|ean|gtin|upc|mpn|isbn|asin|code|kood|код|קוד|nummer|number|numéro|número|"
        r"\bnr\b|\bno\.|ref\b|réf|art\.|item|model|modell|modèle|modelo)[^\n\d]{0,20}\d|"
        r"^\s*(?=[\w.\-]*\d)(?=[\w.\-]*[a-z.\-])[\w.\-]{5,24}\s*$|^\s*\d{5,14}\s*$",
        re.I,
    ),
    "availability": re.compile(
        r"in stock|out of stock|sold out|available|unavailable|add to (?:cart|basket|bag)|"
        r"buy now|auf lager|lieferbar|verfügbar|in den warenkorb|en stock|disponible|rupture|"
        r"ajouter au panier|agotado|añadir al carrito|disponibile|esaurito|aggiungi al carrello|"
        r"op voorraad|in winkelwagen|dostępn|do koszyka|skladem|raktáron|în stoc|в наличии|"
        r"нет в наличии|в корзину|купить|在庫あり|有货|재고|במלאי|متوفر|stokta|sepete ekle|"
        r"på lager|i lager|varastossa|laos|noliktavā|sandėlyje",
        re.I,
    ),
    "date": re.compile(
        r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}[./]\d{1,2}[./]\d{2,4}\b|"
        r"\b\d{1,2}\.?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*\.?\s+\d{4}\b|"
        r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*\.?\s+\d{1,2},?\s+\d{4}\b",
        re.I,
    ),
}
_OWN_KINDS: Final[frozenset[Kind]] = frozenset({"title", "date"})
"""Kinds whose value in the main content is the main content's own (its heading, its date).
A price, a code or a stock message there may be another item's (a related product), so
those are looked for outside the main content even when it has one."""
_WORD: Final = re.compile(r"[^\W\d_]{3,}", re.U)
_STOP: Final = frozenset(
    [
        "the",
        "and",
        "for",
        "from",
        "with",
        "that",
        "this",
        "what",
        "which",
        "each",
        "every",
        "all",
        "any",
        "page",
        "pages",
        "its",
        "their",
        "into",
        "out",
        "get",
        "give",
        "list",
        "name",
        "names",
        "value",
        "values",
        "data",
        "item",
        "items",
        "field",
        "fields",
        "text",
        "type",
        "string",
        "number",
        "object",
        "array",
        "null",
        "true",
        "false",
        "extract",
        "find",
        "return",
        "show",
    ]
)
MAX_TERMS: Final = 40


@dataclass(frozen=True)
class Focus:
    """What a job asks of a page: its words (field names, descriptions, instruction) and the
    kinds of value its fields hold."""

    terms: frozenset[str] = frozenset()
    kinds: frozenset[Kind] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.terms and not self.kinds


def focus(schema: Mapping[str, Any] | None, instruction: str | None) -> Focus:
    """The job's focus, from its JSON schema's property names and descriptions and from its
    plain-language instruction."""
    names: list[str] = []
    texts: list[str] = []
    if schema is not None:
        for name, description in _schema_words(schema, 0):
            names.append(name)
            texts += [name, description]
    if instruction:
        names.append(instruction)
        texts.append(instruction)
    joined = " ".join(texts)
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|[_\-]", " ", joined)
    kinds = frozenset(
        kind for kind, words in _KIND_WORDS.items() if words.search(joined) or words.search(spaced)
    )
    # Labels are looked for by the fields' names (a description's words are prose).
    named = re.sub(r"(?<=[a-z])(?=[A-Z])|[_\-]", " ", " ".join(names))
    terms = [w.lower() for w in _WORD.findall(named) if w.lower() not in _STOP]
    return Focus(frozenset(list(dict.fromkeys(terms))[:MAX_TERMS]), kinds)


def _schema_words(schema: Any, depth: int) -> Iterable[tuple[str, str]]:
    """(name, description) of every property, nested ones too."""
    if depth > 8 or not isinstance(schema, Mapping):
        return
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            about = sub if isinstance(sub, Mapping) else {}
            described = " ".join(
                str(about[k]) for k in ("title", "description") if isinstance(about.get(k), str)
            )
            yield str(name), described
            yield from _schema_words(sub, depth + 1)
    for key in ("items", "additionalProperties"):
        yield from _schema_words(schema.get(key), depth + 1)


@dataclass(frozen=True)
class View:
    """The text a model reads of one page, and what it saves."""

    name: ViewName
    markdown: str
    tokens: int
    full_page_tokens: int


def view(
    tree: LexborHTMLParser,
    url: str,
    job: Focus,
    *,
    main: str,
    name: ViewName = "model",
    budget_tokens: int = OUTSIDE_BUDGET_TOKENS,
) -> View:
    """The page as ``name`` asks: ``full`` (the whole page's markdown), ``main`` (its main
    content), or ``model`` (main content with what the job's fields need from elsewhere;
    main content alone when the job needs nothing it lacks). ``main``: the page's
    main-content markdown (:func:`atlas_codex.engine.reading.consensus.main_markdown`).

    The model view of a JavaScript app's shell (``hydration.app_shell``) is followed by the
    data the page ships for its first screen, where it ships any: the objects in it that
    answer the job's fields, as JSON."""
    seen = _view(tree, url, job, main=main, name=name, budget_tokens=budget_tokens)
    return _with_state(seen, tree, job) if name == "model" else seen


def _with_state(seen: View, tree: LexborHTMLParser, job: Focus) -> View:
    """``seen`` followed by the data an app shell ships (the objects that answer the job's
    fields, else all of it), when the page is one; ``seen`` otherwise."""
    from atlas_codex.llm import tokens

    if seen.tokens > THIN_PAGE_TOKENS or hydration.app_shell(tree) is None:
        return seen
    states = hydration.states(tree)
    if not states:
        return seen
    found = hydration.best_objects(states, sorted(job.terms)) if job.terms else []
    values = [f.value for f in found] or [s.data for s in states]
    shipped: list[str] = []
    left = STATE_BUDGET_CHARS
    for value in values:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(text) > left:
            text = text[:left] + " …(cut)"
        shipped.append(text)
        left -= len(text)
        if left <= 0:
            break
    body = (seen.markdown.rstrip("\n") + "\n\n" + SHIPPED + "\n\n" + "\n\n".join(shipped)).lstrip()
    return View("model", body + "\n", tokens.count(body + "\n"), seen.full_page_tokens)


def _view(
    tree: LexborHTMLParser,
    url: str,
    job: Focus,
    *,
    main: str,
    name: ViewName,
    budget_tokens: int,
) -> View:
    from atlas_codex.llm import tokens

    full = to_markdown(tree, url)
    if name == "full":
        count = tokens.count(full)
        return View("full", full, count, count)
    # Main content is written without link URLs; a job that asks for links reads them.
    main_text = (
        to_markdown(tree, url, main_content=True, link_urls=True) if "link" in job.kinds else main
    )
    if name == "main" or job.empty:
        main_tokens, full_tokens = tokens.count_many([main_text, full])
        return View("main", main_text, main_tokens, full_tokens)
    main_blocks = main_text.split("\n\n")
    inside = {_key(b) for b in main_blocks}
    # What the main content holds already is not looked for elsewhere: a value of each kind
    # the job asks for (an article's title and date are in its body; a shop's price is not).
    lacking = frozenset(
        kind
        for kind in job.kinds
        if kind != "link"  # links are read in the main content (above), not looked for
        and (
            kind not in _OWN_KINDS
            or not any(_VALUES[kind].search(_LINK.sub(r"\1", b)) for b in main_blocks)
        )
    )
    outside = _relevant(_pruned_blocks(tree, url), inside, Focus(job.terms, lacking))
    counts = tokens.count_many([main_text, full, *(b for _, _, b in outside)])
    main_tokens, full_tokens, sizes = counts[0], counts[1], counts[2:]
    chosen: set[int] = set()
    spent = 0
    for n in sorted(range(len(outside)), key=lambda n: (-outside[n][0], outside[n][1])):
        if spent + sizes[n] <= budget_tokens:
            chosen.add(n)
            spent += sizes[n]
    kept = [outside[n][2] for n in sorted(chosen)]
    if not kept:
        return View("main", main_text, main_tokens, full_tokens)
    text = (main_text.rstrip("\n") + "\n\n" + ELSEWHERE + "\n\n" + "\n\n".join(kept)).lstrip()
    return View("model", text + "\n", tokens.count(text + "\n"), full_tokens)


def _key(block: str) -> str:
    return WS.sub(" ", block).strip()


def _pruned_blocks(tree: LexborHTMLParser, url: str) -> list[str]:
    """The page without what is never content, as markdown blocks in document order."""
    page = copy_tree(tree)
    drop_unreadable(page)
    for node in page.css(_NEVER):
        node.decompose()
    for node in page.css(_PAGE_CHROME):
        if not _inside_content(node):
            # A shop's product title often sits in the page header: it stays.
            for title in node.css("h1"):
                node.insert_before(title)
            node.decompose()
    for node in page.css("[class], [id]"):
        if node.tag in ("body", "html", "main", "article", "h1"):
            continue
        names = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if _CHROME_CLASS.search(names) and len(node.text(deep=True) or "") < CHROME_MAX_CHARS:
            node.decompose()
    return write_blocks(page, url)


def _inside_content(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in ("article", "main"):
            return True
        parent = parent.parent
    return False


def _link_share(block: str) -> float:
    linked = sum(len(m.group(1)) for m in _LINK.finditer(block))
    return linked / max(len(_LINK.sub(r"\1", block)), 1)


def _relevance(block: str, job: Focus) -> int:
    """How much a block outside the main content may hold what the job asks for."""
    plain = _LINK.sub(r"\1", block)
    score = sum(3 for kind in job.kinds if _VALUES[kind].search(plain))
    if len(plain) <= LABEL_MAX_CHARS:  # a field's label beside its value, not prose
        lowered = plain.lower()
        score += 2 * min(2, sum(1 for term in job.terms if term in lowered))
    if score and len(plain) <= CONTEXT_MAX_CHARS:
        score += 1  # a short labelled value, not a paragraph that mentions a word
    if score and _link_share(block) > 0.5:
        score -= 2  # a link list that names the field (a menu, a teaser) is seldom its value
    return score


def _relevant(blocks: list[str], inside: set[str], job: Focus) -> list[tuple[int, int, str]]:
    """(relevance, position, block) of the blocks outside the main content worth reading,
    each once, with a short neighbour of a relevant block (its label or its value)."""
    scores: list[int] = []
    for block in blocks:
        scores.append(0 if _key(block) in inside else _relevance(block, job))
    for n, block in enumerate(blocks):
        if scores[n] or _key(block) in inside or len(block) > CONTEXT_MAX_CHARS:
            continue
        near = max(scores[max(0, n - 1) : n + 2])
        if near >= 3:
            scores[n] = 1
    out: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for n, block in enumerate(blocks):
        key = _key(block)
        if scores[n] > 0 and key not in seen:
            seen.add(key)
            out.append((scores[n], n, block))
    return out

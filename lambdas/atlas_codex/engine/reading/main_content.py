"""Main content: what of a page is its content, found on the parsed tree.

Boilerplate goes first by tag, role and (where the block is short or link-heavy) class
hints; containers are then scored readability-style, the choice corrected by the title
heading, the article body a page marks, widening and leads; inside, related sections,
teaser cards and link lists are pruned. ``select`` returns what to write, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode

from atlas_codex.engine.reading.html import BLOCKS, HEADINGS, WS, drop_unreadable, words

DROP_BOILERPLATE: Final = "nav, header, footer, aside, dialog, button, select, input, textarea, [role=navigation], [role=banner], [role=contentinfo], [role=complementary], [aria-hidden=true], [hidden]"
_BOILERPLATE_RE: Final = re.compile(
    r"(^|[-_\s])(cookie|consent|gdpr|banner|share|sharing|social|comments?|related|sidebar|menu|navbar|"
    r"breadcrumbs?|newsletter|subscribe|advert|ads?|promo|popup|modal|footer|masthead|skip-link|pagination|"
    r"tags?|author-bio|signup|login|teasers?|recommend(ed|ations?)?|rating|toolbar|byline|"
    r"more-articles|read-more|outbrain|taboola|disqus|comment-list)($|[-_\s])",
    re.I,
)
_STRONG_BOILERPLATE_RE: Final = re.compile(
    r"(^|[-_\s])(comments?|comment-list|disqus)($|[-_\s])",
    re.I,
)
_LEAD_RE: Final = re.compile(
    r"(^|[-_\s])(lead|intro|summary|standfirst|abstract|dek|deck|teaser-text|lede)($|\s)", re.I
)
"""Class names of an article's lead paragraph (standfirst), as the last word of a class."""
LEAD_MIN_CHARS: Final = 60
LEAD_LEVELS: Final = 2
"""How far above the chosen content a lead paragraph is looked for."""
MEDIA: Final = "img, picture, video, audio, source, figcaption"
"""Left out of main content: media cost tokens and carry little a model can read, and their
captions and credits measured as noise more often than content."""
BOILERPLATE_MAX_CHARS: Final = 600


@dataclass
class Selection:
    """What of a page is its content."""

    title: LexborNode | None
    """The page's h1 when the content chosen does not hold it."""
    roots: list[LexborNode]
    """The content, in document order, pruned."""


def select(tree: LexborHTMLParser) -> Selection:
    """Cut ``tree`` down to its main content (the tree is changed: pass a copy)."""
    _inline_templates(tree)
    title_node = tree.css_first("title")
    heading = _title_heading(tree, title_node.text() if title_node is not None else "")
    # Where the title sits, found before boilerplate goes (it is often in a <header>).
    anchor = heading
    while anchor is not None and anchor.tag in ("h1", "h2", "header", "hgroup", "a"):
        anchor = anchor.parent
    drop_unreadable(tree)
    _strip_boilerplate(tree)
    for node in tree.css(MEDIA):
        node.decompose()
    roots = _content_roots(tree, anchor)
    title = tree.css_first("h1")
    if title is not None and any(_contains(r, title) for r in roots):
        title = None
    for root in roots:
        _prune(root)
    # A root the pruning removed whole (a link list, a share line) is gone from the tree.
    return Selection(title, [root for root in roots if root.parent is not None])


def _strip_boilerplate(tree: LexborHTMLParser) -> None:
    for node in tree.css(DROP_BOILERPLATE):
        # An article's header often holds its lead paragraph beside the byline and dates.
        if node.tag == "header":
            for lead in _leads(node)[:1]:
                node.insert_before(lead)
        node.decompose()
    # A form is boilerplate (search, sign-up, comment box) unless it wraps the page, as
    # ASP.NET and some shop systems make it do.
    body = len((tree.body.text(deep=True) or "").strip()) if tree.body is not None else 0
    for node in tree.css("form"):
        if len((node.text(deep=True) or "").strip()) < body * 0.5:
            node.decompose()
    # Readers' comments announced by their heading ("27 commentaires", "Leave a reply").
    for heading in tree.css("h2, h3, h4"):
        if heading.parent is not None and _COMMENTS_HEADING_RE.match(words(heading)):
            container = heading.parent
            if (
                container.tag not in ("body", "html", "main", "article")
                and _first_content(container) == heading.mem_id
            ):
                container.decompose()  # the block the heading opens is the comments
            else:
                _drop_section(heading)
    for node in tree.css("[class], [id]"):
        tokens = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if node.tag in ("body", "html", "main", "article") or not _BOILERPLATE_RE.search(tokens):
            continue
        # A class name alone is weak evidence: keep large, text-heavy blocks it would drop,
        # unless it names the readers' comments (the page's content is what it publishes).
        text = (node.text(deep=True) or "").strip()
        if (
            len(text) < BOILERPLATE_MAX_CHARS
            or _link_density(node) > 0.3
            or _STRONG_BOILERPLATE_RE.search(tokens)
        ):
            node.decompose()


_COMMENTS_HEADING_RE: Final = re.compile(
    r"^(\d+|one|no|ein|un|une|uno) (comments?|responses?|replies|kommentare?|antworten|commentaires?|réponses?|comentarios?|respuestas?|komentarz[ey]?|commenti)"
    r"( (to|on|zu|sur|a|en) .{1,120})?[\s:.]*$"
    r"|^(comments?|kommentare|commentaires|comentarios|komentarze|commenti|leave a (reply|comment)|"
    r"schreibe einen kommentar|kommentar (schreiben|verfassen)|laisser un commentaire|deja un comentario|"
    r"dodaj komentarz|lascia un commento)[\s:.!]*$",
    re.I,
)
"""A heading that opens the readers' comments."""


def _first_content(node: LexborNode) -> int | None:
    """The mem_id of the first element under ``node`` that has text."""
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            if (child.text_content or "").strip():
                return None
            continue
        if child.tag == "-comment" or not (child.text(deep=True) or "").strip():
            continue
        return child.mem_id
    return None


# ---------------------------------------------------------------------- content scoring

_POSITIVE: Final = re.compile(
    r"article|body|content|entry|main|page|post|text|blog|story|hentry|prose", re.I
)
_NEGATIVE: Final = re.compile(
    r"comment|meta|footer|footnote|foot|sidebar|widget|sponsor|shopping|share|social|related|nav|menu|promo|"
    r"banner|cookie|consent|breadcrumb|pager|pagination|tag|teaser|more|masthead|header",
    re.I,
)
_PARAGRAPHS: Final = "p, pre, blockquote, td, h2, h3, h4, li"


def _class_weight(node: LexborNode) -> float:
    hints = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
    weight = 0.0
    if _NEGATIVE.search(hints):
        weight -= CLASS_WEIGHT
    if _POSITIVE.search(hints):
        weight += CLASS_WEIGHT
    if node.tag in ("article", "main"):
        weight += CLASS_WEIGHT + 5
    return weight


def _link_density(node: LexborNode) -> float:
    text = len((node.text(deep=True) or "").strip())
    if not text:
        return 0.0
    links_text = sum(len((a.text(deep=True) or "").strip()) for a in node.css("a"))
    return links_text / text


CLASS_WEIGHT: Final = 10
"""What a content-like (or boilerplate-like) class or id adds to (or takes from) a block's
score; measured on the dev set, 25 (readability's) let one hint outweigh several paragraphs."""
LENGTH_POINTS_CAP: Final = 10
"""A paragraph earns a point per 100 characters, up to this many."""
VOTE_DIVISORS: Final = (1, 2)
"""A paragraph's vote for its parent and (halved) its grandparent."""
_SEMANTIC_ROOTS: Final = (
    "[itemprop=articleBody], .articleBody, .articlebody, .article-body, .article__body, "
    ".article-content, .article__content, .article-text, .articletext, .entry-content, "
    ".post-content, .post_content, .postcontent, .post-body, .post-text, .post-entry, "
    ".story-body, .story-content, .storycontent, .blog-content"
)
_TEXT_HOLDERS: Final = "div, section, span, font"
_LEAF_BLOCKS: Final = frozenset(
    {"p", "pre", "blockquote", "td", "table", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"}
)


def _paragraphs(tree: LexborHTMLParser) -> list[LexborNode]:
    """Paragraph elements, and containers that hold their text directly (no block inside):
    many sites write paragraphs as bare text in a ``<div>``, split by ``<br>``."""
    found = list(tree.css(_PARAGRAPHS))
    for node in tree.css(_TEXT_HOLDERS):
        if not any(c.tag in BLOCKS or c.tag in _LEAF_BLOCKS for c in node.iter()):
            found.append(node)
    return found


def _inline_templates(tree: LexborHTMLParser) -> None:
    """Blogger and some CMSs ship the article inside ``<script type="text/template">``:
    parse it into the page, so it is read like the markup it is."""
    for script in tree.css('script[type="text/template"]'):
        markup = script.text(deep=True) or ""
        if "<p" in markup or len(markup) > 200:
            holder = LexborHTMLParser(f"<div>{markup}</div>").css_first("div")
            if holder is not None:
                script.replace_with(holder)


@dataclass
class _Candidate:
    """The block chosen as the content so far, and every block's score: the phases of
    :func:`_content_roots` each look at it and may move it."""

    node: LexborNode
    scores: dict[int, float]
    nodes: dict[int, LexborNode]

    @property
    def key(self) -> int:
        return self.node.mem_id

    @property
    def score(self) -> float:
        return self.scores[self.key]

    def move_to(self, node: LexborNode, *, inherit: bool = True) -> None:
        """Choose ``node`` instead; with ``inherit`` it takes at least the score it replaces."""
        if inherit:
            _inherit(self.scores, self.nodes, node, self.key)
        self.node = node


def _content_roots(tree: LexborHTMLParser, anchor: LexborNode | None = None) -> list[LexborNode]:
    """The content's blocks: chosen by the paragraphs' votes, corrected in turn by the title,
    the article body the page marks, widening, short content and series, then taken with its
    strong siblings and the article's lead."""
    chosen = _vote(tree)
    if chosen is None:
        return [tree.body] if tree.body is not None else []
    _toward_title(chosen, anchor)
    _to_marked_body(chosen, tree)
    _widen(chosen)
    _widen_short(chosen)
    _to_series(chosen, anchor)
    if chosen.node.parent is None:
        return [chosen.node]
    roots = _with_siblings(chosen, anchor)
    return _with_lead(chosen, roots)


def _vote(tree: LexborHTMLParser) -> _Candidate | None:
    """Readability-style: paragraphs vote for their parent (and less for its ancestors),
    weighted by length, commas and class hints, discounted by link density; the best wins
    (None: no paragraph voted)."""
    scores: dict[int, float] = {}
    nodes: dict[int, LexborNode] = {}
    for para in _paragraphs(tree):
        text = words(para)
        if len(text) < 25:
            continue
        points = (
            1 + text.count(",") + text.count("\uff0c") + min(len(text) // 100, LENGTH_POINTS_CAP)
        )
        ancestor = para.parent
        for divisor in VOTE_DIVISORS:
            if ancestor is None or ancestor.tag in ("html", None):
                break
            key = ancestor.mem_id
            if key not in scores:
                nodes[key] = ancestor
                scores[key] = _class_weight(ancestor)
            scores[key] += points / divisor
            ancestor = ancestor.parent
    if not scores:
        return None
    for key, node in nodes.items():
        scores[key] *= 1 - _link_density(node)
    return _Candidate(node=nodes[max(scores, key=lambda k: scores[k])], scores=scores, nodes=nodes)


def _toward_title(chosen: _Candidate, anchor: LexborNode | None) -> None:
    """The content the page is about holds (or follows) its title: on a page of several
    articles (infinite scroll, teasers), prefer the block around the title heading."""
    if anchor is None or _contains(chosen.node, anchor):
        return
    around: LexborNode | None = anchor
    for _ in range(TITLE_LEVELS):
        if around is None or around.tag in ("body", "html"):
            return
        key = around.mem_id
        if key in chosen.scores and chosen.scores[key] >= chosen.score * TITLE_SCORE_SHARE:
            chosen.move_to(around, inherit=False)
            return
        around = around.parent


def _to_marked_body(chosen: _Candidate, tree: LexborHTMLParser) -> None:
    """A page that marks its article's body (itemprop, common CMS classes) is taken at its
    word when the scoring chose a block outside it (an author box, a teaser)."""
    marked = _semantic_root(tree)
    if marked is not None and marked.mem_id != chosen.key:
        chosen.move_to(marked)


def _widen(chosen: _Candidate) -> None:
    """Content split over several blocks: widen to an ancestor that scores nearly as well,
    or that holds much more prose than the block chosen (and is not link-heavy). A wrapper
    that adds no prose (a styling <div>) is looked through, not counted."""
    up = chosen.node.parent
    own = _prose(chosen.node)
    for _ in range(WIDEN_LEVELS):
        if up is None or up.tag in ("body", "html"):
            return
        scored = up.mem_id in chosen.scores and chosen.scores[up.mem_id] >= chosen.score * 0.5
        prose = _prose(up)
        richer = prose >= own * WIDEN_PROSE and _link_density(up) < WIDEN_MAX_LINKS
        if scored or richer:
            chosen.move_to(up)
            own = prose
        elif prose > own:
            return
        up = up.parent


def _widen_short(chosen: _Candidate) -> None:
    """Little text chosen (a short article, an image story): the article or main element
    around it says where the content is better than a few sentences' votes do; else an
    ancestor with much more text."""
    own_text = len((chosen.node.text(deep=True) or "").strip())
    if own_text >= SHORT_CONTENT:
        return
    up = chosen.node.parent
    while up is not None and up.tag not in ("article", "main", "body"):
        up = up.parent
    if up is not None and up.tag != "body":
        chosen.move_to(up)
        return
    up = chosen.node.parent
    for _ in range(WIDEN_LEVELS):
        if up is None or up.tag in ("body", "html"):
            return
        chars = len((up.text(deep=True) or "").strip())
        if chars >= own_text * SHORT_WIDEN_TEXT and _link_density(up) < WIDEN_MAX_LINKS:
            chosen.move_to(up)
            return
        up = up.parent


def _to_series(chosen: _Candidate, anchor: LexborNode | None) -> None:
    """One of several items alike (a forum thread's posts, a blog's entries): the content is
    all of them, unless the page's title names the one chosen."""
    series = _series(chosen.node, anchor)
    if series is not None:
        chosen.move_to(series)


def _with_siblings(chosen: _Candidate, anchor: LexborNode | None) -> list[LexborNode]:
    """The block chosen and its siblings that score well or are long plain paragraphs, in
    document order; never another story on the same page."""
    best, best_key = chosen.node, chosen.key
    parent = best.parent
    assert parent is not None
    threshold = max(5.0, chosen.score * 0.15)
    roots = []
    # The entry the title names, among entries alike (a blog's, a news river's).
    titled_entry = (
        anchor is not None
        and _contains(best, anchor)
        and bool(_SERIES_RE.search(best.attributes.get("class") or ""))
    )
    for sibling in parent.iter(include_text=False):
        key = sibling.mem_id
        if (
            key != best_key
            and sibling.tag == best.tag
            and (
                best.tag == "article"
                or (
                    titled_entry and sibling.attributes.get("class") == best.attributes.get("class")
                )
            )
        ):
            continue  # another story on the same page, not more of this one
        if key == best_key or chosen.scores.get(key, -1.0) >= threshold:
            roots.append(sibling)
        elif sibling.tag == "p":
            text = (sibling.text(deep=True) or "").strip()
            if len(text) > 80 and _link_density(sibling) < 0.25:
                roots.append(sibling)
    return roots or [best]


def _with_lead(chosen: _Candidate, roots: list[LexborNode]) -> list[LexborNode]:
    """The article's lead paragraph, often kept apart from its body (beside the headline),
    before the roots."""
    leads: list[LexborNode] = []
    around = chosen.node.parent
    for _ in range(LEAD_LEVELS):
        if around is None or around.tag in ("body", "html"):
            break
        for lead in _leads(around):
            if not any(
                _contains(r, lead) or _contains(lead, r) for r in roots + leads
            ) and not _in_other_article(lead, chosen.node):
                leads.append(lead)
        around = around.parent
    return leads[:1] + roots


TITLE_LEVELS: Final = 4
"""How far above the title heading a block may hold the page's content..."""
TITLE_SCORE_SHARE: Final = 0.2
"""...and the share of the best block's score it needs to win over it."""


SERIES_LEVELS: Final = 7
"""How far above the chosen block an item of a series (a post of a thread) is looked for."""
_ITEM_TAGS: Final = frozenset({"div", "section", "article", "li"})
_SERIES_RE: Final = re.compile(
    r"(^|[-_\s])(post|posts|postbit|entry|message|reply|thread|hentry|answer|question|review)"
    r"($|[-_\s\d])",
    re.I,
)
"""Class names of the items of a series: a thread's posts, a blog's entries, answers,
reviews (a CMS's generic content blocks are not a series)."""
SERIES_MIN_ITEMS: Final = 3
SERIES_ITEM_TEXT: Final = 100
"""A series has this many items alike, each with this much text."""


def _series(best: LexborNode, anchor: LexborNode | None) -> LexborNode | None:
    """The container of the series ``best`` is one item of, if it is one: the item's
    siblings share its tag and class and carry text of their own."""
    item: LexborNode | None = best
    for _ in range(SERIES_LEVELS):
        if item is None or item.parent is None or item.tag in ("body", "html", "main"):
            return None
        container = item.parent
        signature = (item.tag, (item.attributes.get("class") or "").strip())
        if item.tag in _ITEM_TAGS and _SERIES_RE.search(signature[1]):
            alike = [
                sibling
                for sibling in container.iter(include_text=False)
                if (sibling.tag, (sibling.attributes.get("class") or "").strip()) == signature
                and len((sibling.text(deep=True) or "").strip()) >= SERIES_ITEM_TEXT
            ]
            if len(alike) >= SERIES_MIN_ITEMS:
                if anchor is not None and _contains(item, anchor):
                    return None  # the title's own article among teasers of others
                if _link_density(container) < WIDEN_MAX_LINKS:
                    return container
                return None
        item = container
    return None


def _inherit(
    scores: dict[int, float], nodes: dict[int, LexborNode], node: LexborNode, best_key: int
) -> None:
    """``node`` takes the chosen block's place: unscored, it inherits that block's score."""
    if node.mem_id not in scores:
        nodes[node.mem_id] = node
        scores[node.mem_id] = scores[best_key]


def _title_heading(tree: LexborHTMLParser, doc_title: str) -> LexborNode | None:
    """The h1 (or else h2) whose text the document's <title> contains."""
    title = WS.sub(" ", doc_title).strip().casefold()
    if not title:
        return None
    for selector in ("h1", "h2"):
        for heading in tree.css(selector):
            text = words(heading).casefold()
            if len(text) >= 10 and text in title:
                return heading
    return None


def _semantic_root(tree: LexborHTMLParser) -> LexborNode | None:
    """The element the page marks as its article's body, when it holds real prose."""
    best: LexborNode | None = None
    best_len = 0
    for node in tree.css(_SEMANTIC_ROOTS):
        text = sum(
            len((p.text(deep=True) or "").strip()) for p in node.css("p, li, blockquote, pre")
        ) or len((node.text(deep=True) or "").strip())
        if text > best_len and _link_density(node) < 0.4:
            best, best_len = node, text
    return best if best_len >= 400 else None


WIDEN_PROSE: Final = 2.0
"""The chosen block widens to an ancestor with this many times its prose..."""
WIDEN_MAX_LINKS: Final = 0.35
"""...unless the ancestor is this link-heavy (a page shell with menus)."""
WIDEN_LEVELS: Final = 3
"""How many ancestors up the chosen content may widen."""
SHORT_CONTENT: Final = 600
"""Chosen content shorter than this widens to the article or main element around it..."""
SHORT_WIDEN_TEXT: Final = 2
"""...or, with none, to the nearest ancestor with this many times its text (a recipe's
description to its ingredients and steps)."""


def _prose(node: LexborNode) -> int:
    """Characters of paragraph text under ``node`` (paragraphs that are not link lists)."""
    total = 0
    for para in node.css("p, pre, blockquote"):
        text = len((para.text(deep=True) or "").strip())
        if text >= 25 and _link_density(para) < 0.5:
            total += text
    return total


def _leads(node: LexborNode) -> list[LexborNode]:
    """Paragraphs under ``node`` that a class marks as an article's lead (standfirst)."""
    return [
        lead
        for lead in node.css("p[class], div[class]")
        if _LEAD_RE.search(lead.attributes.get("class") or "")
        and len((lead.text(deep=True) or "").strip()) >= LEAD_MIN_CHARS
    ]


def _in_other_article(node: LexborNode, best: LexborNode) -> bool:
    """Whether ``node`` sits in an ``<article>`` that is not the chosen content's (a teaser
    of another story, with its own summary)."""
    current = node.parent
    while current is not None and current.tag not in ("body", "html"):
        if current.tag == "article" and not _contains(current, best):
            return True
        current = current.parent
    return False


def _contains(root: LexborNode, node: LexborNode) -> bool:
    current: LexborNode | None = node
    while current is not None:
        if current.mem_id == root.mem_id:
            return True
        current = current.parent
    return False


def _prune(root: LexborNode) -> None:
    """Inside the chosen content: drop link-heavy lists and blocks (menus, tag clouds)."""
    for node in root.css("ul, ol, div, section, table"):
        text = (node.text(deep=True) or "").strip()
        if text and _link_density(node) > 0.4 and len(text) < 1000:
            node.decompose()
    # Credit lines, and the page's controls written as text ("Share", "Print", "Permalink").
    for node in root.css("p, span, small, div, li"):
        raw = node.text(deep=True) or ""
        if len(raw) > SHORT_LINE_SCAN:
            continue  # long text (or a whole section): not a line to test
        text = WS.sub(" ", raw).strip()
        if (len(text) < CREDIT_MAX_CHARS and node.tag != "li" and CREDIT_RE.match(text)) or (
            len(text) < CONTROL_MAX_CHARS and (_CONTROL_RE.match(text) or _share_bar(text))
        ):
            node.decompose()
    # A paragraph that is only a row of links (pagination, "share on", tag lists).
    for node in root.css("p"):
        if len(node.css("a")) >= 3 and _link_density(node) > 0.7:
            node.decompose()
    # "Related articles", "Das könnte Sie auch interessieren": the heading and its section.
    for heading in root.css("h2, h3, h4, h5, h6"):
        if _RELATED_RE.match(words(heading)):
            _drop_section(heading)
    for listing in root.css("ul, ol"):
        first = listing.css_first("li")
        if first is not None and _RELATED_RE.match(words(first)):
            listing.decompose()
    # A run of teaser cards: headings each followed by nothing but a link ("Link zum Artikel").
    cards = []
    for heading in root.css("h2, h3, h4, h5, h6"):
        following = _next_content(heading, root)
        if (
            following is not None
            and following.tag not in ("-text", *HEADINGS)
            and following.css_first("a") is not None
            and _link_density(following) > CARD_LINK_DENSITY
        ):
            cards.append((heading, following))
    # ...beside an article: on a listing page the cards are the content.
    if len(cards) >= CARD_RUN and _prose(root) >= CARD_ARTICLE_PROSE:
        for heading, following in cards:
            following.decompose()
            heading.decompose()
    # A heading left with nothing under it introduced what was just pruned ("Related").
    for heading in root.css("h2, h3, h4, h5, h6"):
        following = _next_content(heading, root)
        if following is None or following.tag in HEADINGS:
            if len((heading.text(deep=True) or "").strip()) < HEADLINE_MAX_CHARS:
                heading.decompose()
        elif (
            following.tag != "-text"
            and len(following.css("a")) >= TEASER_LINKS
            and _link_density(following) > TEASER_LINK_DENSITY
        ):
            # "More on this" and its teaser cards: links with a line of text each.
            following.decompose()
            heading.decompose()


HEADLINE_MAX_CHARS: Final = 100
"""A heading this long is a sentence (a subtitle, a standfirst), not a section's label."""
_RELATED_RE: Final = re.compile(
    r"^(related|similar|recommended|more|other|popular|trending|latest|recent)"
    r"( \w+)?( (articles?|posts?|stories|content|topics|links|news|reads?|videos?|products))"
    r"|^(you (may|might) also (like|enjoy)|also on \w+|read (more|also|next)|see also|more on this( topic| story)?"
    r"|recommended for you|most (read|popular|viewed|shared)|more from .{1,40}|(discover|explore) more( .{1,40})?"
    r"|entdecke(n sie)? (weitere|mehr)( .{1,40})?"
    r"|das könnte (sie|dich) auch interessieren|(das ist )?auch interessant|ähnliche (themen|artikel|beiträge|produkte)"
    r"|verwandte (artikel|beiträge|themen)|mehr zum thema( .{1,40})?|weitere (artikel|beiträge|nachrichten|themen|news|meldungen)"
    r"|lesen sie (auch|mehr)|meistgelesen(e)?( artikel)?|empfehlungen( der redaktion)?|unsere empfehlungen?"
    r"|(articles?|vidéos|audios( et vidéos)?) (similaires|liés|sur le (même )?sujet)|à lire aussi|lire aussi|sur le même sujet"
    r"|vous aimerez aussi|(artículos|noticias) relacionad[oa]s|(también )?te puede interesar|lo más leído|más noticias"
    r"|(podobne|powiązane) (artykuły|wpisy)|zobacz (też|także)|czytaj (też|także)|articoli correlati|potrebbe interessarti"
    r"|leggi anche|gerelateerde artikelen|lees ook)[\s!:.?…]*$",
    re.I,
)
"""Headings that introduce links to other pages, in the languages the service meets most."""
CARD_RUN: Final = 3
CARD_LINK_DENSITY: Final = 0.8
"""This many headings each followed only by a link (this share of its text) are teaser cards."""
CARD_ARTICLE_PROSE: Final = 500
"""...when the content holds this much prose besides them."""
TEASER_LINKS: Final = 3
TEASER_LINK_DENSITY: Final = 0.3
"""A heading followed by a block with this many links, this link-heavy: "more on this"."""
CREDIT_MAX_CHARS: Final = 120
CONTROL_MAX_CHARS: Final = 60
SHORT_LINE_SCAN: Final = 1000
"""Blocks with more raw text than this (white space included) are not credit or control lines."""
_CONTROL_RE: Final = re.compile(
    r"^(share( this)?( article| post| story| page)?( on \w+)?|print( this)?( article| page| recipe)?"
    r"|permalink( https?://\S+)?|back to (the )?(list|overview|top)|comments? (are )?closed"
    r"|teilen|(diesen |den )?artikel (teilen|drucken)|mit freunden teilen|jetzt teilen|(rezept |seite )?drucken"
    r"|zurück zur (liste|listenansicht|übersicht)|kommentare (sind )?geschlossen"
    r"|partager( cet article| sur \w+)?|imprimer( cette page| cet article)?|permalien( https?://\S+)?|retour à la liste"
    r"|compartir( en \w+)?|imprimir|volver al listado|condividi|stampa|udostępnij|drukuj)"
    r"[\s:!.]*$",
    re.I,
)
"""A short block that is one of the page's controls, in the languages the service meets most."""
_SHARE_WORDS: Final = frozenset(
    [
        "facebook",
        "twitter",
        "x",
        "whatsapp",
        "pinterest",
        "linkedin",
        "xing",
        "reddit",
        "telegram",
        "messenger",
        "threads",
        "mastodon",
        "bluesky",
        "flipboard",
        "tumblr",
        "email",
        "e-mail",
        "mail",
        "share",
        "teilen",
        "twittern",
        "tweet",
        "pinnen",
        "print",
        "drucken",
        "partager",
        "imprimer",
        "compartir",
        "imprimir",
        "condividi",
    ]
)


def _share_bar(text: str) -> bool:
    """A row of share buttons written as words ("Facebook Twitter WhatsApp E-Mail")."""
    words = text.casefold().replace("|", " ").split()
    return len(words) >= 2 and all(word.strip(".,:;") in _SHARE_WORDS for word in words)


CREDIT_RE: Final = re.compile(
    r"^\s*(©|\(c\)|(fotos?|photos?|bild(er)?|images?|credits?|quelle|source|grafik)\s*[:|/])",
    re.I,
)
"""A short line that credits a picture or a source."""


def _drop_section(heading: LexborNode) -> None:
    """``heading`` and what follows it up to the next heading of its rank or higher."""
    rank = HEADINGS.index(heading.tag or "h6")
    sibling = heading.next
    while sibling is not None:
        if sibling.tag in HEADINGS and HEADINGS.index(sibling.tag) <= rank:
            break
        following = sibling.next
        sibling.decompose()
        sibling = following
    heading.decompose()


def _next_content(node: LexborNode, root: LexborNode) -> LexborNode | None:
    """What the reader meets after ``node`` within ``root`` (white space skipped)."""
    current: LexborNode | None = node
    while current is not None and current.mem_id != root.mem_id:
        sibling = current.next
        while sibling is not None and (
            sibling.tag == "-comment"
            or (sibling.tag == "-text" and not (sibling.text_content or "").strip())
            or (sibling.tag not in ("-text",) and not (sibling.text(deep=True) or "").strip())
        ):
            sibling = sibling.next
        if sibling is not None:
            return sibling
        current = current.parent
    return None

"""One saved page through the deterministic strategies, with no service and no network.

``atlas-codex extract-page`` and the product-page benchmark read pages this way: the job's
selectors (direct CSS) or JSON schema (JSON-LD, microdata, OpenGraph and meta tags), and the
text a model would be sent for the job (:mod:`atlas_codex.engine.reading.model_view`), with its tokens
beside the full page's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from atlas_codex.engine.facts import product
from atlas_codex.engine.facts.direct import Extraction, extract_selectors
from atlas_codex.engine.reading import model_view
from atlas_codex.engine.reading.consensus import main_markdown
from atlas_codex.engine.reading.html import metadata, parse
from atlas_codex.extraction.request import JobRequest


class PageReport(BaseModel):
    """What ``extract-page --jsonl`` prints for one file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    url: str
    data: JsonValue
    evidence: dict[str, Any]
    missing: list[str]
    view: model_view.ViewName
    markdown: str
    tokens: int
    full_page_tokens: int


def extract_page(
    html: str, request: JobRequest, *, file: str = "", view: model_view.ViewName = "model"
) -> PageReport:
    """``request`` (its first URL is the page's address) run on ``html``: deterministic data
    and the ``view`` a model would read."""
    url = request.urls[0]
    tree = parse(html)
    found: Extraction
    if request.selectors is not None:
        found = extract_selectors(tree, request.selectors, url)
    elif request.json_schema is not None:
        found = product.extract(tree, metadata(tree, url), url, request.json_schema)
    else:
        found = Extraction(data=None)
    schema = request.json_schema
    if schema is None and request.selectors is not None:
        schema = {"properties": {name: {} for name in request.selectors.fields}}
    read = model_view.view(
        tree,
        url,
        model_view.focus(schema, request.instruction),
        main=main_markdown(html, url, tree) if view != "full" else "",
        name=view,
    )
    return PageReport(
        file=file,
        url=url,
        data=found.data,
        evidence={path: e.model_dump(mode="json") for path, e in found.evidence.items()},
        missing=found.missing,
        view=read.name,
        markdown=read.markdown,
        tokens=read.tokens,
        full_page_tokens=read.full_page_tokens,
    )

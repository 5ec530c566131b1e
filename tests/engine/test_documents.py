"""What is not a web page fails at fetch with ``unsupported_content``; any page converts."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from atlas_codex.engine.engine import Engine
from atlas_codex.engine.pages.fetch import FetchError, Page, decode, not_a_document
from atlas_codex.engine.reading.markdown import to_markdown
from atlas_codex.extraction.contract import ExtractionError, ExtractionTask
from atlas_codex.extraction.request import JobRequest
from tests.support.html_pages import html_pages
from tests.support.memory_site import MemorySite

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" + b"\x00\x01\x02" * 50
PAGE = "<html><head><title>Lamp</title></head><body><h1>Desk lamp</h1></body></html>"


def page(content_type: str, text: str) -> Page:
    return Page(
        url="https://x.example/", status=200, content_type=content_type, text=text, encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("image/png", PNG.decode("latin-1")),
        ("application/pdf", PDF.decode("latin-1")),
        ("application/octet-stream", "\x00\x01\x02 random"),
        ("text/html", PDF.decode("latin-1")),  # a PDF served as a page
        ("", "\x00\x00\x00 no type, binary"),
        ("application/zip", "PK\x03\x04..."),
    ],
)
def test_what_is_not_a_document_is_named(content_type: str, text: str) -> None:
    assert not_a_document(page(content_type, text)) is not None


@pytest.mark.parametrize(
    "content_type",
    ["text/html; charset=utf-8", "application/xhtml+xml", "application/rss+xml", "text/plain", ""],
)
def test_documents_are_read(content_type: str) -> None:
    assert not_a_document(page(content_type, PAGE)) is None


def _engine(body: bytes, content_type: str) -> Engine:
    def document(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    return Engine(fetcher=MemorySite(default=document).fetcher(), models_available=False)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(PNG, "image/png"), (PDF, "application/pdf"), (b"\x00\xff" * 300, "application/octet-stream")],
)
def test_a_job_on_a_file_fails_unsupported_content_not_empty_extraction(
    body: bytes, content_type: str
) -> None:
    request = JobRequest(urls=["http://127.0.0.1/file"])
    with pytest.raises(ExtractionError) as caught:
        _engine(body, content_type).extract(request, ExtractionTask.within(10))
    assert caught.value.code == "unsupported_content"
    assert not caught.value.retryable
    assert "only web pages are read" in caught.value.message


def test_fetch_document_refuses_with_a_fetch_error() -> None:
    fetcher = _engine(PNG, "image/png").fetcher
    with pytest.raises(FetchError) as caught:
        fetcher.fetch_document("http://127.0.0.1/a.png", respect_robots=False)
    assert caught.value.code == "unsupported_content"


LEGACY = '<!DOCTYPE html SYSTEM "about:legacy-compat"><html><head><title>T</title></head><body><main><h1>Lamp</h1><p>A desk lamp of brass and glass, 40 cm tall.</p></main></body></html>'


@pytest.mark.parametrize("main_content", [False, True])
def test_the_legacy_compat_doctype_converts_from_a_parsed_tree(main_content: bool) -> None:
    tree = LexborHTMLParser(LEGACY)
    before = tree.html
    from_tree = to_markdown(tree, "https://x.example/", main_content=main_content)
    assert "A desk lamp of brass and glass" in from_tree
    assert from_tree == to_markdown(LEGACY, "https://x.example/", main_content=main_content)
    assert tree.html == before  # the caller's tree is unchanged


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(html=html_pages())
def test_no_generated_page_breaks_a_converter(html: str) -> None:
    for main_content in (False, True):
        assert isinstance(to_markdown(html, "https://x.example/a/", main_content=main_content), str)
        tree = LexborHTMLParser(html)
        assert isinstance(to_markdown(tree, "https://x.example/a/", main_content=main_content), str)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.binary(max_size=3000),
    content_type=st.sampled_from(
        [
            "text/html",
            "text/html; charset=utf-8",
            "text/html; charset=latin-1",
            "text/html; charset=bogus",
            "",
        ]
    ),
)
def test_any_bytes_decode_and_convert(body: bytes, content_type: str) -> None:
    """Mixed and wrong encodings: the fetcher's decoding, then both converters."""
    text, encoding = decode(b"<meta charset='shift_jis'>" + body, content_type)
    assert isinstance(text, str)
    assert encoding
    for main_content in (False, True):
        assert isinstance(to_markdown(text, main_content=main_content), str)

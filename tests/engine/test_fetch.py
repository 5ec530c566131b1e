from __future__ import annotations

import pytest

from atlas_codex.engine.pages.fetch import Fetcher, FetchError
from atlas_codex.ground.netguard import NetPolicy
from tests.site import Site


def test_a_listed_private_site_is_fetched_and_decoded(fetcher: Fetcher, site: Site) -> None:
    page = fetcher.fetch(f"{site.url}/product/2")
    assert page.status == 200
    assert "Lamp 2" in page.text
    assert page.encoding == "utf-8"


@pytest.mark.parametrize(
    ("path", "text", "encoding"),
    [("/latin1", "Grüße aus Köln", "iso8859-1"), ("/meta-charset", "Café", "cp1252")],
)
def test_charsets_come_from_the_header_or_the_meta_tag(
    fetcher: Fetcher, site: Site, path: str, text: str, encoding: str
) -> None:
    page = fetcher.fetch(site.url + path)
    assert text in page.text
    assert page.encoding == encoding


def test_redirects_are_followed_and_each_hop_is_checked(fetcher: Fetcher, site: Site) -> None:
    page = fetcher.fetch(f"{site.url}/moved")
    assert page.url == f"{site.url}/product/1"
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"{site.url}/to-metadata")
    assert caught.value.code == "blocked_target"
    assert "metadata" in caught.value.message


def test_a_redirect_loop_stops(fetcher: Fetcher, site: Site) -> None:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"{site.url}/loop")
    assert caught.value.code == "too_many_redirects"


def test_an_oversized_body_is_refused(fetcher: Fetcher, site: Site) -> None:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"{site.url}/huge")
    assert caught.value.code == "too_large"


def test_robots_txt_is_honoured_unless_the_job_opts_out(fetcher: Fetcher, site: Site) -> None:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"{site.url}/private/x")
    assert caught.value.code == "robots_disallowed"
    assert "secret" in fetcher.fetch(f"{site.url}/private/x", respect_robots=False).text


@pytest.mark.parametrize(("path", "retryable"), [("/gone", False), ("/busy", True)])
def test_http_errors_say_whether_a_retry_can_help(
    fetcher: Fetcher, site: Site, path: str, retryable: bool
) -> None:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(site.url + path)
    assert caught.value.code == "http_error"
    assert caught.value.retryable is retryable


def test_loopback_is_refused_when_not_listed(site: Site) -> None:
    strict = Fetcher(policy=NetPolicy())
    hits = len(site.hits)
    with pytest.raises(FetchError) as caught:
        strict.fetch(f"{site.url}/")
    assert caught.value.code == "blocked_target"
    assert len(site.hits) == hits  # no request reached the server

"""What a fetch says when a site is missing, busy or changes its rules: a host that does not
resolve is ``dns_error`` (not a robots.txt problem), a site's ``Retry-After`` is honoured
within the fetch's time (else the failure says when to come back), and robots.txt is read
again after its time to live."""

from __future__ import annotations

import time

import httpx
import pytest

from atlas_codex.engine.pages.fetch import ROBOTS_TTL_S, FetchError, retry_after
from atlas_codex.ground.netguard import DnsError, NetPolicy
from tests.support.memory_site import MemorySite


def test_a_host_that_does_not_resolve_is_a_dns_error() -> None:
    def no_such_host(host: str, port: int) -> list[str]:
        raise DnsError(f"the host {host!r} does not resolve (Name or service not known)")

    fetcher = MemorySite().fetcher()
    fetcher.resolver = no_such_host
    with pytest.raises(FetchError) as caught:
        fetcher.fetch("http://shpo.example/item/1")

    assert caught.value.code == "dns_error"
    assert "shpo.example" in caught.value.message
    assert caught.value.retryable


def test_a_short_retry_after_is_waited_for_once() -> None:
    answers = [httpx.Response(429, headers={"retry-after": "1"}), None]

    def busy_once(request: httpx.Request) -> httpx.Response:
        first = answers.pop(0)
        return first or httpx.Response(
            200, text="<h1>Here</h1>", headers={"content-type": "text/html"}
        )

    fetcher = MemorySite({"/p": busy_once}).fetcher()
    started = time.monotonic()
    page = fetcher.fetch("http://127.0.0.1/p", respect_robots=False)

    assert "Here" in page.text
    assert 0.9 <= time.monotonic() - started < 5


def test_a_long_retry_after_fails_saying_when_to_come_back() -> None:
    site = MemorySite({"/p": lambda r: httpx.Response(503, headers={"retry-after": "120"})})
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        site.fetcher().fetch("http://127.0.0.1/p", respect_robots=False)

    assert time.monotonic() - started < 2  # not waited for
    assert caught.value.retryable
    assert caught.value.retry_after_s == 120
    assert "asked again in 120 s" in caught.value.message


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("5") == 5
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_robots_txt_is_read_again_after_its_time_to_live() -> None:
    site = MemorySite({"/robots.txt": "User-agent: *\nAllow: /\n", "/p": "<h1>P</h1>"})
    fetcher = site.fetcher()
    now = [1000.0]
    fetcher.clock = lambda: now[0]

    fetcher.fetch("http://127.0.0.1/p")
    fetcher.fetch("http://127.0.0.1/p")
    assert site.fetches.count("/robots.txt") == 1  # kept

    now[0] += ROBOTS_TTL_S + 1
    fetcher.fetch("http://127.0.0.1/p")
    assert site.fetches.count("/robots.txt") == 2  # read again
    assert isinstance(fetcher.policy, NetPolicy)

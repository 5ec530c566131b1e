"""The SSRF guard refuses every private, wrapped and metadata target without connecting."""

from __future__ import annotations

import socket

import pytest

from atlas_codex.ground.netguard import BlockedTarget, NetPolicy, check_url, pinned_url

REFUSED = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://127.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://user@127.0.0.1/",
    "http://127.0.0.1:6379/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/",
    "http://224.0.0.1/",
    "http://metadata.google.internal/",
]


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: the guard must decide without one."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def local_resolver(host: str, port: int) -> list[str]:
    return {"localhost": ["127.0.0.1", "::1"], "shop.example": ["93.184.216.34"]}.get(host, [])


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_metadata_targets_are_refused(url: str) -> None:
    with pytest.raises(BlockedTarget) as caught:
        check_url(url, NetPolicy(), resolver=local_resolver)
    assert caught.value.reason


def test_a_public_address_is_allowed_and_pinned() -> None:
    target = check_url("https://shop.example/item?id=1", NetPolicy(), resolver=local_resolver)
    assert target.addresses == ("93.184.216.34",)
    url, headers, extensions = pinned_url(target)
    assert url == "https://93.184.216.34/item?id=1"
    assert headers == {"Host": "shop.example"}
    assert extensions == {"sni_hostname": "shop.example"}


def test_a_host_with_one_private_answer_among_public_ones_is_refused() -> None:
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(BlockedTarget, match=r"10\.0\.0\.7 is a private address"):
        check_url("https://rebind.example/", NetPolicy(), resolver=mixed)


def test_a_resolver_that_turns_private_on_the_second_lookup_is_not_asked_twice() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    target = check_url("https://rebind.example/", NetPolicy(), resolver=rebinding)
    url, _, _ = pinned_url(target)
    assert url.startswith("https://93.184.216.34/")
    assert calls == ["rebind.example"]


def test_listed_private_pairs_are_allowed_but_only_on_their_port() -> None:
    policy = NetPolicy.from_host_ports(["127.0.0.1:8765"])
    assert check_url("http://127.0.0.1:8765/demo", policy).addresses == ("127.0.0.1",)
    with pytest.raises(BlockedTarget):
        check_url("http://127.0.0.1:8766/demo", policy)


def test_metadata_addresses_stay_blocked_whatever_is_listed() -> None:
    policy = NetPolicy(allowed_private=frozenset({("169.254.169.254", 80), ("meta.example", 80)}))
    with pytest.raises(BlockedTarget, match="metadata"):
        check_url("http://169.254.169.254/", policy)

    def to_metadata(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    with pytest.raises(BlockedTarget, match="metadata"):
        check_url("http://meta.example/", policy, resolver=to_metadata)


def test_a_name_that_does_not_resolve_is_a_clear_refusal() -> None:
    with pytest.raises(BlockedTarget, match="has no address"):
        check_url("https://nowhere.example/", NetPolicy(), resolver=local_resolver)


def test_a_dns_failure_is_a_dns_error_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    from atlas_codex.ground import netguard

    def failing(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    with pytest.raises(netguard.DnsError, match="does not resolve"):
        netguard.check_url("https://nowhere.example/", NetPolicy())


def test_a_host_name_idna_cannot_encode_is_refused_not_a_crash() -> None:
    from atlas_codex.ground import netguard

    with pytest.raises(BlockedTarget, match="not a valid DNS name"):
        netguard.check_url(f"https://{'a' * 64}.example/", NetPolicy())


def test_the_fetcher_reports_a_dns_failure_as_retryable() -> None:
    import time

    from atlas_codex.engine.pages.fetch import Fetcher, FetchError
    from atlas_codex.ground.netguard import DnsError

    def no_dns(host: str, port: int) -> list[str]:
        raise DnsError(f"the host {host!r} does not resolve (Temporary failure)")

    fetcher = Fetcher(policy=NetPolicy(), resolver=no_dns)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch("https://shop.example/", deadline=time.monotonic() + 5, respect_robots=False)
    assert (caught.value.code, caught.value.retryable) == ("dns_error", True)

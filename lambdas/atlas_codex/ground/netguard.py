"""The SSRF guard: which addresses an outbound request (a page fetch or a webhook) may reach.

A URL is allowed only when its scheme is http or https, it carries no credentials, its port
is in the allowed set, and *every* address its host resolves to is a public one. The caller
then connects to one of exactly those checked addresses (:func:`pinned_url`), so a second
DNS answer cannot slip in (DNS rebinding). Wrapped forms — IPv4-mapped, 6to4, NAT64 and the
legacy IPv4 spellings (``127.1``, ``0x7f000001``, ``2130706433``, ``0177.0.0.1``) — are
unwrapped before the check. Private ``host:port`` pairs the stage settings list are allowed;
the cloud metadata addresses never are.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from atlas_codex.ground.policy import (
    METADATA_ADDRESSES,
    IPAddress,
    is_metadata_host,
    literal_address,
    unwrap,
)

__all__ = ["METADATA_ADDRESSES", "IPAddress", "literal_address", "unwrap"]
Resolver = Callable[[str, int], list[str]]

USER_AGENT: Final = (
    "AtlasCodexBot/1.0 (+https://atlas-codex.example/bot; data extraction on behalf of API clients)"
)
"""Who a page request says it is: the fetcher's and the browser's alike."""
DEFAULT_PORTS: Final = frozenset({80, 443, 8080, 8443})
_SHARED_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_BENCHMARKING: Final = ipaddress.ip_network("198.18.0.0/15")
_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")


class BlockedTarget(Exception):
    """The URL may not be fetched; ``reason`` says why in words a job can record."""

    code = "blocked_target"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class NetPolicy:
    allowed_private: frozenset[tuple[str, int]] = frozenset()
    """(host, port) pairs that may be fetched although private (local mode, dev sites)."""
    allowed_ports: frozenset[int] = DEFAULT_PORTS

    @classmethod
    def from_host_ports(
        cls, pairs: Iterable[str], ports: frozenset[int] = DEFAULT_PORTS
    ) -> NetPolicy:
        allowed = set()
        for pair in pairs:
            host, _, port = pair.rpartition(":")
            allowed.add((host.strip("[]").lower(), int(port)))
        return cls(allowed_private=frozenset(allowed), allowed_ports=ports)


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, with the addresses it may be connected to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...] = field(default=())


class DnsError(Exception):
    """The host's name did not resolve: a DNS failure, which may pass (retryable), not a
    target the policy refuses."""

    code = "dns_error"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise BlockedTarget(f"the host name {host[:80]!r} is not a valid DNS name") from None
    except socket.gaierror as exc:
        raise DnsError(f"the host {host!r} does not resolve ({exc.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def why_blocked(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached, or None for a public address."""
    for a in unwrap(address):
        if a in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
    for a in unwrap(address):
        reason = _private_reason(a)
        if reason:
            return f"{address} is {reason}" if a == address else f"{address} wraps {a}, {reason}"
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return f"{address} is a local-use NAT64 address"
    return None


def _private_reason(a: IPAddress) -> str | None:
    checks: list[tuple[bool, str]] = [
        (a.is_unspecified, "the unspecified address"),
        (a.is_loopback, "a loopback address"),
        (a.is_link_local, "a link-local address"),
        (a.is_multicast, "a multicast address"),
        (
            isinstance(a, ipaddress.IPv4Address) and a in _SHARED_CGNAT,
            "a carrier-grade NAT address",
        ),
        (isinstance(a, ipaddress.IPv4Address) and a in _BENCHMARKING, "a benchmarking address"),
        (
            isinstance(a, ipaddress.IPv4Address) and a in _THIS_NETWORK,
            "on 'this network' (0.0.0.0/8)",
        ),
        (a.is_private, "a private address"),
        (a.is_reserved, "a reserved address"),
        (isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
        (not a.is_global, "not a public address"),
    ]
    return next((why for hit, why in checks if hit), None)


def _listed_form(address: str) -> str:
    """An address as an allowed pair lists it (IPv6 compressed, no zone)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).compressed
    except ValueError:
        return address.lower()


def check_url(url: str, policy: NetPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` and resolve its host once; raise :class:`BlockedTarget` when it may
    not be fetched. Opens no connection."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BlockedTarget("the URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedTarget(
            f"the scheme {scheme or '(none)'!r} is not allowed; only http and https"
        )
    if parts.username is not None or parts.password is not None:
        raise BlockedTarget("URLs with credentials (user@host) are not allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise BlockedTarget("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    allowed_pair = (host, port) in policy.allowed_private
    listed_port = any(p == port for _, p in policy.allowed_private)
    if port not in policy.allowed_ports and not allowed_pair and not listed_port:
        raise BlockedTarget(f"port {port} is not allowed")
    if is_metadata_host(host):
        raise BlockedTarget(f"{host} is a cloud metadata address")
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else resolver(host, port)
    if not addresses:
        raise BlockedTarget(f"the host {host!r} has no address")
    if not allowed_pair and listed_port:
        # A listed pair is matched by the address a name resolves to as well (localhost:P
        # when 127.0.0.1:P is listed): every address must be listed with this port.
        allowed_pair = all(
            (_listed_form(text), port) in policy.allowed_private for text in addresses
        )
        if not allowed_pair and port not in policy.allowed_ports:
            raise BlockedTarget(
                f"port {port} is not allowed for {host} (it resolves to "
                f"{', '.join(addresses)}, not to an allowed host:{port})"
            )
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = why_blocked(address)
        if reason is None:
            continue
        if "metadata" in reason or not allowed_pair:
            raise BlockedTarget(reason)
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))


def pinned_url(
    target: Target, address: str | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to (the checked address in place of the host), the Host header,
    and the request extensions that keep TLS on the original name (SNI and certificate)."""
    parts = urlsplit(target.url)
    ip = address or target.addresses[0]
    literal = f"[{ip}]" if ":" in ip else ip
    default = 443 if target.scheme == "https" else 80
    netloc = literal if target.port == default else f"{literal}:{target.port}"
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    url = urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, {"Host": host_header}, extensions

"""Value types shared by the stage settings (synth time) and the runtime configuration.

They live in the runtime package so both sides validate a setting with the same code:
a fetch allow-list entry or a model policy that `cdk synth` accepts is exactly one that a
function accepts at cold start.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import date
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ModelTier = Literal["nano", "mini", "full"]
MODEL_TIERS: Final[tuple[ModelTier, ...]] = get_args(ModelTier)

# Cloud instance-metadata endpoints: never reachable, whatever any setting says.
METADATA_HOSTS: Final[frozenset[str]] = frozenset(
    {
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba Cloud
        "metadata.google.internal",
        "metadata",
    }
)

_HOSTNAME_RE: Final = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_MODEL_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SIX_TO_FOUR: Final = ipaddress.ip_network("2002::/16")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_V4: Final = re.compile(r"^[0-9a-fA-FxX.]+$")


def is_metadata_host(host: str) -> bool:
    """True for a cloud metadata address in any spelling we can normalise: the names, the
    addresses, an IPv6 address embedding one (IPv4-mapped, 6to4, NAT64, Teredo) and the
    legacy IPv4 forms (``0xa9.0xfe.0xa9.0xfe``, ``2852039166``)."""
    bare = host.strip("[]").lower().rstrip(".")
    if bare in METADATA_HOSTS:
        return True
    literal = literal_address(bare)
    return literal is not None and any(a in METADATA_ADDRESSES for a in unwrap(literal))


def literal_address(host: str) -> IPAddress | None:
    """The address a host *is*, when it is an address in any spelling, else None."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def unwrap(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address it embeds (mapped, 6to4, NAT64)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address in _SIX_TO_FOUR and address.sixtofour is not None:
            found.append(address.sixtofour)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.teredo is not None:
            found.append(address.teredo[1])
    return found


def _is_ip_literal(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(h) for h in METADATA_HOSTS if _is_ip_literal(h)
)
"""The metadata endpoints' addresses (:data:`METADATA_HOSTS` less the names)."""


def _parse_host_port(value: str) -> str:
    """Validate ``host:port`` (``[v6]:port`` for IPv6) and return it normalised."""
    if not isinstance(value, str):  # pragma: no cover - pydantic passes strings only
        raise ValueError("expected a 'host:port' string")
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not of the form host:port")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: port must be a number from 1 to 65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{value!r}: unbalanced '[' in IPv6 host")
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise ValueError(f"{value!r}: {inner!r} is not an IPv6 address") from exc
        host = f"[{ipaddress.IPv6Address(inner).compressed}]"
    else:
        host = host.lower()
        if not (_is_ip_literal(host) or _HOSTNAME_RE.fullmatch(host)):
            raise ValueError(f"{value!r}: {host!r} is not a host name or IPv4 address")
    if is_metadata_host(host):
        raise ValueError(f"{value!r}: cloud metadata addresses can never be allowed")
    return f"{host}:{int(port_text)}"


HostPort = Annotated[str, AfterValidator(_parse_host_port)]
"""A ``host:port`` pair that may be fetched although it is on a private network."""


def _check_model_name(value: str) -> str:
    if not _MODEL_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid model name")
    return value


ModelName = Annotated[str, AfterValidator(_check_model_name)]


def _default_tier_models() -> dict[ModelTier, str]:
    return {"nano": "gpt-5-nano", "mini": "gpt-5-mini", "full": "gpt-5"}


class ModelEntry(BaseModel):
    """One model of the catalogue: its tier, limits, prices per 1M tokens and shutdown date.

    The seeded entries live in ``llm/models.json``; a stage may add models an
    OpenAI-compatible endpoint serves (``ModelPolicy.extra_models``) in the same shape.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: ModelTier
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    cache_write: float = Field(default=0.0, ge=0)
    output: float = Field(ge=0)
    long_context_above: int | None = Field(default=None, gt=0)
    """Input tokens above which the long-context prices apply (to the whole request)."""
    long_context_multiplier: float = Field(default=1.0, ge=1)
    reasoning: bool = False
    shutdown: date | None = None
    successor: ModelName | None = None


class ModelPolicy(BaseModel):
    """Which model tiers a stage may use, the model behind each, and the last resort."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_tiers: tuple[ModelTier, ...] = Field(default=MODEL_TIERS, min_length=1)
    tier_models: dict[ModelTier, ModelName] = Field(default_factory=_default_tier_models)
    production_fallback: ModelName = "gpt-4.1"
    extra_models: dict[ModelName, ModelEntry] = Field(default_factory=dict)
    """Models an OpenAI-compatible endpoint (``OPENAI_BASE_URL``) serves beyond the catalogue."""

    @model_validator(mode="after")
    def _every_allowed_tier_has_a_model(self) -> ModelPolicy:
        if len(set(self.allowed_tiers)) != len(self.allowed_tiers):
            raise ValueError("allowed_tiers lists a tier twice")
        missing = [t for t in self.allowed_tiers if t not in self.tier_models]
        if missing:
            raise ValueError(f"tier_models has no model for allowed tier(s): {', '.join(missing)}")
        return self


PROTECTED_STAGES: Final = frozenset({"prod", "staging"})
"""Stages that may neither fetch private addresses nor allow every CORS origin."""


def check_private_hosts(stage: str, hosts: tuple[str, ...] | list[str]) -> None:
    """Private host:port pairs are for local mode and development only."""
    if hosts and stage in PROTECTED_STAGES:
        raise ValueError(
            f"the {stage} stage may not fetch private addresses (remove {', '.join(hosts)})"
        )


def check_cors_origins(stage: str, origins: tuple[str, ...] | list[str]) -> None:
    """Every origin ('*') is for local mode and development only."""
    if "*" in origins and stage in PROTECTED_STAGES:
        raise ValueError(f"the {stage} stage may not allow every origin ('*')")

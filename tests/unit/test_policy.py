from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from atlas_codex.ground.policy import HostPort, ModelPolicy, check_private_hosts, is_metadata_host

HOST_PORT: TypeAdapter[str] = TypeAdapter(HostPort)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("127.0.0.1:8765", "127.0.0.1:8765"),
        ("LocalHost:80", "localhost:80"),
        ("[0:0::1]:8080", "[::1]:8080"),
    ],
)
def test_host_port_pairs_are_normalised(raw: str, normalised: str) -> None:
    assert HOST_PORT.validate_python(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "127.0.0.1",
        "localhost:",
        ":80",
        "host:0",
        "host:65536",
        "host:http",
        "[::1:80",
        "bad_host!:80",
        "[zz::1]:80",
    ],
)
def test_malformed_host_port_pairs_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        HOST_PORT.validate_python(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "169.254.169.254:80",
        "[fd00:ec2::254]:80",
        "100.100.100.200:80",
        "metadata.google.internal:80",
    ],
)
def test_metadata_addresses_can_never_be_allowed(raw: str) -> None:
    with pytest.raises(ValidationError, match="metadata"):
        HOST_PORT.validate_python(raw)


def test_metadata_hosts_are_recognised_in_other_spellings() -> None:
    assert is_metadata_host("[FD00:EC2:0::254]")
    assert is_metadata_host("169.254.169.254.")
    assert not is_metadata_host("169.254.169.253")


def test_only_local_and_dev_may_list_private_hosts() -> None:
    check_private_hosts("local", ["127.0.0.1:8765"])
    check_private_hosts("prod", [])
    with pytest.raises(ValueError, match="the prod stage may not fetch private addresses"):
        check_private_hosts("prod", ["10.0.0.1:80"])
    with pytest.raises(ValueError, match="staging"):
        check_private_hosts("staging", ["10.0.0.1:80"])


def test_every_allowed_tier_needs_a_model() -> None:
    with pytest.raises(ValidationError, match="no model for allowed tier"):
        ModelPolicy(allowed_tiers=("nano", "full"), tier_models={"nano": "gpt-5-nano"})
    with pytest.raises(ValidationError, match="twice"):
        ModelPolicy(allowed_tiers=("nano", "nano"))

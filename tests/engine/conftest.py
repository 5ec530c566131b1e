from __future__ import annotations

from collections.abc import Iterator

import pytest

from atlas_codex.engine.pages.fetch import Fetcher, FetchLimits
from atlas_codex.ground.netguard import NetPolicy
from tests.site import Site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


@pytest.fixture
def fetcher(site: Site) -> Fetcher:
    """A fetcher that may reach the test site (a listed private host:port) and nothing else private."""
    return Fetcher(
        policy=NetPolicy.from_host_ports([site.host_port]),
        limits=FetchLimits(max_bytes=2_000_000, total_timeout_s=10),
    )

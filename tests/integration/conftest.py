"""The AWS fixtures (moto server, local stage) live in tests/conftest.py, shared with e2e.
Here: the API handler with a scripted engine, and keys of two owners."""

from __future__ import annotations

import pytest

from atlas_codex.ground.config import RuntimeConfig
from tests.fakes import ScriptedExtractor
from tests.support.functions import ApiFunction, api_with


@pytest.fixture
def api(config: RuntimeConfig) -> ApiFunction:
    return api_with(config, ScriptedExtractor())


@pytest.fixture
def key(api: ApiFunction) -> str:
    issued: str = api.keys.issue("owner-a").key
    return issued


@pytest.fixture
def other_key(api: ApiFunction) -> str:
    issued: str = api.keys.issue("owner-b").key
    return issued

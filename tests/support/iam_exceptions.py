"""Grants that no call recorded in the suite uses, kept on purpose, each with its reason."""

from __future__ import annotations

from typing import Final

from tests.support.iam import KeptGrant

REVIEWED: Final[tuple[KeptGrant, ...]] = ()

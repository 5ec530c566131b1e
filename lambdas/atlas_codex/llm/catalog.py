"""The model catalogue, defined once (``models.json``, validated here), and what calls cost.

Routing speaks in tiers; which model serves a tier is the stage's model policy. The
catalogue knows each model's prices and shutdown date, and the router never sends a request
to a model past its shutdown: :meth:`Catalog.live` follows the successors and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, model_validator

from atlas_codex.ground.policy import ModelEntry, ModelPolicy

CATALOG_FILE: Final = Path(__file__).with_name("models.json")
SHUTDOWN_WARNING_DAYS: Final = 30
MILLION: Final = Decimal(1_000_000)


class UnknownModel(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"the model {self.name!r} is not in the catalogue (add it to the model policy's extra_models)"


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: date
    notes: str = ""
    models: dict[str, ModelEntry]

    @model_validator(mode="after")
    def _successors_exist_and_end(self) -> Catalog:
        for name, entry in self.models.items():
            seen = {name}
            successor = entry.successor
            while successor is not None:
                if successor not in self.models:
                    raise ValueError(f"{name}: successor {successor!r} is not in the catalogue")
                if successor in seen:
                    raise ValueError(f"{name}: the successors loop back to {successor!r}")
                seen.add(successor)
                successor = self.models[successor].successor
        return self

    def with_extra(self, extra: dict[str, ModelEntry]) -> Catalog:
        return Catalog(checked=self.checked, notes=self.notes, models={**self.models, **extra})

    def get(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name) from None

    def live(self, name: str, today: date) -> tuple[str, list[str]]:
        """The model to call for ``name`` today, and why it is not ``name`` when it is not."""
        reasons: list[str] = []
        current = name
        while True:
            entry = self.get(current)
            if entry.shutdown is None or today < entry.shutdown:
                return current, reasons
            if entry.successor is None:
                raise UnknownModel(f"{current} (shut down on {entry.shutdown}, no successor)")
            reasons.append(
                f"{current} was shut down on {entry.shutdown}: using its successor {entry.successor}"
            )
            current = entry.successor

    def near_shutdown(
        self, names: list[str], today: date, days: int = SHUTDOWN_WARNING_DAYS
    ) -> list[tuple[str, date]]:
        """Configured models whose shutdown is within ``days`` (or past)."""
        out = []
        for name in dict.fromkeys(names):
            entry = self.models.get(name)
            if entry and entry.shutdown and (entry.shutdown - today).days <= days:
                out.append((name, entry.shutdown))
        return out


@cache
def seeded_catalog() -> Catalog:
    return Catalog.model_validate_json(CATALOG_FILE.read_text())


def catalog_for(policy: ModelPolicy) -> Catalog:
    return seeded_catalog().with_extra(dict(policy.extra_models))


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    """Reasoning tokens included: they are billed as output."""


def cost_usd(entry: ModelEntry, usage: Usage) -> Decimal:
    """What a call costs at list prices: uncached, cached and cache-write input, and output,
    with the long-context step applied to the whole request when its input is above it."""
    uncached = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens)
    total = (
        Decimal(uncached) * Decimal(str(entry.input))
        + Decimal(usage.cached_input_tokens) * Decimal(str(entry.cached_input))
        + Decimal(usage.cache_write_tokens) * Decimal(str(entry.cache_write or entry.input))
        + Decimal(usage.output_tokens) * Decimal(str(entry.output))
    ) / MILLION
    if entry.long_context_above is not None and usage.input_tokens > entry.long_context_above:
        total *= Decimal(str(entry.long_context_multiplier))
    return total

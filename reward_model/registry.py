"""Scorers registered by name, so a new scorer is one decorated class in its own module.

Entries are either a factory or a "module:attribute" string imported on first use, which keeps the
registry cheap to import (no torch or model code is loaded until a scorer is built).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from reward_model.interface import Scorer

ScorerFactory = Callable[..., Scorer]

class LazyRegistry:
    """Names to objects, each given either directly or as a "module:attribute" string imported on first
    use. One mechanism for every registry of the project (scorers here, search strategies elsewhere)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def add(self, name: str, target: Any) -> Any:
        existing = self._entries.get(name)
        if existing is not None and existing != target and not isinstance(existing, str):
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._entries[name] = target
        return target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, attribute = entry.split(":")
            entry = getattr(importlib.import_module(module_name), attribute)
            self._entries[name] = entry
        return entry


_SCORERS = LazyRegistry("scorer")


def register_scorer(name: str, factory: ScorerFactory | str | None = None):
    """Register `factory` under `name`; usable as a decorator when `factory` is omitted."""

    def add(target: ScorerFactory | str) -> ScorerFactory | str:
        return _SCORERS.add(name, target)

    return add(factory) if factory is not None else add


def available_scorers() -> list[str]:
    return _SCORERS.names()


def get_scorer_factory(name: str) -> ScorerFactory:
    return _SCORERS.get(name)


def build_scorer(name: str, **kwargs: Any) -> Scorer:
    return get_scorer_factory(name)(**kwargs)


# Scorers this package ships. Other packages register theirs the same way from their own modules.
register_scorer("omniquality-r", "reward_model.scorer:OmniQualityScorer")

"""One mechanism for everything registered by name, and the scorers registered with it.

Entries are either an object or a "module:attribute" string imported on first use, which keeps a registry
cheap to import (no torch or model code is loaded until an entry is used). A name is registered once: a
second registration under it raises, unless it names the very same target. Registries can also be told
how to find entries that others bring (`add_loader`): a loader runs once, before the first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from reward_model.interface import Scorer

ScorerFactory = Callable[..., Scorer]


class LazyRegistry:
    """Names to objects, each given directly or as a "module:attribute" string imported on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}  # name -> target, replaced by the imported object once used
        self._given: dict[str, Any] = {}  # name -> the target as registered, to recognise a re-add
        self._loaders: list[Callable[[], None]] = []

    def add(self, name: str, target: Any) -> Any:
        if name in self._entries and target is not self._entries[name] and target != self._given.get(name):
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({self._given.get(name)!r})")
        self._entries[name] = target
        self._given.setdefault(name, target)
        return target

    def add_loader(self, loader: Callable[[], None]) -> None:
        """`loader` registers more entries; it runs once, the first time a name or the listing is asked for."""
        self._loaders.append(loader)

    def _run_loaders(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def names(self) -> list[str]:
        self._run_loaders()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> Any:
        self._run_loaders()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or 'none'}")
        entry = self._entries[name] = resolve(self._entries[name])
        return entry


def resolve(target: Any) -> Any:
    """The object a "module:attribute" string names (imported now); any other target as it is."""
    if not isinstance(target, str):
        return target
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


SCORERS = LazyRegistry("scorer")


def register_scorer(name: str, factory: ScorerFactory | str | None = None):
    """Register `factory` under `name`; usable as a decorator when `factory` is omitted."""

    def add(target: ScorerFactory | str) -> ScorerFactory | str:
        return SCORERS.add(name, target)

    return add(factory) if factory is not None else add


def available_scorers() -> list[str]:
    return SCORERS.names()


def get_scorer_factory(name: str) -> ScorerFactory:
    return SCORERS.get(name)


def build_scorer(name: str, **kwargs: Any) -> Scorer:
    return get_scorer_factory(name)(**kwargs)


# Scorers this package ships. Other packages register theirs the same way from their own modules.
register_scorer("omniquality-r", "reward_model.scorer:OmniQualityScorer")

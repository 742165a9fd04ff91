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

_REGISTRY: dict[str, ScorerFactory | str] = {}


def register_scorer(name: str, factory: ScorerFactory | str | None = None):
    """Register `factory` under `name`; usable as a decorator when `factory` is omitted."""

    def add(target: ScorerFactory | str) -> ScorerFactory | str:
        existing = _REGISTRY.get(name)
        if existing is not None and existing != target and not isinstance(existing, str):
            raise ValueError(f"a scorer named {name!r} is already registered")
        _REGISTRY[name] = target
        return target

    return add(factory) if factory is not None else add


def available_scorers() -> list[str]:
    return sorted(_REGISTRY)


def get_scorer_factory(name: str) -> ScorerFactory:
    if name not in _REGISTRY:
        raise KeyError(f"unknown scorer {name!r}; available: {', '.join(available_scorers())}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module_name, attribute = entry.split(":")
        entry = getattr(importlib.import_module(module_name), attribute)
        _REGISTRY[name] = entry
    return entry


def build_scorer(name: str, **kwargs: Any) -> Scorer:
    return get_scorer_factory(name)(**kwargs)


# Scorers this package ships. Other packages register theirs the same way from their own modules.
register_scorer("omniquality-r", "reward_model.scorer:OmniQualityScorer")

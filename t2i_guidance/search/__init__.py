"""Search has one home: every strategy implements `SearchStrategy` and is registered by name.

    from t2i_guidance.search import build_strategy
    search = build_strategy("best-of-n", generator, scorer, weights=..., n=8)
    result = search(prompt, settings, seed=0, budget=Budget(nfes=320))

A new strategy is one class in its own module plus one `register_strategy` call; no core file changes.
Entries are "module:Class" strings imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

from t2i_guidance.registries import STRATEGIES as _STRATEGIES


def register_strategy(name: str, target: Any) -> None:
    """Register a strategy class (or a "module:Class" string) under `name`."""
    _STRATEGIES.add(name, target)


def available_strategies() -> list[str]:
    return _STRATEGIES.names()


def strategy_class(name: str) -> type:
    return _STRATEGIES.get(name)


def build_strategy(name: str, generator: Any, scorer: Any, **options: Any) -> Any:
    return strategy_class(name)(generator, scorer, **options)

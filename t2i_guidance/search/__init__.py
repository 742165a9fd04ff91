"""Search has one home: every strategy implements `SearchStrategy` and is registered by name.

    from t2i_guidance.search import build_strategy
    search = build_strategy("best-of-n", generator, scorer, weights=..., n=8)
    result = search(prompt, settings, seed=0, budget=Budget(nfes=320))

A new strategy is one class in its own module plus one `register_strategy` call; no core file changes.
Entries are "module:Class" strings imported on first use, so importing this package stays cheap. The
functions live with the registry in t2i_guidance.registries; this package names them for its users.
"""

from t2i_guidance.registries import STRATEGIES as _STRATEGIES
from t2i_guidance.registries import available_strategies, build_strategy, register_strategy, strategy_class

__all__ = ["_STRATEGIES", "available_strategies", "build_strategy", "register_strategy", "strategy_class"]

"""The registry of scorers by name: reward_model's own plus those the guidance tool ships.

Importing this module makes every scorer the project ships available by name (`build_scorer("oracle")`).
"""

from __future__ import annotations

from reward_model.registry import available_scorers, build_scorer, get_scorer_factory, register_scorer

register_scorer("oracle", "t2i_guidance.world.oracles:OracleScorer")

__all__ = ["available_scorers", "build_scorer", "get_scorer_factory", "register_scorer"]

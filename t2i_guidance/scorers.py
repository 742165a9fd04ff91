"""Registers the guidance tool's own scorers beside those of reward_model.

Importing this module makes every scorer the project ships available by name.
"""

from __future__ import annotations

from reward_model.registry import available_scorers, build_scorer, register_scorer

register_scorer("oracle", "t2i_guidance.world.oracles:OracleScorer")

__all__ = ["available_scorers", "build_scorer", "register_scorer"]

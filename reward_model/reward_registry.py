"""GRPO rewards by name: a config's `rewards: [format, accuracy]` picks them, a plugin adds its own with
`register_reward`. Each is bound to its options and named for TRL's logs."""

from __future__ import annotations

from collections.abc import Sequence

from reward_model.interface import LazyRegistry
from reward_model.rewards import RewardFunc

REWARDS = LazyRegistry("reward")
REWARDS.add("accuracy", "reward_model.rewards:accuracy_reward")
REWARDS.add("format", "reward_model.rewards:format_reward")
REWARDS.add("rank", "reward_model.rewards:rank_reward")
REWARDS.add("consistency", "reward_model.rewards:consistency_reward")
REWARDS.add("check-consistency", "reward_model.check_consistency:check_consistency_reward")


def register_reward(name: str, func: RewardFunc) -> None:
    # Stricter than a re-add of the same target: a reward's name is the metric TRL logs, so it is never reused.
    if name in REWARDS.names():
        raise ValueError(f"a reward named {name!r} is already registered")
    REWARDS.add(name, func)


def build_reward_funcs(names: Sequence[str], options: dict[str, dict] | None = None) -> list[RewardFunc]:
    """Reward callables by name, each bound to its options and named for TRL's logs."""
    options = options or {}
    unknown = [name for name in names if name not in REWARDS.names()]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; available: {', '.join(REWARDS.names())}")
    return [_bind(name, REWARDS.get(name), options.get(name, {})) for name in names]


def _bind(name: str, func: RewardFunc, options: dict) -> RewardFunc:
    def reward(*args: object, **kwargs: object) -> list[float | None]:
        return func(*args, **(kwargs | options))

    reward.__name__ = reward.__qualname__ = name  # TRL names the logged metric after the function
    return reward

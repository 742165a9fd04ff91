"""GRPO reward functions, registered by name so extra rewards plug in without touching the trainer.

Every function has TRL's reward signature: `f(completions, **columns) -> list[float | None]`, where the
dataset columns (`label`, `task`, ...) arrive as keyword lists aligned with `completions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from reward_model.parsing import has_strict_format, parse_answer

RewardFunc = Callable[..., list[float | None]]

DEFAULT_SIGMA = 0.8
FORMAT_REWARD = 0.5
# Per-task sigma multipliers present (off by default) in the authors' code.
PAPER_TASK_SIGMA_SCALE = {"technical": 0.8, "aesthetic": 1.5, "alignment": 1.5}


def completion_text(completion: object) -> str:
    """The text of a completion, whether TRL passes a string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""


def gaussian_accuracy(prediction: float | None, label: float, sigma: float = DEFAULT_SIGMA) -> float:
    """exp(-(pred - label)^2 / (2 sigma^2)); 0 when no number could be read."""
    if prediction is None:
        return 0.0
    return math.exp(-((prediction - label) ** 2) / (2.0 * sigma**2))


def accuracy_reward(
    completions: Sequence[object],
    label: Sequence[float],
    task: Sequence[str] | None = None,
    sigma: float = DEFAULT_SIGMA,
    task_sigma_scale: dict[str, float] | None = None,
    **_: object,
) -> list[float]:
    """Gaussian closeness of the parsed answer to the label, optionally with a per-task sigma."""
    rewards = []
    for index, completion in enumerate(completions):
        task_sigma = sigma
        if task_sigma_scale and task is not None:
            task_sigma = sigma * task_sigma_scale.get(task[index], 1.0)
        score = parse_answer(completion_text(completion)).score
        rewards.append(gaussian_accuracy(score, float(label[index]), task_sigma))
    return rewards


def format_reward(completions: Sequence[object], value: float = FORMAT_REWARD, **_: object) -> list[float]:
    """`value` for exactly one think block followed by exactly one answer block, else 0."""
    return [value if has_strict_format(completion_text(c)) else 0.0 for c in completions]


def rank_reward(completions: Sequence[object], label: Sequence[float], **_: object) -> list[float]:
    """A PreResQ-R1 style ranking reward: how often this answer orders correctly against the others.

    For each completion, the fraction of batch entries with a different label whose predicted order
    (against this prediction) agrees with the label order. Unreadable answers get 0 and are not compared.
    """
    scores = [parse_answer(completion_text(c)).score for c in completions]
    rewards = []
    for i, mine in enumerate(scores):
        if mine is None:
            rewards.append(0.0)
            continue
        agree = total = 0
        for j, other in enumerate(scores):
            if j == i or other is None or label[j] == label[i]:
                continue
            total += 1
            agree += (mine - other) * (label[i] - label[j]) > 0
        rewards.append(agree / total if total else 0.0)
    return rewards


REWARDS: dict[str, RewardFunc] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "rank": rank_reward,
}


def register_reward(name: str, func: RewardFunc) -> None:
    if name in REWARDS:
        raise ValueError(f"reward {name!r} is already registered")
    REWARDS[name] = func


def build_reward_funcs(names: Sequence[str], options: dict[str, dict] | None = None) -> list[RewardFunc]:
    """Reward callables by name, each bound to its options and named for TRL's logs."""
    options = options or {}
    unknown = [name for name in names if name not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; choose from {sorted(REWARDS)}")
    return [_bind(name, REWARDS[name], options.get(name, {})) for name in names]


def _bind(name: str, func: RewardFunc, options: dict) -> RewardFunc:
    def reward(*args: object, **kwargs: object) -> list[float | None]:
        return func(*args, **(kwargs | options))

    reward.__name__ = reward.__qualname__ = name  # TRL names the logged metric after the function
    return reward

"""Paired statistics over benchmark rows: bootstrap intervals clustered by prompt, win rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 2000


def bootstrap_interval(
    groups: dict[str, Sequence[float]], statistic: Callable[[dict[str, np.ndarray]], float],
    resamples: int = RESAMPLES, seed: int = 0,
) -> tuple[float, float, float] | None:
    """(statistic, 2.5 %, 97.5 %) resampling the values of every group (task) independently, with
    replacement. Values are per-prompt numbers, so prompts, not images, are the resampled unit."""
    arrays = {k: np.asarray(v, dtype=float) for k, v in groups.items() if len(v)}
    if not arrays:
        return None
    rng = np.random.default_rng(seed)
    point = statistic(arrays)
    draws = [statistic({k: a[rng.integers(0, len(a), len(a))] for k, a in arrays.items()}) for _ in range(resamples)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(point), float(low), float(high)


def mean_of_group_means(arrays: dict[str, np.ndarray]) -> float:
    """GenEval's score: the mean of the per-task means."""
    return float(np.mean([a.mean() for a in arrays.values()]))


def pooled_mean(arrays: dict[str, np.ndarray]) -> float:
    return float(np.concatenate(list(arrays.values())).mean())


def per_prompt(values: Sequence[tuple[str, str, float]]) -> dict[str, list[float]]:
    """(task, prompt id, value) per image -> task -> per-prompt means."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task, prompt_id, value in values:
        cells[(task, prompt_id)].append(value)
    groups: dict[str, list[float]] = defaultdict(list)
    for (task, _), vals in sorted(cells.items()):
        groups[task].append(float(np.mean(vals)))
    return dict(groups)


def win_rate(differences: Sequence[float], tolerance: float = 1e-9) -> dict[str, float]:
    """Share of pairs where the guided image beats, ties or loses to the unguided one."""
    d = np.asarray(differences, dtype=float)
    if not len(d):
        return {"wins": 0.0, "ties": 0.0, "losses": 0.0, "pairs": 0}
    return {"wins": float((d > tolerance).mean()), "ties": float((abs(d) <= tolerance).mean()),
            "losses": float((d < -tolerance).mean()), "pairs": int(len(d))}

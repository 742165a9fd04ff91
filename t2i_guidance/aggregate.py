"""Weights over the three dimensions, and the one number candidates are ranked by."""

from __future__ import annotations

from collections.abc import Mapping

from reward_model.interface import DIMENSIONS, DimensionScore

DEFAULT_WEIGHTS: dict[str, float] = {"technical": 1.0, "aesthetic": 1.0, "alignment": 1.0}


def parse_weights(text: str) -> dict[str, float]:
    """Parse "technical=1,aesthetic=1,alignment=2"; dimensions not named get weight 0."""
    weights = dict.fromkeys(DIMENSIONS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DIMENSIONS:
            raise ValueError(f"bad weight {part!r}: expected DIMENSION=NUMBER with DIMENSION in {DIMENSIONS}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"bad weight {part!r}: {value.strip()!r} is not a number") from None
        if weights[name] < 0:
            raise ValueError(f"bad weight {part!r}: weights must be >= 0")
    if not any(weights.values()):
        raise ValueError("at least one weight must be positive")
    return weights


def active_dimensions(weights: Mapping[str, float]) -> list[str]:
    return [d for d in DIMENSIONS if weights.get(d, 0.0) > 0]


def aggregate(scores: Mapping[str, DimensionScore], weights: Mapping[str, float]) -> float | None:
    """Weighted mean over the weighted dimensions, or None when any of them has no valid score.

    A candidate with a missing score is not ranked: filling the gap would invent a number.
    """
    total = weight_sum = 0.0
    for dimension in active_dimensions(weights):
        result = scores.get(dimension)
        if result is None or not result.ok:
            return None
        total += weights[dimension] * result.score
        weight_sum += weights[dimension]
    return total / weight_sum


def lower_confidence_bound(
    scores: Mapping[str, DimensionScore], weights: Mapping[str, float], lam: float
) -> float | None:
    """Weighted mean of (mean - lam * std) per dimension: resists the winner's curse of noisy scores.

    A dimension scored from one sample has no spread and counts at its value; None as for `aggregate`.
    """
    total = weight_sum = 0.0
    for dimension in active_dimensions(weights):
        result = scores.get(dimension)
        if result is None or not result.ok:
            return None
        total += weights[dimension] * (result.score - lam * (result.std or 0.0))
        weight_sum += weights[dimension]
    return total / weight_sum

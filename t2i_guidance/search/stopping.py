"""Stop drawing when good enough: a rule shared by best-of-N and the search loops.

A run stops once its best selection value (the weighted score, or its lower confidence bound with
`selection="lcb"`) reaches `target`, or once the expected gain of another batch falls below `min_gain`.
The expected gain models the scores seen so far as a normal distribution N(mean, std) and asks how
much the best of `batch` more draws would beat the best so far:
E[max(0, max(X_1..X_batch) - best)] = integral from best to infinity of 1 - Phi((x - mean) / std)^batch dx.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SCORES_FOR_GAIN = 3  # fewer scores say nothing about their spread
_GRID = 400  # integration points; the integrand is smooth and negligible past mean + 8 std


def expected_gain(values: Sequence[float], batch: int) -> float:
    """How much the best of `batch` more draws is expected to beat max(values), under a normal fit."""
    best, mean = max(values), statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if std == 0.0 or batch < 1:
        return 0.0
    top = max(best, mean + 8 * std)
    if top <= best:
        return 0.0
    width = (top - best) / _GRID

    def tail(x: float) -> float:
        below = 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))
        return 1 - below**batch

    return width * (sum(tail(best + i * width) for i in range(1, _GRID)) + (tail(best) + tail(top)) / 2)


@dataclass(frozen=True)
class StopRule:
    target: float | None = None
    min_gain: float | None = None

    def __post_init__(self) -> None:
        for name in ("target", "min_gain"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.min_gain is not None and self.min_gain <= 0:
            raise ValueError(f"min_gain must be positive, got {self.min_gain}")

    @property
    def active(self) -> bool:
        return self.target is not None or self.min_gain is not None

    def batch(self, wanted: int, batch_size: int | None) -> int:
        """How many to draw before looking again: one at a time when adaptive, unless a batch size is set."""
        return min(wanted, batch_size or (1 if self.active else wanted))

    def reason(self, values: Sequence[float], next_batch: int) -> str | None:
        """Why to stop now ("target", "small_gain"), or None to go on; `values` are the scored selection values."""
        if not values:
            return None
        if self.target is not None and max(values) >= self.target:
            return "target"
        if (self.min_gain is not None and len(values) >= MIN_SCORES_FOR_GAIN
                and expected_gain(values, next_batch) < self.min_gain):
            return "small_gain"
        return None

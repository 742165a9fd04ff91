"""The one compute ledger every strategy fills: NFEs, scorer requests, tokens, seconds per stage, memory;
and when to stop spending.

A strategy meters what it spends as it goes (`add_candidates`, `add_scores`, `stage`), asks the ledger
whether a budget still allows the next step (`allows`), and records what a shortcut avoided (`saved`,
e.g. the reasoning requests a cascade did not make).

Stop drawing when good enough (`StopRule`, shared by best-of-N and the search loops): a run stops once its
best selection value (the weighted score, or its lower confidence bound with `selection="lcb"`) reaches
`target`, or once the expected gain of another batch falls below `min_gain`. The expected gain models the
scores seen so far as a normal distribution N(mean, std) and asks how much the best of `batch` more draws
would beat the best so far:
E[max(0, max(X_1..X_batch) - best)] = integral from best to infinity of 1 - Phi((x - mean) / std)^batch dx.
"""

from __future__ import annotations

import math
import re
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from reward_model.interface import DimensionScore


@dataclass(frozen=True)
class Budget:
    """A compute budget: denoiser evaluations, wall seconds, or both (whichever runs out first)."""

    nfes: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("nfes", "seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"a budget in {name} must be positive, got {value}")

    @property
    def limited(self) -> bool:
        return self.nfes is not None or self.seconds is not None

    def to_dict(self) -> dict:
        return {"nfes": self.nfes, "seconds": self.seconds}


_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds|nfe|nfes)?\s*$", re.IGNORECASE)


def parse_budget(text: str) -> Budget:
    """"400" or "400nfe" is 400 denoiser evaluations; "30s" is 30 wall seconds."""
    match = _BUDGET.match(text or "")
    if not match:
        raise ValueError(f"bad budget {text!r}: expected NUMBER (NFEs), NUMBERnfe or NUMBERs (seconds)")
    value, unit = float(match.group(1)), (match.group(2) or "nfe").lower()
    if value <= 0:
        raise ValueError(f"bad budget {text!r}: must be positive")
    return Budget(seconds=value) if unit.startswith("s") else Budget(nfes=value)


@dataclass
class CostLedger:
    nfes: float = 0.0
    candidates: int = 0
    scorer_requests: int = 0  # (image, dimension) pairs sent to a model
    scorer_cache_hits: int = 0
    generated_tokens: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_cuda_mb: float | None = None
    saved: dict[str, float] = field(default_factory=dict)  # compute a shortcut avoided, by kind
    by_scorer: dict[str, dict[str, int]] = field(default_factory=dict)  # requests and tokens per scorer role
    _started: float = field(default_factory=time.perf_counter, repr=False)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def add_candidates(self, candidates: Iterable) -> None:
        for candidate in candidates:
            self.nfes += candidate.nfes
            self.candidates += 1

    def add_scores(self, scores: Iterable[DimensionScore], role: str = "main") -> None:
        entry = self.by_scorer.setdefault(role, {"requests": 0, "cache_hits": 0, "generated_tokens": 0})
        for score in scores:
            self.scorer_requests += not score.cached
            self.scorer_cache_hits += score.cached
            self.generated_tokens += score.generated_tokens
            entry["requests"] += not score.cached
            entry["cache_hits"] += score.cached
            entry["generated_tokens"] += score.generated_tokens

    def add_saved(self, kind: str, amount: float) -> None:
        self.saved[kind] = self.saved.get(kind, 0.0) + amount

    def allows(self, budget: Budget | None, next_nfes: float = 0.0, next_seconds: float = 0.0) -> bool:
        """Whether spending `next_nfes` more (and about `next_seconds` more) stays within the budget."""
        if budget is None:
            return True
        if budget.nfes is not None and self.nfes + next_nfes > budget.nfes + 1e-9:
            return False
        return budget.seconds is None or self.elapsed() + next_seconds <= budget.seconds

    def finish(self) -> CostLedger:
        self.seconds["total"] = self.elapsed()
        self.peak_rss_mb = peak_rss_mb()
        self.peak_cuda_mb = peak_cuda_mb()
        return self

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_cuda_mb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


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

"""Strategies the benchmark runner compares, named as `KIND:PRESET` — `unguided:embedded`,
`best-of-4:embedded-oracle` — and built over the guidance tool's own search code.

`make_search` is the one place that knows how a strategy is built from a generator and a scorer; when the
search package's registry and run builder land, only that function changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_SPEC = re.compile(r"^(unguided|best-of-(\d+)):(.+)$")


@dataclass(frozen=True)
class StrategySpec:
    """What a strategy name means: how many candidates, from which preset, guided by which scorer."""

    name: str
    kind: str  # "unguided" or "best-of-n"
    n: int
    preset: str

    @property
    def guided(self) -> bool:
        return self.kind != "unguided"


def parse_strategy(name: str) -> StrategySpec:
    """`unguided:PRESET` or `best-of-N:PRESET`; ValueError naming the problem otherwise."""
    match = _SPEC.match(name.strip())
    if not match:
        raise ValueError(f"bad strategy {name!r}: expected unguided:PRESET or best-of-N:PRESET (e.g. best-of-4:embedded)")
    from t2i_guidance.presets import load_preset

    load_preset(match.group(3))  # KeyError for an unknown preset, before any model loads
    if match.group(1) == "unguided":
        return StrategySpec(name.strip(), "unguided", 1, match.group(3))
    n = int(match.group(2))
    if n < 2:
        raise ValueError(f"bad strategy {name!r}: best-of-N needs N >= 2")
    return StrategySpec(name.strip(), "best-of-n", n, match.group(3))


def guide_of(spec: StrategySpec) -> str | None:
    """The registered scorer that picks among candidates, or None for an unguided strategy."""
    if not spec.guided:
        return None
    from t2i_guidance.presets import load_preset

    return load_preset(spec.preset).scorer


@dataclass
class Outcome:
    """One image a strategy produced, with what it cost."""

    image: Any
    seeds: list[int]
    pick: int  # index into `seeds` of the candidate kept
    guide_score: float | None  # the guide's aggregate for the pick (None when unguided)
    costs: dict = field(default_factory=dict)  # nfes, scorer_requests, generated_tokens
    seconds: float = 0.0


SearchFn = Callable[[str, list[int]], Outcome]


def make_search(spec: StrategySpec, generator: Any, scorer: Any | None) -> SearchFn:
    """(prompt, candidate seeds) -> Outcome. The adapter between the runner and the search code."""
    from t2i_guidance.aggregate import parse_weights
    from t2i_guidance.presets import load_preset
    from t2i_guidance.search.best_of_n import BestOfN

    preset = load_preset(spec.preset)
    settings = preset.generation_settings()

    if not spec.guided:
        def unguided(prompt: str, seeds: list[int]) -> Outcome:
            start = time.perf_counter()
            (candidate,) = generator.generate(prompt, seeds[:1], settings)
            costs = {"nfes": candidate.nfes, "scorer_requests": 0, "generated_tokens": 0}
            return Outcome(candidate.image, seeds[:1], 0, None, costs, time.perf_counter() - start)

        return unguided

    weights = parse_weights(preset.weights)

    def best_of_n(prompt: str, seeds: list[int]) -> Outcome:
        # BestOfN draws candidate k from seed + k; the runner's seeds are consecutive for that reason.
        if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError("best-of-N candidates use consecutive seeds")
        result = BestOfN(generator, scorer, n=len(seeds), weights=weights)(prompt, settings, seed=seeds[0])
        best = result.best
        costs = {"nfes": result.costs.nfes, "scorer_requests": result.costs.scorer_requests,
                 "generated_tokens": result.costs.generated_tokens}
        seconds = result.costs.seconds.get("total", 0.0)
        if best is None:  # nothing could be scored: no pick, recorded as such by the runner
            return Outcome(None, seeds, -1, None, costs, seconds)
        return Outcome(best.candidate.image, seeds, best.candidate.index, best.aggregate, costs, seconds)

    return best_of_n

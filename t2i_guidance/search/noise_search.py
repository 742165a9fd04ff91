"""Search over initial noises beyond random sampling: zero-order search (Ma et al. 2025).

Round 0 draws `n` random noises (best-of-n's own candidates). Each later round draws `neighbours`
noises around the pivot, the best noise so far: (pivot + step * eps) / sqrt(1 + step^2), which keeps
unit variance; eps is the noise of the neighbour's own seed (candidate k uses seed + k throughout, so
every candidate is reproducible). A neighbour that beats the pivot becomes the pivot. Stops after
`rounds` rounds, after `patience` rounds without gain, at the budget, or, with `target` / `min_gain`
(see `StopRule` in `t2i_guidance/ledger.py`), as soon as a candidate reaches the target or another batch is not worth drawing.
Packed latents (FLUX) are drawn unpacked, as the pipeline draws them, and packed; the neighbour step is
elementwise, so it is the same in either layout.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from t2i_guidance.generator import GenerationSettings, candidate_seeds
from t2i_guidance.ledger import Budget, CostLedger, StopRule
from t2i_guidance.result import ScoredCandidate
from t2i_guidance.search.base import Found, Search
from t2i_guidance.search.packed_latents import is_packed, packed_initial_noise


def neighbour(pivot: torch.Tensor, eps: torch.Tensor, step: float) -> torch.Tensor:
    return (pivot + step * eps) / math.sqrt(1.0 + step * step)


class ZeroOrderSearch(Search):
    name = "zero-order"

    @staticmethod
    def most_candidates(options: dict) -> int:
        return options["n"] + options["neighbours"] * (options["rounds"] - 1)

    def __init__(
        self,
        generator,
        scorer,
        n: int = 4,
        neighbours: int = 4,
        rounds: int = 3,
        step_size: float = 0.5,
        patience: int = 2,
        target: float | None = None,
        min_gain: float | None = None,
        **common: Any,
    ) -> None:
        super().__init__(generator, scorer, **common)
        if n < 1 or neighbours < 1 or rounds < 1 or patience < 1 or step_size <= 0:
            raise ValueError("n, neighbours, rounds and patience must be at least 1, step_size positive")
        self.n, self.neighbours, self.rounds = n, neighbours, rounds
        self.step_size, self.patience = step_size, patience
        self.stop = StopRule(target, min_gain)

    def options(self) -> dict:
        return {"n": self.n, "neighbours": self.neighbours, "rounds": self.rounds,
                "step_size": self.step_size, "patience": self.patience, "target": self.stop.target,
                "min_gain": self.stop.min_gain, **super().options()}

    def initial_noise(self, seed: int, settings: GenerationSettings) -> torch.Tensor:
        """The noise candidate `seed` starts from in a plain run of the pipeline."""
        pipeline = self.generator.pipeline
        if is_packed(pipeline):
            return packed_initial_noise(pipeline, seed, settings.height, settings.width)
        return self.generator.initial_noise(seed, settings)

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        scored: list[ScoredCandidate] = []
        noises: dict[str, torch.Tensor] = {}
        rounds: list[dict] = []
        pivot: ScoredCandidate | None = None
        without_gain, stop, early = 0, "rounds", None
        planned = self.most_candidates({"n": self.n, "neighbours": self.neighbours, "rounds": self.rounds})
        for round_index in range(self.rounds):
            size = self.n if round_index == 0 else self.neighbours
            round_scored: list[ScoredCandidate] = []
            while len(round_scored) < size:
                drawn = scored or round_scored
                want = self.draw_now(ledger, budget, size - len(round_scored), drawn[0].candidate.nfes if drawn else None)
                if want == 0:
                    break
                want = self.stop.batch(want, self.batch_size)
                first = len(scored) + len(round_scored)
                seeds = candidate_seeds(seed, want, first_index=first)
                fresh = [self.initial_noise(s, settings) for s in seeds]
                if pivot is None:
                    latents, extra = fresh, {"round": round_index, "pivot": None}
                else:
                    latents = [neighbour(noises[pivot.id], eps, self.step_size) for eps in fresh]
                    extra = {"round": round_index, "pivot": pivot.id, "step_size": self.step_size}
                candidates = self.generate(ledger, prompt, seeds, settings, first, latents=latents,
                                           progress=progress, extra=extra)
                noises.update({c.id: z for c, z in zip(candidates, latents, strict=True)})
                round_scored += self.score(ledger, candidates, prompt, progress)
                early = self.stop.reason([v for c in scored + round_scored if (v := self.value(c)) is not None],
                                         self.stop.batch(self.neighbours, self.batch_size))
                if early and len(scored) + len(round_scored) < planned:
                    break
            if not round_scored:
                stop = "budget"
                break
            scored += round_scored
            round_best = self.best_of(round_scored)
            gained = self.improves(round_best, pivot)
            if gained:
                pivot, without_gain = round_best, 0
            else:
                without_gain += 1
            rounds.append({"round": round_index, "pivot": pivot.id if pivot else None,
                           "candidates": [c.id for c in round_scored],
                           "best": round_best.id if round_best else None,
                           "best_value": self.value(round_best) if round_best else None, "improved": gained})
            if early and len(scored) < planned:
                stop = early
                self.record_saving(ledger, budget, planned - len(scored),
                                   scored[0].candidate.nfes)
                break
            if without_gain >= self.patience:
                stop = "no_gain"
                break
            if pivot is None:  # nothing could be scored: no noise to search around
                stop = "no_scores"
                break
        return Found(scored, rounds, config={"stopped": stop})

"""Particle resampling in the style of Feynman-Kac steering (Singhal et al. 2025).

N particles are denoised together. At each checkpoint the x0 prediction of every particle is judged
(`cheap_scorer`, default the main scorer) and the particles are resampled with weights
softmax(resample_lambda * potential): systematic resampling, so a particle with weight w gets about N * w
copies and, with resample_lambda = 0, every particle keeps its own slot (the run is then best-of-N).

The potential, by name (FK steering's choices), over the scores r_1..r_t of a particle's path so far:
"current" r_t (the default), "max" max(r_1..r_t), "difference" r_t - r_(t-1) (r_t at the first
checkpoint), "sum" r_1 + ... + r_t.

Copies need to diverge: deterministic samplers (DDIM, Euler, every flow-matching ODE) would otherwise
take every copy of a particle down the same path. With `copies="renoise"` (the default) the first copy
keeps the parent's latents and every further copy is the parent's x0 prediction re-noised to the next
step's noise level with fresh noise; `copies="exact"` keeps identical copies (for stochastic samplers).
A particle whose intermediate score failed is neither weighed nor replaced: it keeps its slot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from t2i_guidance.search.denoising_paths import Checkpoint, PopulationSearch

POTENTIALS: dict[str, Callable[[Sequence[float], float], float]] = {
    "current": lambda earlier, now: now,
    "max": lambda earlier, now: max([*earlier, now]),
    "difference": lambda earlier, now: now - earlier[-1] if earlier else now,
    "sum": lambda earlier, now: sum(earlier) + now,
}
COPIES = ("renoise", "exact")


def systematic_resample(weights: list[float], generator: torch.Generator) -> list[int]:
    """len(weights) indices drawn in proportion to `weights` with one uniform draw (low variance)."""
    count = len(weights)
    total = sum(weights)
    offset = float(torch.rand((), generator=generator)) / count
    chosen, cumulative, index = [], weights[0] / total, 0
    for k in range(count):
        position = offset + k / count
        while position >= cumulative and index < count - 1:  # a boundary belongs to the next: weight 0 is never drawn
            index += 1
            cumulative += weights[index] / total
        chosen.append(index)
    return chosen


class ParticleResampling(PopulationSearch):
    name = "particles"

    def __init__(self, generator, scorer, resample_lambda: float = 4.0, potential: str = "current",
                 copies: str = "renoise", **options: Any) -> None:
        super().__init__(generator, scorer, **options)
        type(self).check_options({"resample_lambda": resample_lambda, "potential": potential, "copies": copies})
        self.resample_lambda, self.potential, self.copies = resample_lambda, potential, copies

    @classmethod
    def check_options(cls, options: dict) -> None:
        super().check_options(options)
        value = options.get("resample_lambda")
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"resample_lambda must be a finite number >= 0, got {value!r}")
        if options.get("potential") is not None and options["potential"] not in POTENTIALS:
            raise ValueError(f"unknown potential {options['potential']!r}; choose from {', '.join(POTENTIALS)}")
        if options.get("copies") is not None and options["copies"] not in COPIES:
            raise ValueError(f"unknown copies {options['copies']!r}; choose from {', '.join(COPIES)}")

    def options(self) -> dict:
        return {"resample_lambda": self.resample_lambda, "potential": self.potential, "copies": self.copies,
                **super().options()}

    def update(self, point: Checkpoint) -> tuple[torch.Tensor, list[int], dict]:
        slots = self.scored_slots(point.values)
        earlier = point.history or [[] for _ in point.values]
        potentials = [POTENTIALS[self.potential](earlier[k], point.values[k]) for k in slots]
        top = max(potentials)
        weights = [math.exp(self.resample_lambda * (v - top)) for v in potentials]  # softmax, overflow-safe
        drawn = systematic_resample(weights, point.generator)
        parents = list(range(len(point.values)))
        for slot, pick in zip(slots, drawn, strict=True):
            parents[slot] = slots[pick]
        latents = point.latents[parents]
        renoised = self._renoised_copies(point, parents) if self.copies == "renoise" else []
        for slot, latent in renoised:
            latents[slot] = latent
        total = sum(weights)
        notes = {"weights": {f"particle {k}": w / total for k, w in zip(slots, weights, strict=True)},
                 "potentials": dict(zip((f"particle {k}" for k in slots), potentials, strict=True)),
                 "renoised": [slot for slot, _ in renoised]}
        return latents, parents, notes

    @staticmethod
    def _renoised_copies(point: Checkpoint, parents: list[int]) -> list[tuple[int, torch.Tensor]]:
        """(slot, latents) for every copy of a parent after its first: the parent's x0, freshly re-noised."""
        seen: set[int] = set()
        copies = []
        for slot, parent in enumerate(parents):
            if parent in seen:
                copies.append(slot)
            seen.add(parent)
        if not copies:
            return []
        renoised = point.renoise(point.x0[[parents[slot] for slot in copies]])
        return list(zip(copies, renoised, strict=True))

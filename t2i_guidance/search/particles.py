"""Particle resampling in the style of Feynman-Kac steering (Singhal et al. 2025).

N particles are denoised together. At each checkpoint the x0 prediction of every particle is judged
(`cheap_scorer`, default the main scorer) and the particles are resampled with weights
softmax(resample_lambda * value): systematic resampling, so a particle with weight w gets about N * w
copies and, with resample_lambda = 0, every particle keeps its own slot (the run is then best-of-N).
The potential is the current value (FK steering's "max"/"current" potential, not its difference
potential). A particle whose intermediate score failed is neither weighed nor replaced: it keeps its slot.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from t2i_guidance.search.denoising_paths import Checkpoint, PopulationSearch


def systematic_resample(weights: list[float], generator: torch.Generator) -> list[int]:
    """len(weights) indices drawn in proportion to `weights` with one uniform draw (low variance)."""
    count = len(weights)
    total = sum(weights)
    offset = float(torch.rand((), generator=generator)) / count
    chosen, cumulative, index = [], weights[0] / total, 0
    for k in range(count):
        position = offset + k / count
        while position > cumulative and index < count - 1:
            index += 1
            cumulative += weights[index] / total
        chosen.append(index)
    return chosen


class ParticleResampling(PopulationSearch):
    name = "particles"

    def __init__(self, generator, scorer, resample_lambda: float = 4.0, **options: Any) -> None:
        super().__init__(generator, scorer, **options)
        type(self).check_options({"resample_lambda": resample_lambda})
        self.resample_lambda = resample_lambda

    @classmethod
    def check_options(cls, options: dict) -> None:
        super().check_options(options)
        value = options.get("resample_lambda")
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"resample_lambda must be a finite number >= 0, got {value!r}")

    def options(self) -> dict:
        return {"resample_lambda": self.resample_lambda, **super().options()}

    def update(self, point: Checkpoint) -> tuple[torch.Tensor, list[int], dict]:
        slots = self.scored_slots(point.values)
        values = [point.values[k] for k in slots]
        top = max(values)
        weights = [math.exp(self.resample_lambda * (v - top)) for v in values]  # softmax, overflow-safe
        drawn = systematic_resample(weights, point.generator)
        parents = list(range(len(point.values)))
        for slot, pick in zip(slots, drawn, strict=True):
            parents[slot] = slots[pick]
        total = sum(weights)
        notes = {"weights": {f"particle {k}": w / total for k, w in zip(slots, weights, strict=True)}}
        return point.latents[parents], parents, notes

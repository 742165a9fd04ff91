"""Search over denoising paths (after Ma et al. 2025's search over paths): keep the best and branch.

N particles are denoised together. At each checkpoint the x0 prediction of every particle is judged
(`cheap_scorer`, default the main scorer); the best `keep` particles survive and the other slots are
refilled with branches of them: each survivor continues its own path in its own slot, and each branch is
the survivor's x0 prediction re-noised to the next step's noise level with fresh noise (by interpolation for flow
matching, `scheduler.add_noise` otherwise); a multistep solver's history goes with it.
Slots are shared out evenly, the remainder going to the best. A particle whose intermediate score failed
keeps its slot unchanged. The pick is the best final image by the main scorer.
"""

from __future__ import annotations

from typing import Any

import torch

from t2i_guidance.search.denoising_paths import Checkpoint, PopulationSearch


class PathSearch(PopulationSearch):
    name = "path-search"

    def __init__(self, generator, scorer, keep: int = 2, **options: Any) -> None:
        super().__init__(generator, scorer, **options)
        type(self).check_options({"keep": keep})
        self.keep = keep

    @classmethod
    def check_options(cls, options: dict) -> None:
        super().check_options(options)
        keep = options.get("keep")
        if keep is not None and (not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep must be a whole number of at least 1, got {keep!r}")

    def options(self) -> dict:
        return {"keep": self.keep, **super().options()}

    def update(self, point: Checkpoint) -> tuple[torch.Tensor, list[int], dict]:
        slots = self.scored_slots(point.values)
        ranked = sorted(slots, key=lambda k: (-point.values[k], k))
        survivors = ranked[: self.keep]
        share, extra = divmod(len(slots), len(survivors))
        branches = [p for rank, p in enumerate(survivors) for _ in range(share + (rank < extra) - 1)]
        free = [k for k in slots if k not in survivors]  # the survivors stay in their own slots
        parents = list(range(len(point.values)))
        latents = point.latents.clone()
        if free:
            renoised = point.renoise(point.x0[branches])
            for slot, parent, latent in zip(free, branches, renoised, strict=True):
                parents[slot] = parent
                latents[slot] = latent
        return latents, parents, {"survivors": survivors, "branched": dict(zip(free, branches, strict=True))}

"""Search inside the denoising loop: a population of particles denoised in one batched pipeline call,
judged at a few checkpoint steps on their predicted final images, and changed there by a strategy
(resampling in `particles.py`, keep-and-branch in `path_search.py`).

How it hooks into any diffusers pipeline, without touching the pipeline:
- the scheduler's `step` is wrapped for the duration of the call to keep each step's x0 prediction
  (`scheduler_hooks.py`: DDIM/DDPM/Euler, flow matching, DPM-Solver++ and UniPC);
- `callback_on_step_end` replaces the latents at a checkpoint, and a multistep solver's history follows
  each particle to the slots it is copied to;
- the x0 predictions are decoded the way the pipeline decodes its output: packed latents (FLUX)
  unpacked, then through its VAE when it has one (scaled and shifted as in its config), as pixels in
  [-1, 1] otherwise (a pixel-space pipeline).

Every particle starts from the noise best-of-N candidate k would start from (seed + k): with no checkpoint,
the population IS best-of-N. Intermediate scoring goes to the ledger's "intermediate" scorer role and its
own stages (`decode_intermediate`, `score_intermediate`), not to `generate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from reward_model.interface import Scorer
from t2i_guidance.generator import (
    Candidate,
    GenerationSettings,
    NFECounter,
    call_kwargs,
    candidate_id,
    denoiser_of,
)
from t2i_guidance.ledger import Budget, CostLedger
from t2i_guidance.result import ScoredCandidate, aggregate
from t2i_guidance.search.base import Found, Search, score_candidates
from t2i_guidance.search.packed_latents import is_packed, unpack
from t2i_guidance.search.scheduler_hooks import carry_history, recording_x0, refuse_unsupported, renoise

MAX_UNDER_BUDGET = 64  # particles, when only a budget bounds the run (one batched call holds them all)
DEFAULT_PARTICLES = 8
def decode_x0(pipeline: Any, x0: torch.Tensor, settings: GenerationSettings) -> list:
    """The predicted final images as PIL images, decoded as the pipeline decodes its own output (packed
    latents unpacked first)."""
    from diffusers.image_processor import VaeImageProcessor

    if is_packed(pipeline):
        x0 = unpack(pipeline, x0, settings.height, settings.width)
    vae = getattr(pipeline, "vae", None)
    if vae is not None:
        config = vae.config
        latents = x0.to(vae.dtype) / getattr(config, "scaling_factor", 1.0)
        if getattr(config, "shift_factor", None) is not None:
            latents = latents + config.shift_factor
        images = vae.decode(latents, return_dict=False)[0]
    else:  # pixel-space pipeline: the prediction is the picture in [-1, 1]
        images = x0
    processor = getattr(pipeline, "image_processor", None) or VaeImageProcessor()
    return processor.postprocess(images.float(), output_type="pil")


@dataclass
class Checkpoint:
    """What a strategy sees at a checkpoint: every particle's judged x0 prediction."""

    step: int  # index of the step just taken
    timestep: torch.Tensor  # the timestep the latents are now at (the next step's)
    latents: torch.Tensor
    x0: torch.Tensor
    values: list[float | None]  # weighted intermediate score per particle; None: could not be scored
    generator: torch.Generator  # the run's own draws (resampling, fresh noise): deterministic per seed
    scheduler: Any = None  # the pipeline's scheduler, positioned at the next step
    history: list[list[float]] = field(default_factory=list)  # each particle's values at earlier checkpoints

    def renoise(self, x0: torch.Tensor) -> torch.Tensor:
        """`x0` predictions taken back to the next step's noise level with fresh noise from the run's draws."""
        noise = torch.randn(x0.shape, generator=self.generator).to(x0.device, x0.dtype)
        return renoise(self.scheduler, x0, noise, self.timestep)


class PopulationSearch(Search):
    """A population of `n` particles (default 8; under a budget, as many as fit) denoised together;
    `checkpoints` evenly spaced steps where `update` may replace the latents. The pick is the best final
    image by the (main) scorer. `cheap_scorer` / `cheap_dimensions` judge the intermediate predictions
    (default: the main scorer on the weighted dimensions)."""

    name = "population"

    def __init__(
        self,
        generator,
        scorer,
        n: int | None = None,
        checkpoints: int = 3,
        cheap_scorer: Scorer | None = None,
        cheap_dimensions: list[str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(generator, scorer, **common)
        type(self).check_options({"n": n, "checkpoints": checkpoints})
        refuse_unsupported(generator.pipeline)
        self.n, self.checkpoints = n, checkpoints
        self.cheap_scorer = cheap_scorer or scorer
        self.cheap_dimensions = list(cheap_dimensions or self.dimensions)

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Bad option values, as one line (the run builder calls this before loading anything)."""
        n, checkpoints = options.get("n"), options.get("checkpoints")
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a whole number of at least 1, got {n!r}")
        if checkpoints is not None and (not isinstance(checkpoints, int) or checkpoints < 0):
            raise ValueError(f"checkpoints must be a whole number >= 0, got {checkpoints!r}")

    def options(self) -> dict:
        return {"n": self.n, "checkpoints": self.checkpoints, "cheap_scorer": getattr(self.cheap_scorer, "name", "?"),
                "cheap_dimensions": self.cheap_dimensions, **super().options()}

    def update(self, point: Checkpoint) -> tuple[torch.Tensor, list[int], dict]:
        """New latents, the parent of each slot, and notes for the round's record."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the run

    def checkpoint_steps(self, steps: int) -> list[int]:
        """`checkpoints` step indices spread evenly over the run, never the last step (nothing follows it)."""
        count = min(self.checkpoints, steps - 1)
        return sorted({max(0, round(steps * (j + 1) / (count + 1)) - 1) for j in range(count)})

    def _probe(self, prompt: str, settings: GenerationSettings, seed: int, ledger: CostLedger,
               timed: bool) -> tuple[float, float | None]:
        """NFEs (and, if `timed`, seconds) one particle costs, from a one-particle call stopped at its first
        denoiser call (no evaluation runs) or, when timed, at its second (one evaluation runs and is counted)."""
        pipeline = self.generator.pipeline
        denoiser = denoiser_of(pipeline)
        seen: dict[str, Any] = {}

        class Stop(Exception):
            pass

        def hook(module, args, kwargs):
            sample = args[0] if args else next(kwargs[k] for k in ("sample", "hidden_states", "x") if k in kwargs)
            seen.setdefault("rows", int(sample.shape[0]))
            seen.setdefault("calls", len(pipeline.scheduler.timesteps))
            if not timed or "start" in seen:
                seen["end"] = time.perf_counter()
                raise Stop
            seen["start"] = time.perf_counter()

        handle = denoiser.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            with ledger.stage("probe"), torch.inference_mode():
                pipeline(prompt=prompt, num_images_per_prompt=1, generator=[self._seeded(seed)], output_type="pt",
                         **call_kwargs(pipeline, settings))
        except Stop:
            pass
        finally:
            handle.remove()
        if "rows" not in seen:
            raise RuntimeError(f"{type(pipeline).__name__} never called its denoiser")
        if timed:
            ledger.nfes += seen["rows"]  # the one evaluation that ran
        seconds = (seen["end"] - seen["start"]) * seen["calls"] if timed else None
        return float(seen["rows"] * seen["calls"]), seconds

    def population_size(self, prompt, settings, seed, ledger, budget: Budget | None, events: list) -> int:
        if budget is None or not budget.limited:
            return self.n or DEFAULT_PARTICLES
        nfes_each, seconds_each = self._probe(prompt, settings, seed, ledger, timed=budget.seconds is not None)
        count = self.n or MAX_UNDER_BUDGET
        if budget.nfes is not None:
            count = min(count, math.floor((budget.nfes - ledger.nfes + 1e-9) / nfes_each))
        if budget.seconds is not None:  # one particle's denoising alone; batching makes it an upper bound
            count = min(count, math.floor((budget.seconds - ledger.elapsed()) / seconds_each))
        if count < 1:
            events.append({"event": "over_budget", "detail": "the budget is below one particle's cost; one was made"})
        return max(count, 1)

    @staticmethod
    def _seeded(seed: int) -> torch.Generator:
        return torch.Generator("cpu").manual_seed(seed)

    def _judge_x0(self, ledger: CostLedger, x0: torch.Tensor, prompt: str, settings: GenerationSettings,
                  step: int, seed: int, progress: bool) -> tuple[list[float | None], list[str]]:
        with ledger.stage("decode_intermediate"):
            images = decode_x0(self.generator.pipeline, x0, settings)
        views = [Candidate(f"x{k:03d}s{step:03d}", k, seed + k, prompt, image, {}, 0.0) for k, image in enumerate(images)]
        with ledger.stage("score_intermediate"):
            table = score_candidates(self.cheap_scorer, views, prompt, self.cheap_dimensions, self.score_chunk_size,
                                     progress)
        ledger.add_scores((s for row in table.values() for s in row.values()), role="intermediate")
        weights = {d: self.weights.get(d, 0.0) or 1.0 for d in self.cheap_dimensions}
        values = [aggregate(table[v.id], weights) for v in views]
        errors = sorted({s.error for v, value in zip(views, values, strict=True) if value is None
                         for s in table[v.id].values() if not s.ok and s.error})
        return values, errors

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        events, rounds = [], []
        n = self.population_size(prompt, settings, seed, ledger, budget, events)
        pipeline = self.generator.pipeline
        steps_at = set(self.checkpoint_steps(settings.num_inference_steps))
        draws = self._seeded((seed * 1_000_003 + 7_919) % 2**63)  # never one of the particles' own seeds
        origin = list(range(n))  # which initial particle each slot's path started from
        ancestry: list[list[int]] = [[] for _ in range(n)]
        path_values: list[list[float]] = [[] for _ in range(n)]  # each slot's path's earlier scores
        in_callbacks = {"seconds": 0.0}

        def on_step_end(pipe, step, timestep, tensors):
            if step not in steps_at:
                return {}
            started = time.perf_counter()
            try:
                if budget is not None and budget.seconds is not None and not ledger.allows(budget):
                    events.append({"event": "checkpoint_skipped", "step": step, "reason": "seconds budget spent"})
                    return {}
                latents, x0 = tensors["latents"], recorded["x0"]
                values, errors = self._judge_x0(ledger, x0, prompt, settings, step, seed, progress)
                record = {"round": len(rounds), "step": step, "checkpoint": f"step {step + 1}/{len(pipe.scheduler.timesteps)}",
                          "candidates": [], "values": values}
                scored = [v for v in values if v is not None]
                record["best"] = f"particle {values.index(max(scored))}" if scored else None
                record["best_value"] = max(scored) if scored else None
                if errors:
                    events.append({"event": "intermediate_score_failed", "step": step,
                                   "particles": [k for k, v in enumerate(values) if v is None], "errors": errors})
                if not scored:  # nothing to weigh: the population goes on unchanged
                    record["parents"] = list(range(n))
                    rounds.append(record)
                    return {}
                position = list(pipe.scheduler.timesteps).index(timestep)
                following = pipe.scheduler.timesteps[min(position + 1, len(pipe.scheduler.timesteps) - 1)]
                point = Checkpoint(step, following, latents, x0, values, draws, pipe.scheduler,
                                   [list(h) for h in path_values])
                new_latents, parents, notes = self.update(point)
                carry_history(pipe.scheduler, parents, n)
                origin[:] = [origin[p] for p in parents]
                ancestry[:] = [[*ancestry[p], p] for p in parents]
                path_values[:] = [[*path_values[p], *([] if values[p] is None else [values[p]])] for p in parents]
                record.update(parents=list(parents), **notes)
                rounds.append(record)
                return {"latents": new_latents.to(latents.dtype)}
            finally:
                in_callbacks["seconds"] += time.perf_counter() - started

        kwargs = dict(call_kwargs(pipeline, settings))
        started = time.perf_counter()
        with NFECounter(denoiser_of(pipeline)) as counter, recording_x0(pipeline.scheduler) as recorded, \
                torch.inference_mode():
            output = pipeline(prompt=prompt, num_images_per_prompt=n,
                              generator=[self._seeded(s) for s in range(seed, seed + n)], output_type="pil",
                              callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"],
                              **kwargs)
        generating = time.perf_counter() - started - in_callbacks["seconds"]
        ledger.seconds["generate"] = ledger.seconds.get("generate", 0.0) + generating
        if len(output.images) != n:
            raise RuntimeError(f"pipeline returned {len(output.images)} images for {n} particles")
        candidates = [
            Candidate(candidate_id(k), k, seed + k, prompt, image, asdict(settings), counter.rows / n,
                      extra={"particle_origin_seed": seed + origin[k], "parents": ancestry[k]})
            for k, image in enumerate(output.images)
        ]
        ledger.add_candidates(candidates)
        scored: list[ScoredCandidate] = self.score(ledger, candidates, prompt, progress)
        return Found(scored, rounds, events, config={"particles": n})

    @staticmethod
    def scored_slots(values: Sequence[float | None]) -> list[int]:
        return [k for k, v in enumerate(values) if v is not None]

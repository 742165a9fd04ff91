"""What a particle population needs from a diffusers scheduler, for every family it runs on:

- the x0 prediction of each step: the scheduler's own `pred_original_sample` (DDIM, DDPM, Euler); for
  flow matching (SD3, FLUX, SANA's Euler), x0 = x_t - sigma_t * v, the rectified-flow parameterisation
  diffusers uses; for multistep solvers that predict x0 (DPM-Solver++, UniPC), the newest entry of their
  history;
- re-noising an x0 prediction to the noise level of the next step: by interpolation for flow matching,
  x_t = (1 - sigma_t) * x0 + sigma_t * noise, by the scheduler's `add_noise` otherwise;
- the per-particle history of a multistep solver (its last model outputs, its last sample), carried with
  a particle when the particle is copied to another slot, so a copy continues its parent's solver state.

Only what cannot work is refused: schedulers that take two denoiser calls per step (Heun, KDPM2: a
checkpoint would fall between the halves of a step) and multistep solvers whose history holds noise
predictions rather than x0 predictions.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from typing import Any

import torch

# Scheduler attributes that hold per-particle state from earlier steps (batch first).
HISTORY_ATTRIBUTES = ("model_outputs", "last_sample", "derivatives")


def is_flow_matching(scheduler: Any) -> bool:
    config = getattr(scheduler, "config", {})
    return (type(scheduler).__name__.startswith("FlowMatch") or config.get("prediction_type") == "flow_prediction"
            or bool(config.get("use_flow_sigmas")))


def _history_holds_x0(scheduler: Any) -> bool:
    config = scheduler.config
    return str(config.get("algorithm_type", "")).endswith("++") or bool(config.get("predict_x0", False))


def _returns_x0(scheduler: Any) -> bool | None:
    """Whether `step`'s declared output has pred_original_sample (None: its annotations do not say)."""
    try:
        returned = typing.get_type_hints(type(scheduler).step).get("return")
    except Exception:
        return None
    outputs = [t for t in typing.get_args(returned) or (returned,) if is_dataclass(t)]
    return any("pred_original_sample" in {f.name for f in fields(t)} for t in outputs) if outputs else None


def refuse_unsupported(pipeline: Any) -> None:
    """Raise ValueError with the reason, and what to use instead, when this pipeline cannot run a particle
    population."""
    scheduler = getattr(pipeline, "scheduler", None)
    name = type(scheduler).__name__
    if scheduler is None or not callable(getattr(scheduler, "step", None)):
        raise ValueError(f"{type(pipeline).__name__} has no scheduler to search the denoising path of")
    if "callback_on_step_end" not in inspect.signature(type(pipeline).__call__).parameters:
        raise ValueError(f"{type(pipeline).__name__} takes no callback_on_step_end: its latents cannot be changed mid-run")
    if getattr(scheduler, "order", 1) != 1:
        raise ValueError(f"scheduler {name} takes {scheduler.order} denoiser calls per step and a checkpoint would "
                         "fall inside a step; use a one-call scheduler (Euler, DDIM, DPM-Solver++, UniPC, "
                         "flow-matching Euler)")
    if hasattr(scheduler, "model_outputs") and not _history_holds_x0(scheduler):
        raise ValueError(f"scheduler {name} keeps noise predictions, not x0 predictions, in its history; use "
                         "algorithm_type='dpmsolver++' (DPM-Solver) or predict_x0=True (UniPC)")
    if is_flow_matching(scheduler) or hasattr(scheduler, "model_outputs"):
        return
    if _returns_x0(scheduler) is False:
        raise ValueError(f"scheduler {name} does not return pred_original_sample (the x0 prediction) that "
                         "intermediate judging needs; use DDIM, DDPM, Euler, DPM-Solver++ or flow-matching Euler")
    if not callable(getattr(scheduler, "add_noise", None)):
        raise ValueError(f"scheduler {name} has no add_noise to re-noise a prediction with")


def _x0_of(scheduler: Any, output: Any, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor | None:
    x0 = getattr(output, "pred_original_sample", None)
    if x0 is not None:
        return x0
    if hasattr(scheduler, "model_outputs"):  # DPM-Solver++ / UniPC: the newest history entry is x0
        return scheduler.model_outputs[-1]
    if is_flow_matching(scheduler):
        sigma = scheduler.sigmas[scheduler.step_index - 1].to(sample.device, sample.dtype)  # the step just taken
        return sample - sigma * model_output
    return None


@contextmanager
def recording_x0(scheduler: Any):
    """Wrap `scheduler.step` for the duration of a call; the dict it yields holds the last x0 prediction."""
    original = scheduler.step
    seen: dict[str, torch.Tensor] = {}

    def step(*args: Any, return_dict: bool = True, **kwargs: Any) -> Any:
        output = original(*args, return_dict=True, **kwargs)
        model_output = args[0] if args else kwargs["model_output"]
        sample = args[2] if len(args) > 2 else kwargs["sample"]
        x0 = _x0_of(scheduler, output, model_output, sample)
        if x0 is None:
            raise ValueError(f"scheduler {type(scheduler).__name__} returned no pred_original_sample")
        seen["x0"] = x0
        return output if return_dict else output.to_tuple()

    scheduler.step = step
    try:
        yield seen
    finally:
        del scheduler.step  # the instance attribute goes, the class's method is back


def renoise(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    """x0 predictions taken back to the noise level of the next step (`timestep`), with `noise`."""
    if is_flow_matching(scheduler):
        sigma = scheduler.sigmas[scheduler.step_index].to(x0.device, x0.dtype)  # the next step's noise level
        return (1 - sigma) * x0 + sigma * noise
    return scheduler.add_noise(x0, noise, timestep.reshape(1).expand(len(x0)))


def carry_history(scheduler: Any, parents: Sequence[int], population: int) -> None:
    """Copy each parent's solver history into the slots it now fills (a multistep solver's state)."""
    index = torch.as_tensor(list(parents))

    def carried(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == population:
            return value[index.to(value.device)]
        if isinstance(value, list):
            return [carried(v) for v in value]
        return value

    for name in HISTORY_ATTRIBUTES:
        if getattr(scheduler, name, None) is not None:
            setattr(scheduler, name, carried(getattr(scheduler, name)))

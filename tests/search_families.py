"""The tiny pipelines the family search tests run on: SD3, FLUX and SANA (flow-matching Euler) and two
DPM-Solver++ variants, SD 1.5's (noise prediction) and SANA's own (flow prediction, as the real SANA ships)."""

from __future__ import annotations

import functools
from typing import Any

from diffusers import DPMSolverMultistepScheduler

from t2i_guidance.generator import GenerationSettings
from tests.tiny_pipelines import TINY_IMAGE_SIZE, build_tiny_pipeline

FAMILY_CASES = ("sd3", "flux", "sana", "sd15-dpm", "sana-dpm")
STEPS = 2
SETTINGS = GenerationSettings(num_inference_steps=STEPS, guidance_scale=3.0, height=TINY_IMAGE_SIZE,
                              width=TINY_IMAGE_SIZE)
ROWS_PER_STEP = {"sd3": 2, "flux": 1, "sana": 2, "sd15-dpm": 2, "sana-dpm": 2}  # FLUX: no classifier-free guidance
DPM_CONFIGS = {"sd15-dpm": ("sd15", {}),
               "sana-dpm": ("sana", {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0})}


@functools.cache
def family_pipeline(case: str) -> Any:
    """The tiny pipeline of `case`; a DPM-Solver++ variant shares the family's models, with its own scheduler."""
    if case not in DPM_CONFIGS:
        return build_tiny_pipeline(case)
    family, config = DPM_CONFIGS[case]
    base = build_tiny_pipeline(family)
    scheduler_config = {k: v for k, v in base.scheduler.config.items() if k != "shift"}
    scheduler = DPMSolverMultistepScheduler.from_config(scheduler_config, **config)
    pipeline = type(base)(**{**base.components, "scheduler": scheduler})
    pipeline.set_progress_bar_config(disable=True)
    return pipeline

"""What a preset tells the page before any model loads: its weights, what its model can draw, and what
one picture costs."""

from __future__ import annotations

from t2i_guidance.input_checks import pipeline_class
from t2i_guidance.registries import load_preset
from t2i_guidance.result import parse_weights
from t2i_guidance.world.plugin import WORLD_PIPELINE, world_prompt_problem


def preset_weights(preset_name: str) -> dict[str, float]:
    return parse_weights(load_preset(preset_name).weights)


def draws_only_world_grammar(preset_name: str) -> bool:
    return pipeline_class(load_preset(preset_name).generator) == WORLD_PIPELINE


def prompt_warning(prompt: str, preset_name: str) -> str:
    """A sentence under the prompt box while typing: empty when the model can draw it."""
    if not prompt or not prompt.strip() or not draws_only_world_grammar(preset_name):
        return ""
    problem = world_prompt_problem(prompt, load_preset(preset_name).generator)
    return f"⚠️ The embedded model cannot draw this ({problem}). Try one of the examples below." if problem else ""


def picture_cost(preset_name: str) -> int:
    """Denoiser evaluations one picture costs with a preset: steps, twice with classifier-free guidance."""
    preset = load_preset(preset_name)
    return preset.num_inference_steps * (2 if (preset.guidance_scale or 0) > 1 else 1)

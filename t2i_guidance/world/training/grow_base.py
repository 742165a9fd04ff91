"""Grow a trained base VLM's language model, keeping what its vision tower has learned.

Two ways, chosen by the new sizes:

- **deeper, same width** (`num_layers` a multiple of the old count): every old layer is kept in order and
  followed by copies of itself whose output projections (attention `o_proj`, MLP `down_proj`) are zero.
  A zeroed layer adds nothing to the residual stream, so the grown model computes exactly what the old one
  did; continued training then gives the new layers their own job.
- **wider**: the vision tower is copied (all but the merger's last projection, whose output width is the
  language model's), and the language model starts from random weights.

The perception heads and the trained tower carry the picture's facts either way; what grows is the part
that turns them into claims, counts and a verdict.
"""

from __future__ import annotations

import copy
import re

import torch

from reward_model.tiny_vlm import mrope_section

VISUAL = "model.visual."
LAYER = re.compile(r"^model\.language_model\.layers\.(\d+)\.(.*)$")
ZEROED = ("self_attn.o_proj.", "mlp.down_proj.")


def grow(model, hidden_size: int | None = None, num_layers: int | None = None, seed: int = 0):
    """A new Qwen2.5-VL with `hidden_size` x `num_layers` in its language model (each defaults to the
    base's), grown from `model`."""
    old_text = model.config.text_config
    hidden_size = hidden_size or old_text.hidden_size
    num_layers = num_layers or old_text.num_hidden_layers
    deeper = hidden_size == old_text.hidden_size
    if deeper and num_layers % old_text.num_hidden_layers:
        raise ValueError(f"num_layers ({num_layers}) must be a multiple of the base's "
                         f"{old_text.num_hidden_layers} when the width stays {hidden_size}")
    torch.manual_seed(seed)
    grown = type(model)(grown_config(model.config, hidden_size, num_layers))
    old = model.state_dict()
    state = grown.state_dict()
    factor = num_layers // old_text.num_hidden_layers if deeper else 0
    with torch.no_grad():
        for name, value in state.items():
            source = source_name(name, factor) if deeper else (name if name.startswith(VISUAL) else None)
            if source is None or source not in old or old[source].shape != value.shape:
                continue
            value.copy_(old[source])
            if deeper and is_added_copy(name, factor) and name.split(".", 4)[-1].startswith(ZEROED):
                value.zero_()
    grown.load_state_dict(state)
    grown.generation_config = model.generation_config
    return grown


def grown_config(config, hidden_size: int, num_layers: int):
    """The base's config (vision tower, tokens, windows) with a language model of the new sizes."""
    config = copy.deepcopy(config)
    text = config.text_config
    text.rope_parameters = {**text.rope_parameters,
                            "mrope_section": mrope_section(hidden_size, text.num_attention_heads)}
    text.intermediate_size = text.intermediate_size * hidden_size // text.hidden_size
    text.hidden_size, text.num_hidden_layers = hidden_size, num_layers
    text.layer_types = [text.layer_types[0]] * num_layers
    config.vision_config.out_hidden_size = hidden_size
    return config


def source_name(name: str, factor: int) -> str:
    """The old parameter a deeper model's parameter copies (layer j copies old layer j // factor)."""
    match = LAYER.match(name)
    if match is None:
        return name
    return f"model.language_model.layers.{int(match.group(1)) // factor}.{match.group(2)}"


def is_added_copy(name: str, factor: int) -> bool:
    match = LAYER.match(name)
    return match is not None and int(match.group(1)) % factor != 0

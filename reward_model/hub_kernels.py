"""Keep model loading off Hugging Face Hub kernels that cannot be fetched.

transformers (5.x, with its `kernels` dependency) swaps Hub kernels (liger's fused layers) into a model it
loads, by default; offline, with none cached, that load fails before anything runs (seen on a GPU machine
that cannot reach the hub). So when the hub is offline, `use_kernels` is off unless the caller named it.
"""

from __future__ import annotations


def without_unreachable_kernels(load_kwargs: dict) -> dict:
    """`from_pretrained` keyword arguments with `use_kernels=False` added when the hub is offline."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE or "use_kernels" in load_kwargs:
        return dict(load_kwargs)
    return {**load_kwargs, "use_kernels": False}

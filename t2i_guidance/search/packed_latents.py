"""FLUX-style packed latents: the pipeline keeps its latents as tokens (batch, patches, channels * 4), 2x2
latent patches flattened. Every operation that needs the spatial layout (VAE decoding, drawing the
noise the pipeline itself would draw) unpacks first and packs after, with the pipeline's own
`_pack_latents` / `_unpack_latents`, so the layout is the one the pipeline uses, exactly.
"""

from __future__ import annotations

from typing import Any

import torch


def is_packed(pipeline: Any) -> bool:
    """Whether this pipeline keeps packed latents (FLUX and its variants)."""
    return callable(getattr(pipeline, "_pack_latents", None)) and callable(getattr(pipeline, "_unpack_latents", None))


def pixel_size(pipeline: Any, height: int | None, width: int | None) -> tuple[int, int]:
    """The image size a packed pipeline renders when asked for (height, width), None meaning its default."""
    default = pipeline.default_sample_size * pipeline.vae_scale_factor
    return int(height or default), int(width or default)


def spatial_shape(pipeline: Any, height: int | None, width: int | None) -> tuple[int, int, int]:
    """(channels, latent height, latent width) of one unpacked latent, as the pipeline computes them."""
    height, width = pixel_size(pipeline, height, width)
    scale = pipeline.vae_scale_factor
    channels = pipeline.transformer.config.in_channels // 4
    return channels, 2 * (height // (scale * 2)), 2 * (width // (scale * 2))


def pack(pipeline: Any, latents: torch.Tensor) -> torch.Tensor:
    """(batch, channels, h, w) -> (batch, h/2 * w/2, channels * 4)."""
    batch, channels, height, width = latents.shape
    return pipeline._pack_latents(latents, batch, channels, height, width)


def unpack(pipeline: Any, packed: torch.Tensor, height: int | None, width: int | None) -> torch.Tensor:
    """(batch, patches, channels * 4) -> (batch, channels, h, w) for an image of (height, width) pixels."""
    height, width = pixel_size(pipeline, height, width)
    return pipeline._unpack_latents(packed, height, width, pipeline.vae_scale_factor)


def packed_initial_noise(pipeline: Any, seed: int, height: int | None, width: int | None) -> torch.Tensor:
    """The packed initial noise the pipeline draws for a generator seeded with `seed` (drawn on the CPU)."""
    shape = (1, *spatial_shape(pipeline, height, width))
    noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
    return pack(pipeline, noise)[0]

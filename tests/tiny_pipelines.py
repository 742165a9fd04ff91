"""Tiny, offline text-to-image pipelines of five diffusers families, built from config for tests.

Every component is a real diffusers / transformers class at a toy size with random weights, and every
tokenizer is learned from a few captions (tests/tiny_tokenizers.py). The images are
noise, but the pipelines exercise the same code paths as the real SD 1.5 / SDXL / SD3 / FLUX / SANA:
text encoders, classifier-free guidance, schedulers, VAE decoding, save_pretrained/from_pretrained.

Pass height = width = TINY_IMAGE_SIZE: without them SD 1.5 / SDXL / SD3 already render 32x32, but
FLUX's default is 128x128 (seconds) and SANA's 1024x1024 (rendered at 512 and resized).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from tests.tiny_tokenizers import clip_tokenizer, gemma_tokenizer, t5_tokenizer

FAMILIES = ("sd15", "sdxl", "sd3", "flux", "sana")

# Image size every family renders at in the tests (SANA internally renders at its resolution bin).
TINY_IMAGE_SIZE = 32


# ---------------------------------------------------------------- text encoders


def _clip_text_config(tokenizer: Any, hidden: int, projection: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act="gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _t5_encoder(tokenizer: Any, d_model: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=2 * d_model,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config)


def _tiny_vae(latent_channels: int, block_out_channels: tuple[int, ...], **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    n = len(block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=block_out_channels,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        sample_size=TINY_IMAGE_SIZE,
        **extra,
    )


# ---------------------------------------------------------------- families


def _sd15(seed: int) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden=32, projection=32))
    unet = UNet2DConditionModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = _tiny_vae(4, (4, 8))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _sdxl(seed: int) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden=32, projection=32))
    text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer_2, hidden=32, projection=32))
    time_embed_dim = 8
    unet = UNet2DConditionModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        cross_attention_dim=32 + 32,  # both encoders' hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        projection_class_embeddings_input_dim=6 * time_embed_dim + 32,  # six size/crop ids + pooled text
        norm_num_groups=4,
    )
    vae = _tiny_vae(4, (4, 8))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def _sd3(seed: int) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(), t5_tokenizer()
    torch.manual_seed(seed)
    # The two CLIP hidden states are concatenated (16 + 16) and then sit beside the T5 tokens (32).
    text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden=16, projection=16))
    text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer_2, hidden=16, projection=16))
    text_encoder_3 = _t5_encoder(tokenizer_3, d_model=32)
    transformer = SD3Transformer2DModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,
        caption_projection_dim=16,
        pooled_projection_dim=16 + 16,
    )
    vae = _tiny_vae(4, (4, 8), use_quant_conv=False, use_post_quant_conv=False,
                    shift_factor=0.0609, scaling_factor=1.5035)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def _flux(seed: int) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden=32, projection=32))
    text_encoder_2 = _t5_encoder(tokenizer_2, d_model=32)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,  # 1 latent channel, packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5 width
        pooled_projection_dim=32,  # CLIP pooled width
        guidance_embeds=False,
        axes_dims_rope=(4, 4, 8),  # sums to attention_head_dim
    )
    vae = _tiny_vae(1, (4,), use_quant_conv=False, use_post_quant_conv=False,
                    shift_factor=0.0609, scaling_factor=1.5035)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def _sana(seed: int) -> Any:
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tokenizer = gemma_tokenizer()
    torch.manual_seed(seed)
    text_encoder = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tokenizer),
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=4,
            max_position_embeddings=2048,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            attn_implementation="eager",
        )
    )
    # SanaPipeline bins the requested size by transformer.sample_size (16 -> the 512 px bins) and resizes
    # the result back, so a 32x32 request renders at 512x512. A deep (32x) DC autoencoder with no block at
    # full resolution (layers 0 there, as in the real DC-AE) and pixel-shuffle upsampling keeps that cheap.
    depth = 6
    layers = (0,) + (1,) * (depth - 1)
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock",) * depth,
        decoder_block_types=("ResBlock",) * depth,
        encoder_block_out_channels=(4,) * depth,
        decoder_block_out_channels=(4,) * depth,
        encoder_qkv_multiscales=((),) * depth,
        decoder_qkv_multiscales=((),) * depth,
        encoder_layers_per_block=layers,
        decoder_layers_per_block=layers,
        downsample_block_type="pixel_unshuffle",
        upsample_block_type="pixel_shuffle",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        scaling_factor=0.41407,
    )
    transformer = SanaTransformer2DModel(
        patch_size=1,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=4,
        num_cross_attention_heads=2,
        cross_attention_head_dim=4,
        cross_attention_dim=8,
        caption_channels=8,  # Gemma width
        sample_size=16,
    )
    return SanaPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


_BUILDERS = {"sd15": _sd15, "sdxl": _sdxl, "sd3": _sd3, "flux": _flux, "sana": _sana}


@functools.cache
def build_tiny_pipeline(family: str, seed: int = 0) -> Any:
    """A tiny real diffusers pipeline of `family` on CPU in fp32; cached, so built once per session.

    The same object is returned on every call: callers share it and must not change its weights.
    """
    if family not in _BUILDERS:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    pipeline = _BUILDERS[family](seed)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # freshly built models train (T5 dropout); from_pretrained ones evaluate
    pipeline.to("cpu", torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def save_tiny_pipeline(family: str, path: str | Path, seed: int = 0) -> Path:
    """Save the tiny pipeline of `family` as a diffusers folder loadable by `from_pretrained`."""
    path = Path(path)
    build_tiny_pipeline(family, seed).save_pretrained(path, safe_serialization=True)
    return path

"""The embedded world's text-to-image model: a pixel-space diffusers pipeline small enough for a laptop CPU.

It is built from stock parts — `UNet2DConditionModel`, a DDIM scheduler, a two-layer `CLIPTextModel` and
a word-level tokenizer over the caption grammar — and behaves like any diffusers pipeline: one class, one
`__call__`, `save_pretrained` / `from_pretrained`. Pixel space (no autoencoder) because at 32x32 a VAE
would cost more than it saves and would blur the shapes the oracles must read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from t2i_guidance.world.captions import extended_vocabulary, vocabulary

IMAGE_SIZE = 32
MAX_TOKENS = 24  # the longest caption of the grammar is about 20 words
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 1.5  # measured best of 1.5 / 2 / 3 for the shipped weights (docs/embedded-world.md)
PAD, UNK = "[PAD]", "[UNK]"


def build_tokenizer(with_counts: bool = True) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the grammar's words: deterministic, no training, no hub.

    The count words ("two", "circles") come after the training grammar's words, so a tokenizer saved
    before counts existed (`with_counts=False`) keeps every id and grows by appending."""
    words = [PAD, UNK, *vocabulary(), *(extended_vocabulary() if with_counts else [])]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, unk_token=UNK, model_max_length=MAX_TOKENS, padding_side="right"
    )


def build_text_encoder(vocab_size: int, hidden: int = 64) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=hidden,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return CLIPTextModel(config)


def build_unet(
    cross_attention_dim: int = 64, block_out_channels: tuple[int, ...] = (32, 64, 64)
) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE,
        in_channels=3,
        out_channels=3,
        block_out_channels=block_out_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def build_scheduler() -> DDIMScheduler:
    # v-prediction with a cosine schedule: what turned noise into pictures in this project's probes.
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        clip_sample=True,
        clip_sample_range=1.0,
        set_alpha_to_one=False,
        timestep_spacing="trailing",
    )


class WorldDiffusionPipeline(DiffusionPipeline):
    """Text-to-image for the embedded world of coloured shapes, 32x32 RGB."""

    model_cpu_offload_seq = "text_encoder->unet"
    _callback_tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(
        self,
        unet: UNet2DConditionModel,
        scheduler: DDIMScheduler,
        text_encoder: CLIPTextModel,
        tokenizer: PreTrainedTokenizerFast,
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)

    @classmethod
    def from_config_untrained(
        cls, seed: int = 0, block_out_channels: tuple[int, ...] = (32, 64, 64)
    ) -> WorldDiffusionPipeline:
        """A fresh, randomly initialised pipeline: the start of training; smaller blocks for fast tests."""
        torch.manual_seed(seed)
        tokenizer = build_tokenizer()
        unet = build_unet(block_out_channels=block_out_channels)
        return cls(unet, build_scheduler(), build_text_encoder(len(tokenizer)), tokenizer)

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        )
        ids = tokens.input_ids.to(self.text_encoder.device)
        mask = tokens.attention_mask.to(self.text_encoder.device)
        return self.text_encoder(ids, attention_mask=mask).last_hidden_state

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        num_inference_steps: int = DEFAULT_STEPS,
        guidance_scale: float = DEFAULT_GUIDANCE,
        height: int | None = None,
        width: int | None = None,
        output_type: str = "pil",
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        size = self.unet.config.sample_size
        if (height or size) != size or (width or size) != size:
            raise ValueError(f"this model draws {size}x{size} images, not {height}x{width}")
        batch = len(prompts) * num_images_per_prompt
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"got {len(generator)} generators for {batch} images")
        device, dtype = self._execution_device, self.unet.dtype
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        embeddings = self.encode_prompt(prompts)
        use_cfg = guidance_scale > 1.0
        if use_cfg:
            negatives = negative_prompt or ""
            negatives = [negatives] * len(prompts) if isinstance(negatives, str) else list(negatives)
            if len(negatives) != len(prompts):
                negatives = [n for n in negatives for _ in range(num_images_per_prompt)]
            # One batched forward per step: unconditional rows first, then conditional ones.
            embeddings = torch.cat([self.encode_prompt(negatives), embeddings])
        shape = (batch, self.unet.config.in_channels, size, size)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        else:
            latents = latents.to(device=device, dtype=dtype)
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = torch.cat([latents] * 2) if use_cfg else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            prediction = self.unet(model_input, t, encoder_hidden_states=embeddings.to(dtype)).sample
            if use_cfg:
                unconditional, conditional = prediction.chunk(2)
                prediction = unconditional + guidance_scale * (conditional - unconditional)
            latents = self.scheduler.step(prediction, t, latents, generator=generator).prev_sample
            if callback_on_step_end is not None:
                available = {"latents": latents, "prompt_embeds": embeddings}
                names = callback_on_step_end_tensor_inputs or ["latents"]
                outputs = callback_on_step_end(self, i, t, {name: available[name] for name in names})
                latents = outputs.pop("latents", latents)
        images = (latents / 2 + 0.5).clamp(0, 1)
        if output_type == "pt":
            result = images
        else:
            array = images.permute(0, 2, 3, 1).float().cpu().numpy()
            result = self.numpy_to_pil(array) if output_type == "pil" else array
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=result) if return_dict else (result,)

"""An adapter over any diffusers text-to-image pipeline that produces identified, reproducible candidates.

Each candidate has its own seed and its own `torch.Generator`, so candidate k of a run can be
regenerated alone, and the batch size used to produce it does not change its image.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from reward_model.backends import compute_dtype
from reward_model.interface import resolve
from t2i_guidance.registries import GenerationSettings, pipeline_family


def call_kwargs(pipeline: Any, settings: GenerationSettings) -> dict[str, Any]:
    """The settings as this pipeline's __call__ takes them.

    SANA and PixArt snap the requested size to their nearest trained aspect ratio and resize afterwards
    ("resolution binning"); an explicit size is honoured exactly instead, so compute matches the request.
    """
    kwargs = settings.pipeline_kwargs()
    parameters = inspect.signature(type(pipeline).__call__).parameters
    if settings.height is not None and "use_resolution_binning" in parameters:
        kwargs.setdefault("use_resolution_binning", False)
    # Checked against named parameters: several pipelines swallow unknown **kwargs silently.
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ValueError(f"{type(pipeline).__name__} does not take {', '.join(unknown)}")
    return kwargs


@dataclass
class Candidate:
    id: str
    index: int
    seed: int
    prompt: str
    image: Image.Image
    settings: dict
    nfes: float  # denoiser evaluations spent on this candidate, measured (see NFECounter)
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        data = asdict(self)
        data.pop("image")
        return data


def candidate_id(index: int) -> str:
    return f"c{index:03d}"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    # Half precision is what real pipelines are run in on GPUs; CPUs are only exact and fast in fp32.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def weights_dtype(device: str, precision: str | None) -> torch.dtype:
    """The dtype the pipeline's weights are loaded in. On a CPU they stay fp32 whatever the precision: bf16
    there is autocast (see `cpu_autocast_dtype`), so the scheduler's arithmetic keeps full precision."""
    if precision is None or not device.startswith("cuda"):
        return default_dtype(device)
    return compute_dtype(precision, device)


def cpu_autocast_dtype(device: str, precision: str | None) -> torch.dtype | None:
    """bf16 when the denoiser should run under CPU autocast (matmuls and convolutions in bf16 on AMX /
    AVX512-BF16), None for plain fp32; None precision means fp32, the mode that matches a hand loop."""
    if precision is None or device.startswith("cuda"):
        return None
    dtype = compute_dtype(precision, device)
    return None if dtype == torch.float32 else dtype


def prefers_channels_last(denoiser: torch.nn.Module, device: str, autocast_dtype: torch.dtype | None) -> bool:
    """Whether a UNet denoiser should keep its weights channels-last: on a CPU in fp32, oneDNN's
    convolutions then skip reordering their inputs at every call (docs/speed.md). Not under bf16 autocast,
    where it measured slower, not for transformer denoisers (few convolutions) and not on GPUs (not
    measured)."""
    from diffusers import UNet2DConditionModel, UNet2DModel

    if device != "cpu" or autocast_dtype is not None:
        return False
    return isinstance(denoiser, UNet2DConditionModel | UNet2DModel)


def denoiser_of(pipeline: Any) -> torch.nn.Module:
    for name in ("unet", "transformer", "prior"):
        module = getattr(pipeline, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise ValueError(f"{type(pipeline).__name__} has no unet or transformer to count evaluations of")


class NFECounter:
    """Counts denoiser evaluations by hooking the denoiser's forward.

    One forward over R rows for a batch of B candidates costs each candidate R / B evaluations: with
    classifier-free guidance the conditional and unconditional rows of a candidate are two evaluations
    even when they share one batched call, which is how the search literature counts compute.
    """

    def __init__(self, denoiser: torch.nn.Module) -> None:
        self.denoiser = denoiser
        self.rows = 0
        self.calls = 0

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else next(
            (kwargs[k] for k in ("sample", "hidden_states", "x") if k in kwargs), None
        )
        self.calls += 1
        self.rows += int(sample.shape[0]) if isinstance(sample, torch.Tensor) else 1

    def __enter__(self) -> NFECounter:
        self._handle = self.denoiser.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def load_pipeline(name_or_path: str, dtype: torch.dtype) -> Any:
    """Load a pipeline by hub id or local folder; a pipeline class a plugin ships (not diffusers) is found
    through its registered pipeline family, by the `_class_name` in the folder's model_index.json."""
    from diffusers import DiffusionPipeline

    index = Path(name_or_path) / "model_index.json"
    if index.is_file():
        family = pipeline_family(json.loads(index.read_text())["_class_name"])
        if family is not None:
            return resolve(family.pipeline).from_pretrained(name_or_path, dtype=dtype)
    return DiffusionPipeline.from_pretrained(name_or_path, dtype=dtype)


class Generator:
    """Produces candidates from a diffusers pipeline, batched, each reproducible from its seed."""

    def __init__(
        self,
        pipeline: Any,
        device: str | None = None,
        cpu_offload: bool = False,
        precision: str | None = None,
    ) -> None:
        self.device = device or default_device()
        self.autocast_dtype = cpu_autocast_dtype(self.device, precision)
        self.pipeline = pipeline
        if cpu_offload and self.device.startswith("cuda"):
            pipeline.enable_model_cpu_offload()
        else:
            pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        self.denoiser = denoiser_of(pipeline)
        if prefers_channels_last(self.denoiser, self.device, self.autocast_dtype):
            self.denoiser.to(memory_format=torch.channels_last)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        cpu_offload: bool = False,
        precision: str | None = None,
    ) -> Generator:
        """`precision` ("auto", "fp32", "bf16"; None: bf16 on a GPU, fp32 on a CPU) picks the weights' dtype
        on a GPU and bf16 autocast on a CPU; an explicit `dtype` for the weights wins."""
        device = device or default_device()
        pipeline = load_pipeline(name_or_path, dtype or weights_dtype(device, precision))
        return cls(pipeline, device=device, cpu_offload=cpu_offload, precision=precision)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.autocast_dtype)

    def _torch_generator(self, seed: int) -> torch.Generator:
        # Noise is drawn on the CPU so a seed gives the same image on any device that runs the pipeline.
        return torch.Generator("cpu").manual_seed(seed)

    def latent_shape(self, settings: GenerationSettings) -> tuple[int, ...]:
        """The shape of one candidate's initial noise, as the pipeline draws it.

        Works for pipelines whose latents are (channels, height / scale, width / scale): the UNet families,
        SD3, SANA, PixArt and pixel-space plugin pipelines. FLUX packs its latents into tokens and is not supported.
        """
        config = self.denoiser.config
        if type(self.pipeline).__name__.startswith("Flux"):
            raise NotImplementedError("initial latents for FLUX's packed latents are not supported")
        scale = getattr(self.pipeline, "vae_scale_factor", 1) or 1
        sample_size = config.sample_size if isinstance(config.sample_size, int) else config.sample_size[0]
        height = settings.height or sample_size * scale
        width = settings.width or sample_size * scale
        return (config.in_channels, height // scale, width // scale)

    def initial_noise(self, seed: int, settings: GenerationSettings) -> torch.Tensor:
        """The initial noise candidate `seed` starts from when no latents are given (drawn on the CPU)."""
        return torch.randn((1, *self.latent_shape(settings)), generator=self._torch_generator(seed))[0]

    def generate(
        self,
        prompt: str | Sequence[str],
        seeds: Sequence[int],
        settings: GenerationSettings,
        batch_size: int | None = None,
        progress: bool = False,
        first_index: int = 0,
        latents: Sequence[torch.Tensor] | None = None,
    ) -> list[Candidate]:
        """One candidate per seed, in the order of `seeds`; `first_index` numbers them for ids.

        `prompt` is one prompt for all, or one per candidate. `latents` (one initial noise per candidate,
        see `initial_noise`) replaces the noise drawn from the seeds; the seed still drives any noise the
        scheduler draws later.
        """
        if not seeds:
            return []
        prompts = [prompt] * len(seeds) if isinstance(prompt, str) else list(prompt)
        if len(prompts) != len(seeds):
            raise ValueError(f"got {len(prompts)} prompts for {len(seeds)} seeds")
        if latents is not None and len(latents) != len(seeds):
            raise ValueError(f"got {len(latents)} initial latents for {len(seeds)} seeds")
        batch_size = batch_size or len(seeds)
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        candidates: list[Candidate] = []
        bar = tqdm(total=len(seeds), desc="generate", unit="img", disable=not progress)
        for start in range(0, len(seeds), batch_size):
            batch = list(seeds[start : start + batch_size])
            batch_prompts = prompts[start : start + batch_size]
            # One prompt for the whole batch keeps the call every pipeline documents; a list otherwise.
            same = len(set(batch_prompts)) == 1
            kwargs = dict(call_kwargs(self.pipeline, settings))
            if not same and isinstance(kwargs.get("negative_prompt"), str):  # diffusers wants matching types
                kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(batch)
            if latents is not None:
                noise = torch.stack([latents[k] for k in range(start, start + len(batch))])
                kwargs["latents"] = noise.to(self.device, dtype=self.denoiser.dtype)
            with NFECounter(self.denoiser) as counter, torch.inference_mode(), self._autocast():
                output = self.pipeline(
                    prompt=batch_prompts[0] if same else batch_prompts,
                    num_images_per_prompt=len(batch) if same else 1,
                    generator=[self._torch_generator(seed) for seed in batch],
                    output_type="pil",
                    **kwargs,
                )
            images = output.images
            if len(images) != len(batch):
                raise RuntimeError(f"pipeline returned {len(images)} images for {len(batch)} seeds")
            nfes = counter.rows / len(batch)
            for seed, text, image in zip(batch, batch_prompts, images, strict=True):
                index = first_index + len(candidates)
                candidates.append(
                    Candidate(
                        id=candidate_id(index),
                        index=index,
                        seed=seed,
                        prompt=text,
                        image=image,
                        settings=asdict(settings),
                        nfes=nfes,
                    )
                )
            bar.update(len(batch))
        bar.close()
        return candidates


def candidate_seeds(base_seed: int, n: int, first_index: int = 0) -> list[int]:
    """Seed of candidate k is base_seed + k, so any candidate can be regenerated alone."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return [base_seed + first_index + k for k in range(n)]

"""Where the generator and the scorer live on the GPUs, decided from sizes before anything loads.

    generator = model_size("black-forest-labs/FLUX.1-schnell", role="generator")
    scorer = model_size("yeeeeeyy/OmniQuality-R", role="scorer")
    plan = plan_memory(generator, scorer, gpus=visible_gpus(), backend=ScorerBackend("transformers"),
                       loop="one-pass")
    print(plan.describe())

`plan_memory` is a pure function of sizes and free memory, so every case is testable on a CPU. The
options, in order of preference: both resident on one GPU; the scorer on a second GPU; phases (one model
on the GPU at a time: the generator moved to CPU or freed before scoring, or vLLM asleep while the
generator works); the generator under diffusers' model CPU offload (alone or in phases); or a reason why
nothing fits. Sizes (t2i_guidance.model_sizes) are bf16 weights plus an estimate of working memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from t2i_guidance.model_sizes import GB, ModelSize, model_size

# CUDA context, allocator fragmentation and cuDNN workspaces on every device a model uses.
RESERVED_BYTES = 1 * GB
# What a sleeping vLLM engine (level 1: weights to CPU, KV cache dropped) still holds on its GPU.
VLLM_ASLEEP_BYTES = 1 * GB
DEFAULT_VLLM_SHARE = 0.85  # the vLLM backend's default gpu_memory_utilization

Loop = Literal["one-pass", "alternating"]
# Strategies that generate once and then score (one-pass) vs those that go back to the generator after
# scoring (alternating): alternating loops pay for every move between phases, once per round.
LOOP_SHAPES: dict[str, Loop] = {
    "best-of-n": "one-pass",
    "cascade": "one-pass",
    "refine": "alternating",
    "zero-order": "alternating",
    "particles": "alternating",
    "path-search": "alternating",
}


def loop_shape(strategy: str) -> Loop:
    """The loop shape of a registered strategy; an unknown one is taken as alternating (the costlier)."""
    return LOOP_SHAPES.get(strategy, "alternating")


@dataclass(frozen=True)
class ScorerBackend:
    """transformers (the model in-process) or vLLM, which claims `vllm_share` of its GPU's total memory.
    vllm_share None: the plan chooses the smallest share that holds the scorer and leaves the rest."""

    name: Literal["transformers", "vllm"] = "transformers"
    vllm_share: float | None = None


@dataclass(frozen=True)
class Gpu:
    """One device as torch.cuda.mem_get_info reports it."""

    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class MemoryPlan:
    strategy: str  # resident, scorer-on-second-gpu, phases, vllm-sleep, cpu-offload, cpu-offload+phases, cpu, does-not-fit
    fits: bool
    generator_device: str | None = None
    scorer_device: str | None = None
    generator_cpu_offload: bool = False
    # How the two take turns on a shared GPU: None (both stay), "move-to-cpu" (the idle one leaves the
    # GPU; one-pass loops free the generator instead), "vllm-sleep" (the engine sleeps while generating).
    alternate: str | None = None
    vllm_share: float | None = None
    peak_bytes: dict[str, int] = field(default_factory=dict)  # device -> expected peak
    reason: str = ""
    sizes: tuple[ModelSize, ...] = ()  # (generator, scorer) as planned for, when plan_for_run made the plan

    def describe(self) -> str:
        """The plan in a few lines, for --dry-run and the run report."""
        if not self.fits:
            return f"memory plan: does not fit\n  {self.reason}"
        lines = [f"memory plan: {self.strategy}"]
        generator = (self.generator_device or "the default device") + (
            " (model CPU offload)" if self.generator_cpu_offload else "")
        scorer = (self.scorer_device or "the default device") + (f" (vLLM, {self.vllm_share:.2f} of the GPU)" if self.vllm_share else "")
        lines.append(f"  generator on {generator}; scorer on {scorer}")
        if self.alternate:
            lines.append(f"  between phases: {self.alternate}")
        for device, peak in self.peak_bytes.items():
            lines.append(f"  expected peak on {device}: {peak / GB:.1f} GB")
        if not self.peak_bytes:
            lines.append("  expected peak: no GPU memory is used")
        lines.append(f"  why: {self.reason}")
        return "\n".join(lines)


def plan_memory(
    generator: ModelSize,
    scorer: ModelSize,
    gpus: list[Gpu] | list[tuple[int, int]],
    backend: ScorerBackend | None = None,
    loop: Loop = "one-pass",
) -> MemoryPlan:
    """Choose where the models live. gpus: (free, total) bytes per device, as torch.cuda.mem_get_info."""
    backend = backend or ScorerBackend()
    devices = [gpu if isinstance(gpu, Gpu) else Gpu(*gpu) for gpu in gpus]
    if not devices:
        return MemoryPlan("cpu", True, "cpu", "cpu", reason="no usable GPU: both models run on the CPU")
    order = sorted(range(len(devices)), key=lambda i: devices[i].free_bytes, reverse=True)
    main, main_gpu = f"cuda:{order[0]}", devices[order[0]]
    one_gpu = _one_gpu_plans(generator, scorer, main, main_gpu, backend, loop)
    if one_gpu[0].fits:  # both resident, before any second device
        return one_gpu[0]
    if len(order) > 1:
        second = _second_gpu_plan(generator, scorer, main, main_gpu, f"cuda:{order[1]}", devices[order[1]], backend)
        if second.fits:
            return second
    for plan in one_gpu[1:]:
        if plan.fits:
            return plan
    return MemoryPlan("does-not-fit", False, reason=_why_not(generator, scorer, main_gpu, backend))


def plan_for_run(
    generator: str,
    scorer_model: str | None,
    strategy: str,
    backend: str = "transformers",
    vllm_share: float | None = None,
    gpus: list[Gpu] | list[tuple[int, int]] | None = None,
) -> MemoryPlan:
    """The plan for a run as the CLI names it: a generator location, a scorer model name ("omniquality-r",
    "embedded", a folder or a hub id; None for a scorer without model weights) and a strategy name; gpus
    default to what this machine has. Raises ValueError when a model's size is unknown."""
    from reward_model.backends import resolve_model

    scorer = (ModelSize("scorer without model weights", 0, 0, 0, "no weights") if scorer_model is None
              else model_size(resolve_model(scorer_model).source, "scorer"))
    sizes = model_size(generator, "generator"), scorer
    devices = visible_gpus() if gpus is None else gpus
    plan = plan_memory(*sizes, devices, ScorerBackend(backend, vllm_share), loop_shape(strategy))
    return replace(plan, sizes=sizes)


def _usable(gpu: Gpu) -> int:
    return gpu.free_bytes - RESERVED_BYTES


def _vllm_claim(scorer: ModelSize, gpu: Gpu, room_left: int, backend: ScorerBackend) -> tuple[float, int] | None:
    """The vLLM share and the bytes it claims on `gpu`, leaving `room_left` bytes for the generator;
    None when the scorer cannot fit in such a share (or in the share the user fixed)."""
    if backend.vllm_share is not None:
        share = backend.vllm_share
    else:  # the smallest share that holds weights and working memory, in hundredths as vLLM takes it
        share = math.ceil(100 * scorer.peak_bytes / gpu.total_bytes) / 100
    claim = int(share * gpu.total_bytes)
    if claim < scorer.peak_bytes or claim + room_left > _usable(gpu):
        return None
    return share, claim


def _one_gpu_plans(
    generator: ModelSize, scorer: ModelSize, device: str, gpu: Gpu, backend: ScorerBackend, loop: Loop
) -> list[MemoryPlan]:
    """Every one-GPU arrangement in order of preference; each says whether it fits."""
    vllm = backend.name == "vllm"
    turn = "vllm-sleep" if vllm else "move-to-cpu"
    arrangements = [  # (strategy, generator offloaded, take turns)
        ("resident", False, False),
        ("vllm-sleep" if vllm else "phases", False, True),
        ("cpu-offload", True, False),
        ("cpu-offload+phases", True, True),
    ]
    if loop == "alternating" and not vllm:
        # Alternating loops would move the whole scorer every round in phases; offloading only the
        # generator's components (moved per call anyway) keeps the scorer resident.
        arrangements[1], arrangements[2] = arrangements[2], arrangements[1]
    plans = []
    for strategy, offload, take_turns in arrangements:
        generator_peak = generator.offloaded_peak_bytes if offload else generator.peak_bytes
        share = None
        if vllm:
            room = 0 if take_turns else generator_peak
            claim = _vllm_claim(scorer, gpu, room, backend)
            fits = claim is not None and (not take_turns or generator_peak + VLLM_ASLEEP_BYTES <= _usable(gpu))
            share, scorer_peak = claim if claim else (None, scorer.peak_bytes)
            peak = max(generator_peak + VLLM_ASLEEP_BYTES, scorer_peak) if take_turns else generator_peak + scorer_peak
        else:
            peak = max(generator_peak, scorer.peak_bytes) if take_turns else generator_peak + scorer.peak_bytes
            fits = peak <= _usable(gpu)
        alternate = None
        if take_turns:
            alternate = turn if vllm or loop == "alternating" else "free the generator before scoring"
        reason = _reason(strategy, generator, scorer, gpu, loop)
        plans.append(
            MemoryPlan(strategy, fits, device, device, offload, alternate, share, {device: peak + RESERVED_BYTES}, reason)
        )
    return plans


def _second_gpu_plan(
    generator: ModelSize, scorer: ModelSize, gen_device: str, gen_gpu: Gpu, scorer_device: str, scorer_gpu: Gpu,
    backend: ScorerBackend,
) -> MemoryPlan:
    generator_fits = generator.peak_bytes <= _usable(gen_gpu)
    share = None
    if backend.name == "vllm":
        claim = _vllm_claim(scorer, scorer_gpu, 0, replace(backend, vllm_share=backend.vllm_share or DEFAULT_VLLM_SHARE))
        scorer_fits = claim is not None
        share, scorer_peak = claim if claim else (None, scorer.peak_bytes)
    else:
        scorer_peak = scorer.peak_bytes
        scorer_fits = scorer_peak <= _usable(scorer_gpu)
    peaks = {gen_device: generator.peak_bytes + RESERVED_BYTES, scorer_device: scorer_peak + RESERVED_BYTES}
    reason = "the two do not fit on one GPU together; each fits on its own device"
    return MemoryPlan(
        "scorer-on-second-gpu", generator_fits and scorer_fits, gen_device, scorer_device, False, None, share,
        peaks, reason,
    )


def _reason(strategy: str, generator: ModelSize, scorer: ModelSize, gpu: Gpu, loop: Loop) -> str:
    together = (generator.weights_bytes + scorer.weights_bytes) / GB
    free = gpu.free_bytes / GB
    if strategy == "resident":
        return f"both models ({together:.1f} GB of weights) fit in {free:.1f} GB free"
    if strategy == "cpu-offload":
        return (f"the generator runs under model CPU offload (at most {generator.largest_component_bytes / GB:.1f} GB "
                "of it on the GPU at once) beside the resident scorer")
    if strategy == "cpu-offload+phases":
        return "even offloaded, the generator fits only while the scorer is off the GPU"
    cost = "once per round" if loop == "alternating" else "once per run, which costs nothing for one pass"
    return (f"{together:.1f} GB of weights plus working memory do not fit in {free:.1f} GB free together; "
            f"one at a time they do ({cost})")


def _why_not(generator: ModelSize, scorer: ModelSize, gpu: Gpu, backend: ScorerBackend) -> str:
    free = _usable(gpu) / GB
    if generator.offloaded_peak_bytes > _usable(gpu):
        return (f"{generator.name}: even under CPU offload its largest component "
                f"({generator.largest_component_bytes / GB:.1f} GB + {generator.working_bytes / GB:.1f} GB working) "
                f"exceeds the {free:.1f} GB usable on the largest GPU")
    if backend.name == "vllm" and backend.vllm_share is not None:
        return (f"{scorer.name} needs {scorer.peak_bytes / GB:.1f} GB; vLLM's share {backend.vllm_share:.2f} of "
                f"{gpu.total_bytes / GB:.0f} GB does not hold it beside the free memory (lower or raise the share)")
    return f"{scorer.name} needs {scorer.peak_bytes / GB:.1f} GB; {free:.1f} GB usable on the largest GPU"


def visible_gpus() -> list[Gpu]:
    """Free and total memory of every visible CUDA device; empty when CUDA is not usable."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [Gpu(*torch.cuda.mem_get_info(index)) for index in range(torch.cuda.device_count())]


# --- Running on the CPU by accident ----------------------------------------------------------------------

CPU_WARNING_BYTES = 2 * GB  # above this, fp32 on a CPU takes minutes per picture or per score


def cpu_warning(models: list[ModelSize], device: str) -> str | None:
    """One loud line when models too big for a CPU are about to run on one; None otherwise.
    Call it after the device is chosen and before loading; print it to stderr."""
    if not device.startswith("cpu"):
        return None
    big = [model for model in models if model.weights_bytes > CPU_WARNING_BYTES]
    if not big:
        return None
    names = ", ".join(f"{model.name} ({model.weights_bytes / GB:.1f} GB)" for model in big)
    return (f"WARNING: running {names} on the CPU in fp32 ({cuda_unavailable_reason()}): expect minutes per "
            "picture; use a GPU or the embedded preset")


def cuda_unavailable_reason() -> str:
    """Why torch sees no GPU, in a few words (a driver older than the torch build says so here)."""
    import torch

    if torch.version.cuda is None:
        return "this torch build has no CUDA"
    if torch.cuda.is_available():
        return "CUDA is available but the CPU was chosen"
    try:
        torch.cuda.init()
    except Exception as error:  # noqa: BLE001 - the message is the point
        return f"CUDA not usable: {str(error).splitlines()[0]}"
    return "no CUDA device visible"

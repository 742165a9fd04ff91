"""How the scoring model is reached: which weights a name means, what it is asked, in which dtype it
computes, and the generation backends that run it.

A backend turns scoring requests (image, dimension, prompt, optional forced assistant prefix) into
completions. It knows nothing about scores: parsing, sampling statistics and caching live in the scorer.
Backends are registered by name on `SCORING_BACKENDS`; a new one is one `register_backend` call, no edit to
the scorer. An entry is a factory (or a "module:function" string) called with the resolved model and the
keywords `device`, `batch_size`, `precision`, `vllm_share` and `sleep_mode`; it takes the ones it uses.

The prompts: the instruction strings the released OmniQuality-R checkpoint was trained with
(`chat_messages`). They are part of the model's interface: changing a character changes what the model
sees. Tests compare them with the specification in shared/reference/omniquality-r.md.

The dtype (`compute_dtype`): fp32, or bf16 where the hardware runs it fast. "auto" picks bf16 on a GPU and
on a CPU with native bf16 matrix units (Intel AMX or AVX512-BF16), fp32 elsewhere. fp32 is the exact mode:
the same inputs give the same pixels and the same answers as a plain fp32 loop. On a CPU without bf16
units, bf16 is emulated and slower than fp32, so asking for it warns.

The model presets (`resolve_model`): a name resolves to where the weights are and how images are sized.
- "omniquality-r": the released checkpoint by hub id, with the authors' pixel bounds and token budget.
- "embedded": the small scorer trained by this project, shipped in reward_model/weights/.
Anything else is a local directory (must exist) or a hub id ("owner/name").
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from reward_model.interface import LazyRegistry

if TYPE_CHECKING:  # torch is imported when a dtype is asked for, so the CLI checks its input first
    import torch


SCORING_BACKENDS = LazyRegistry("backend")
SCORING_BACKENDS.add("transformers", "reward_model.backends.transformers_backend:build_backend")
SCORING_BACKENDS.add("vllm", "reward_model.backends.vllm_backend:build_backend")


@dataclass(frozen=True)
class Request:
    image: Image.Image
    dimension: str
    prompt: str | None
    prefix: str = ""  # assistant text forced before generation (answer-only mode)
    # This request's own sampling seed (derived from the picture, the dimension and the run seed), so
    # what it draws does not depend on which other requests share its batch, or in what order.
    seed: int | None = None
    # Generation may end once this text is written: what would follow is not read (a verdict rule that
    # reads only the judge's description). Backends that cannot stop on text generate to the end.
    stop: str | None = None


@dataclass(frozen=True)
class Decoding:
    """How to decode. Defaults are the authors' inference settings."""

    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    max_new_tokens: int = 4096
    num_samples: int = 1
    read_digit_probs: bool = False  # record the distribution over digits at every step
    seed: int | None = None  # the run seed sampled requests derive their own seeds from; None: unseeded

    def key(self) -> dict:
        """The settings that change results (for cache keys); sampling knobs only matter when sampling."""
        data = asdict(self)
        if not self.do_sample:
            for name in ("temperature", "top_p", "top_k", "seed"):
                data.pop(name)
        return data


@dataclass
class Completion:
    text: str  # generated text, the forced prefix not included
    generated_tokens: int
    token_texts: list[str] = field(default_factory=list)  # each generated token decoded alone
    digit_probs: list[list[float]] = field(default_factory=list)  # per step, P(next token = "0".."9")


@dataclass
class RequestResult:
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None  # the request could not be run at all


class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]: ...


def one_greedy_pass(decoding: Decoding) -> tuple[Decoding, int]:
    """Greedy decoding gives the same completion every time (and neither transformers nor vLLM will run
    greedy with several return sequences): generate one, and return how many samples were asked for."""
    if decoding.do_sample or decoding.num_samples == 1:
        return decoding, 1
    return replace(decoding, num_samples=1), decoding.num_samples


def repeat_completions(results: list[RequestResult], copies: int) -> list[RequestResult]:
    """Each request's one greedy completion, `copies` times; the repeats cost no generated token."""
    if copies == 1:
        return results
    for result in results:
        if result.completions:
            first = result.completions[0]
            result.completions = [first] + [replace(first, generated_tokens=0) for _ in range(copies - 1)]
    return results


def vllm_usable() -> bool:
    """vLLM is installed and a GPU is present."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def register_backend(name: str, factory) -> None:
    """Register a backend factory (or a "module:function" string) under `name`."""
    SCORING_BACKENDS.add(name, factory)


def available_backends() -> tuple[str, ...]:
    """"auto" and every registered backend by name."""
    return ("auto", *SCORING_BACKENDS.names())


def choose_backend_name(requested: str) -> str:
    choices = available_backends()
    if requested not in choices:
        raise ValueError(f"unknown backend {requested!r}; choose from {', '.join(choices)}")
    if requested == "auto":
        return "vllm" if vllm_usable() else "transformers"
    return requested


SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think><answer> answer here "
    "</answer>"
)

TECHNICAL_INSTRUCTION = (
    "Give a technical quality score for this picture between 0 and 5 (float, two decimal places). "
    "A rating of 0 represents very poor quality, while 5 represents excellent quality."
)

AESTHETIC_INSTRUCTION = (
    "Provide a float rating between 0 and 5 for the overall aesthetics of this image, rounded to two "
    "places. A rating of 0 represents very poor aesthetic quality, while 5 represents excellent "
    "aesthetic quality."
)

ALIGNMENT_INSTRUCTION = (
    'Judge the image alignment with the prompt: "{}"\n'
    "Please evaluate how well the image matches each element of provided prompt.\n"
    "\n"
    "And answer with the final alignment rating.\n"
    "Rate it from 0 to 5 (float, 2 decimals). A rating of 0 represents very poor alignment level, "
    "while 5 represents excellent alignment level."
)

# Image size bounds used by the authors at inference (Qwen2.5-VL counts pixels in 28x28 patches).
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 4000 * 28 * 28


def instruction_for(dimension: str, prompt: str | None = None) -> str:
    """The user-turn instruction for one dimension; alignment needs the generation prompt."""
    if dimension == "technical":
        return TECHNICAL_INSTRUCTION
    if dimension == "aesthetic":
        return AESTHETIC_INSTRUCTION
    if dimension == "alignment":
        if prompt is None or not prompt.strip():
            raise ValueError("alignment needs the generation prompt")
        return ALIGNMENT_INSTRUCTION.format(prompt)
    raise ValueError(f"unknown dimension {dimension!r}")


def chat_messages(dimension: str, prompt: str | None = None, image: object | None = None) -> list[dict]:
    """Messages in the Qwen2.5-VL chat format: system turn, then a user turn with image first."""
    image_part: dict = {"type": "image"}
    if image is not None:
        image_part["image"] = image
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [image_part, {"type": "text", "text": instruction_for(dimension, prompt)}],
        },
    ]


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The names torch uses, accepted too, so "--dtype bfloat16" keeps working.
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of this CPU (Linux /proc/cpuinfo); empty where that file does not exist."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices natively (AMX or AVX512-BF16)."""
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def normalise(precision: str | None) -> str:
    """The canonical name of a precision; None means "auto"."""
    name = ALIASES.get(precision or "auto", precision or "auto")
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return name


def compute_dtype(precision: str | None, device: str | torch.device, fast_bf16: bool | None = None) -> torch.dtype:
    """The dtype to compute in on `device` for the requested precision.

    `fast_bf16` says whether the CPU has bf16 units (detected when None; given in tests).
    """
    import torch

    name = normalise(precision)
    on_cpu = torch.device(device).type == "cpu"
    if fast_bf16 is None:
        fast_bf16 = cpu_has_fast_bf16() if on_cpu else True
    if name == "auto":
        return torch.bfloat16 if not on_cpu or fast_bf16 else torch.float32
    if on_cpu and name == "bf16" and not fast_bf16:
        warnings.warn(
            "this CPU has no bf16 matrix units (AMX / AVX512-BF16): bf16 is emulated and slower than fp32",
            stacklevel=2,
        )
    if on_cpu and name == "fp16":
        raise ValueError("fp16 is for GPUs; on a CPU use fp32 or bf16")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "weights" / "tiny-omniquality-r"
RELEASED_HUB_ID = "yeeeeeyy/OmniQuality-R"
RELEASE_TOKENS = 4096  # the authors decode up to 4096 new tokens; fewer cuts the reasoning short
TINY_TOKENS = 512  # the project's tiny scorers reason in far fewer tokens
TINY_HIDDEN_SIZE = 1024  # below this width a model is one of the tiny ones (a 7B is 3584 wide)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(ValueError):
    """A model name that points at nothing loadable; the message says what to do."""


@dataclass(frozen=True)
class ScorerModel:
    source: str  # hub id or local directory, as given to from_pretrained
    fingerprint: str  # changes when the weights change: part of every cache key
    min_pixels: int | None  # None: keep what the saved processor says
    max_pixels: int | None
    max_new_tokens: int  # room for the reasoning


PRESETS = ("omniquality-r", "embedded")


def resolve_model(name: str) -> ScorerModel:
    """Turn a preset name, local path or hub id into a ScorerModel, or raise ModelNotFoundError."""
    if name == "omniquality-r" or name == RELEASED_HUB_ID:
        return ScorerModel(RELEASED_HUB_ID, RELEASED_HUB_ID, MIN_PIXELS, MAX_PIXELS, RELEASE_TOKENS)
    if name == "embedded":
        if not (EMBEDDED_DIR / "config.json").exists():
            raise ModelNotFoundError(
                f"the embedded scorer is not available yet: no trained weights in {EMBEDDED_DIR} "
                "(train them first, or pass --model PATH or --model omniquality-r)"
            )
        return _local(EMBEDDED_DIR)
    path = Path(name).expanduser()
    if path.exists():
        return _local(path)
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return ScorerModel(name, name, None, None, RELEASE_TOKENS)
    raise ModelNotFoundError(
        f"model {name!r} not found: not a preset ({', '.join(PRESETS)}), not an existing directory, "
        "not a hub id"
    )


def _local(path: Path) -> ScorerModel:
    path = path.resolve()
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"{path} has no config.json: not a saved model directory")
    return ScorerModel(str(path), _fingerprint(path), None, None, _token_budget(path))


def _token_budget(path: Path) -> int:
    """A local copy of a full-size model (the 7B) gets the release's budget; a tiny scorer its own."""
    config = json.loads((path / "config.json").read_text())
    width = config.get("text_config", {}).get("hidden_size") or config.get("hidden_size") or 0
    return TINY_TOKENS if width < TINY_HIDDEN_SIZE else RELEASE_TOKENS


def _fingerprint(path: Path) -> str:
    """Path plus size and modification time of every weight/config file: retraining invalidates caches."""
    digest = hashlib.sha256(str(path).encode())
    for file in sorted(path.iterdir()):
        if file.suffix in {".json", ".safetensors", ".bin", ".jinja"}:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{path}@{digest.hexdigest()[:16]}"

"""Generation backends behind one small interface.

A backend turns scoring requests (image, dimension, prompt, optional forced assistant prefix) into
completions. It knows nothing about scores: parsing, sampling statistics and caching live in the scorer.

Backends are registered by name on `SCORING_BACKENDS`; a new one is one `register_backend` call, no edit to
the scorer. An entry is a factory (or a "module:function" string) called with the resolved model and the
keywords `device`, `batch_size`, `precision`, `vllm_share` and `sleep_mode`; it takes the ones it uses.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from PIL import Image

from reward_model.registry import LazyRegistry

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

"""A run's input: what it is asked for (`RunRequest`), the checks on it, and what planning makes of it
(`RunPlan`).

The checks serve the run plan and the command lines: every bad input is one line (exit code 2 on the
command line), found before any model is loaded. The request and the plan are plain data, shared by the
run builder that checks and assembles them and the placement code that loads what they name.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from reward_model.interface import MAX_PROMPT_CHARS, device_problem, normalise_prompt
from t2i_guidance.registries import DEFAULT_PRESET, family_function

if TYPE_CHECKING:  # only named in the plan's fields: importing them brings torch, and checks start before
    from t2i_guidance.generator import GenerationSettings
    from t2i_guidance.ledger import Budget
    from t2i_guidance.registries import Preset


MAX_CANDIDATES = 256  # beyond this a single run should be a benchmark, not a CLI call
MAX_STEPS = 1000  # diffusers schedulers are trained on 1000 timesteps
MAX_GUIDANCE_SCALE = 100.0
MAX_SIDE = 4096  # pixels per image side
MAX_LCB_LAMBDA = 100.0  # mean - lambda * std: beyond this the mean no longer counts, and lambda * std overflows
# A zero-order neighbour is (pivot + step * eps) / sqrt(1 + step^2): at 100 it is fresh noise already, and
# past about 1e154 step^2 overflows and the neighbour becomes all zeros (a flat picture).
MAX_STEP_SIZE = 100.0
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's range; candidate k uses seed + k
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block on error; we print one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def check_prompt(prompt: str | None) -> str:
    """The prompt normalised (`normalise_prompt`: NFC, invisible marks removed, tabs and line breaks become
    spaces); other control characters are refused. What a model cannot draw is its family's check."""
    if prompt is not None and not isinstance(prompt, str):
        raise UsageError(f"the prompt must be text, got {prompt!r}")
    if prompt is None or not normalise_prompt(prompt):
        raise UsageError("the prompt is empty")
    prompt = normalise_prompt(prompt)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UsageError(f"the prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}")
    controls = sorted({f"U+{ord(c):04X}" for c in prompt if unicodedata.category(c) == "Cc"})
    if controls:
        raise UsageError(f"the prompt contains control characters ({', '.join(controls)})")
    return prompt


def check_int(name: str, value: int | None, low: int, high: int) -> int | None:
    """None (not given) passes; anything else must be a whole number (not true/false) in low..high."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{name} must be a whole number, got {value!r}")
    if value is not None and not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high:,}, got {value:,}")
    return value


def check_float(name: str, value: float | None, low: float, high: float = math.inf) -> float | None:
    """None passes; NaN and infinities are refused (they would silently switch features off)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise UsageError(f"{name} must be a finite number {bounds}, got {value}")
    return value


def check_finite_options(options: dict[str, Any]) -> None:
    """Every number among `options` finite: NaN compares false with everything, so a NaN target is never
    reached and a NaN lambda ranks every candidate alike; an infinite step size draws solid black noise.
    No strategy option is a yes/no, so true and false (JSON in a benchmark's strategy name) are no numbers."""
    for name, value in options.items():
        if isinstance(value, bool):
            raise UsageError(f"{name} must be a number, got {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{name} must be a finite number, got {value}")


def check_device(device: str | None) -> str | None:
    """None (the default device), cpu, mps, cuda or cuda:N, where such a device is present."""
    problem = device_problem(device)
    if problem:
        raise UsageError(problem)
    return device


def check_seed(seed: int, n: int = 1) -> int:
    """Candidate k uses seed + k, so the last one must still fit torch's seed range."""
    if not 0 <= seed <= MAX_SEED - (n - 1):
        raise UsageError(f"--seed must be between 0 and {MAX_SEED - (n - 1):,}, got {seed:,}")
    return seed


def check_generation_values(steps: int, guidance_scale: float | None, height: int | None, width: int | None,
                            batch_size: int | None, seed: int | None, candidates: int) -> None:
    """The numeric generation settings every search shares; None means not given."""
    check_int("--steps", steps, 1, MAX_STEPS)
    check_float("--guidance-scale", guidance_scale, 0.0, MAX_GUIDANCE_SCALE)
    check_int("--height", height, 8, MAX_SIDE)
    check_int("--width", width, 8, MAX_SIDE)
    check_int("--batch-size", batch_size, 1, MAX_CANDIDATES)
    if seed is not None:
        check_seed(seed, candidates)


def check_negative_prompt(negative: str | None) -> str | None:
    """A negative prompt is checked like a prompt when it says anything; a blank one is left as it is."""
    return check_prompt(negative) if negative and negative.strip() else negative


def check_weights(text: str, parse: Callable[[str], dict[str, float]]) -> dict[str, float]:
    """`parse` (aggregate.parse_weights) after refusing what it lets through: nothing, a repeated
    dimension, NaN or infinite weights."""
    if not text.replace(",", "").strip():
        raise UsageError("--weights is empty; expected e.g. technical=1,aesthetic=1,alignment=2")
    names = [part.partition("=")[0].strip() for part in text.split(",") if part.strip()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"--weights names {', '.join(repeated)} more than once")
    weights = parse(text)
    bad = [f"{name}={value}" for name, value in weights.items() if not math.isfinite(value)]
    if bad:
        raise UsageError(f"--weights must be finite numbers, got {', '.join(bad)}")
    return weights


def accepts_keyword(factory: Callable[..., Any], name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def pipeline_class(location: str) -> str | None:
    """The `_class_name` in a local pipeline folder's model_index.json (None for a hub id)."""
    index = Path(location) / "model_index.json"
    if not index.is_file():
        return None
    try:
        return json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def check_drawable(prompt: str, generator_location: str) -> None:
    """A generator that draws only its own grammar (its pipeline family has a `prompt_problem`) refuses
    anything else up front."""
    problem = family_function(pipeline_class(generator_location), "prompt_problem")
    reason = problem(prompt, generator_location) if problem is not None else None
    if reason:
        raise UsageError(reason)


def check_image_size(generator_location: str, height: int | None, width: int | None) -> None:
    """A generator that draws only some sizes (its pipeline family has a `size_problem`) refuses the others
    before it is loaded; None means the model's own size."""
    problem = family_function(pipeline_class(generator_location), "size_problem")
    reason = problem(generator_location, height, width) if problem is not None else None
    if reason:
        raise UsageError(reason)


def check_n(n: int) -> int:
    if not 1 <= n <= MAX_CANDIDATES:
        raise UsageError(f"--n must be between 1 and {MAX_CANDIDATES}, got {n}")
    return n


def check_model_location(location: str, what: str, index_file: str | None = None) -> str:
    """A local folder must exist (and hold `index_file` when given); anything else must look like a hub
    id ("org/name")."""
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} {location!r} is a file, not a model folder")
        if index_file and not (path / index_file).is_file():
            raise UsageError(f"{what} folder {location!r} has no {index_file}: not a saved model")
        return str(path)
    if location.startswith((".", "/", "~")) or not _HUB_ID.match(location):
        raise UsageError(f"{what} path {location!r} does not exist")
    return location


def check_output_dir(out: str, overwrite: bool) -> Path:
    if not out.strip():  # Path("") is the current folder
        raise UsageError("--out is empty; name the folder for the run")
    from t2i_guidance.result import holds_run  # here: importing it brings torch, and checks start before

    out_dir = Path(out).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out!r} is a file, not a folder")
    if out_dir.is_dir() and holds_run(out_dir) and not overwrite:
        raise UsageError(f"output folder {out!r} already holds a run (use --overwrite to replace it)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {out!r} is not writable: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"output folder {out!r} is not writable")
    return out_dir


class RunError(ValueError):
    """A run that cannot be planned from what was asked (bad input): one line for the user."""


@dataclass
class RunRequest:
    """What a caller asks for. Everything but the preset is an optional override of it."""

    preset: str = DEFAULT_PRESET
    strategy: str = "best-of-n"
    strategy_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"n": 8} or {"max_rounds": 3}
    generator: str | None = None  # diffusers pipeline: hub id or folder
    scorer: str | None = None  # registered scorer name
    scorer_model: str | None = None
    scorer_mode: str | None = None  # omniquality-r: reason, prob-weighted or answer-only
    scorer_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"samples": 4, "decoding": "greedy"}
    cheap_scorer: str | None = None  # cascade: registered name (default: the main scorer)
    cheap_scorer_options: dict[str, Any] | None = None  # default for omniquality-r: {"mode": "answer-only"}
    weights: str | Mapping[str, float] | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    negative_prompt: str | None = None
    batch_size: int | None = None
    score_chunk_size: int | None = None  # pictures per scorer call (the strategy's default otherwise)
    selection: str = "mean"
    lcb_lambda: float = 1.0
    budget: Budget | str | None = None  # a Budget, or its text ("320" NFEs, "30s")
    device: str | None = None
    dtype: str | None = None
    cpu_offload: bool = False
    scorer_device: str | None = None  # where the scorer runs (default: where the memory plan puts it)
    vllm_share: float | None = None  # vLLM's share of its GPU (default: the smallest the memory plan allows)
    prompt: str | None = None  # when given, checked against what the generator can draw
    seed: int | None = None  # the run's seed: checked, and handed to scorers that sample (same seed, same ranking)


@dataclass
class RunPlan:
    """A checked request: every name resolved, every value checked, nothing loaded. The request itself is
    kept as it was asked."""

    request: RunRequest
    prompt: str | None  # the checked prompt (None: none was given to check)
    budget: Budget | None
    preset: Preset
    generator_location: str
    scorer_name: str
    scorer_kwargs: dict[str, Any]
    cheap: tuple[str, dict[str, Any]] | None
    weights: dict[str, float]
    settings: GenerationSettings
    strategy_options: dict[str, Any]

    def config(self) -> dict:
        """What result.json records about where the run came from."""
        return {"preset": self.preset.name, "generator": self.generator_location, "scorer": self.scorer_name,
                "scorer_kwargs": self.scorer_kwargs,
                "cheap_scorer": list(self.cheap) if self.cheap else None}

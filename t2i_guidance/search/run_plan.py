"""What a run is asked for (`RunRequest`) and what planning makes of it (`RunPlan`): plain data, shared by
the run builder that checks and assembles it and the placement code that loads what it names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from t2i_guidance.generator import GenerationSettings
from t2i_guidance.ledger import Budget
from t2i_guidance.registries import DEFAULT_PRESET, Preset


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

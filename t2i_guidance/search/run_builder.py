"""The one run builder: a preset plus overrides -> (generator, scorer, strategy), for the CLIs, the demo
and the benchmarks alike.

    plan = plan_run(RunRequest(preset="embedded", strategy="refine", strategy_options={"max_rounds": 3}))
    memory = memory_plan_for(plan)            # where the models will live; reads sizes, loads nothing
    run = build_run(plan, memory=memory)      # loads the models as the memory plan says
    result = run("a red circle above a blue square", seed=0)

`plan_run` checks everything a user can get wrong and loads nothing, so bad input fails before any
model does; `build_run` loads (or reuses the generator and scorer it is given). One scorer instance serves
every pass of a run: a cheap pass in another mode shares the loaded model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reward_model.interface import validate_dimensions, verdicts_problem
from t2i_guidance import registries
from t2i_guidance.generator import GenerationSettings
from t2i_guidance.input_checks import (
    MAX_LCB_LAMBDA,
    MAX_STEP_SIZE,
    RunError,
    RunPlan,
    RunRequest,
    UsageError,
    accepts_keyword,
    check_device,
    check_drawable,
    check_finite_options,
    check_float,
    check_generation_values,
    check_image_size,
    check_model_location,
    check_n,
    check_negative_prompt,
    check_prompt,
    check_weights,
)
from t2i_guidance.ledger import parse_budget
from t2i_guidance.memory_plan import MemoryPlan
from t2i_guidance.placement import (  # noqa: F401 - the loaders are used through this module too
    ModelLoadError,
    cpu_warnings,
    load_generator,
    load_models,
    load_scorer,
    memory_plan_for,
    with_phases,
)
from t2i_guidance.registries import Preset, load_preset, strategy_class
from t2i_guidance.result import SearchResult, parse_weights
from t2i_guidance.search.base import SELECTIONS, Search, candidates_at_most, strategy_parameters
from t2i_guidance.search.rewriting import check_rewriter_spec

COMMON_OPTIONS = ("weights", "batch_size", "score_chunk_size", "selection", "lcb_lambda")
WHOLE_NUMBER_OPTIONS = ("n", "per_round", "max_rounds", "patience", "neighbours", "rounds", "keep")


def _check_scorer(name: str) -> None:
    if name not in registries.available_scorers():
        raise RunError(f"unknown scorer {name!r}; available: {', '.join(registries.available_scorers())}")


def _seeded(name: str, kwargs: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """Scorers that sample take the run's seed, so the same seed gives the same ranking."""
    if seed is not None and accepts_keyword(registries.get_scorer_factory(name), "seed"):
        kwargs.setdefault("seed", seed)
    return kwargs


def _weights_text(weights: str | Mapping[str, float]) -> str:
    if isinstance(weights, Mapping):
        return ",".join(f"{k}={v}" for k, v in weights.items())
    return weights


def plan_run(request: RunRequest) -> RunPlan:
    """Check a request and resolve it against its preset; raises RunError with one line, loads nothing."""
    try:
        return _plan(request)
    except (UsageError, ValueError) as exc:  # RunError included
        raise RunError(str(exc)) from None
    except KeyError as exc:  # an unknown preset or strategy: the registry's line names what there is
        raise RunError(exc.args[0]) from None


def _strategy_options(request: RunRequest, cls: type) -> dict[str, Any]:
    """The strategy's options, checked against what it takes (None is meaningful: best-of-n's n=None
    fills the budget)."""
    allowed = set(strategy_parameters(cls)) - set(strategy_parameters(Search))
    options = dict(request.strategy_options)
    check_finite_options(options)
    unknown = sorted(set(options) - allowed - {"cheap_scorer"})  # the cheap scorer is built from its name
    if unknown:
        raise RunError(f"option {', '.join(unknown)} does not apply to strategy {request.strategy!r}")
    if isinstance(options.get("n"), int):
        check_n(options["n"])
    for name in WHOLE_NUMBER_OPTIONS:
        if options.get(name) is not None and (not isinstance(options[name], int) or options[name] < 1):
            raise RunError(f"{name} must be a whole number of at least 1, got {options[name]!r}")
    if options.get("step_size") is not None and not 0 < options["step_size"] <= MAX_STEP_SIZE:
        raise RunError(f"step_size must be positive and at most {MAX_STEP_SIZE:g}, got {options['step_size']}")
    if options.get("cheap_dimensions") is not None:
        try:
            validate_dimensions(options["cheap_dimensions"])
        except ValueError as exc:
            raise RunError(f"--cheap-dimensions: {exc}") from None
    check = getattr(cls, "check_options", None)  # a strategy's own checks on its option values
    if check is not None:
        check(options)
    if isinstance(options.get("rewriter"), str):
        check_rewriter_spec(options["rewriter"])
    return options


def _scorer_kwargs(request: RunRequest, preset: Preset, scorer_name: str) -> dict[str, Any]:
    _check_scorer(scorer_name)
    if request.scorer_mode and not accepts_keyword(registries.get_scorer_factory(scorer_name), "mode"):
        raise RunError(f"scorer {scorer_name!r} has no modes; --scorer-mode is for omniquality-r")
    verdicts = request.scorer_options.get("verdicts")
    if verdicts is not None:
        if not accepts_keyword(registries.get_scorer_factory(scorer_name), "verdicts"):
            raise RunError(f"scorer {scorer_name!r} writes no checks; --verdicts is for omniquality-r")
        if problem := verdicts_problem(verdicts):
            raise RunError(problem)
    samples = request.scorer_options.get("samples")
    if samples is not None and samples < 1:
        raise RunError(f"--samples must be at least 1, got {samples}")
    kwargs = dict(preset.scorer_kwargs) if scorer_name == preset.scorer else {}
    if request.scorer_model:
        kwargs["model"] = request.scorer_model
    if request.scorer_mode:
        kwargs["mode"] = request.scorer_mode
    kwargs.update(request.scorer_options)
    if request.dtype and accepts_keyword(registries.get_scorer_factory(scorer_name), "precision"):
        kwargs.setdefault("precision", request.dtype)
    return _seeded(scorer_name, kwargs, request.seed)


def _cheap_scorer(request: RunRequest, preset: Preset, cls: type, scorer_name: str,
                  scorer_kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The cheap pass's scorer, for the cascade and the strategies that judge intermediate predictions."""
    if "cheap_scorer" not in strategy_parameters(cls):
        if request.cheap_scorer is not None:
            raise RunError(f"--cheap-scorer does not apply to strategy {request.strategy!r}")
        if request.cheap_scorer_options is not None:
            raise RunError(f"--cheap-mode does not apply to strategy {request.strategy!r}")
        return None
    cheap_name = request.cheap_scorer or scorer_name
    _check_scorer(cheap_name)
    cheap_kwargs = dict(scorer_kwargs) if cheap_name == scorer_name else {}
    if request.cheap_scorer_options is not None:
        cheap_kwargs.update(request.cheap_scorer_options)
    elif cheap_name == "omniquality-r":  # the preset knows what its scorer can do cheaply
        cheap_kwargs.update(preset.cheap_scorer_kwargs or {"mode": "answer-only", "samples": 1})
    return cheap_name, _seeded(cheap_name, cheap_kwargs, request.seed)


def _check_placement(request: RunRequest) -> None:
    for flag, device in (("--device", request.device), ("--scorer-device", request.scorer_device)):
        if device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise RunError(f"{flag} must be cpu, cuda or cuda:N, got {device!r}")
    if request.vllm_share is not None and not 0 < request.vllm_share <= 1:
        raise RunError(f"--vllm-memory-share must be a fraction in (0, 1], got {request.vllm_share}")


def _plan(request: RunRequest) -> RunPlan:
    preset = load_preset(request.preset)
    cls = strategy_class(request.strategy)
    budget = parse_budget(request.budget) if isinstance(request.budget, str) else request.budget
    options = _strategy_options(request, cls)
    scorer_name = request.scorer or preset.scorer
    scorer_kwargs = _scorer_kwargs(request, preset, scorer_name)
    steps = request.steps if request.steps is not None else preset.num_inference_steps
    generator_location = check_model_location(
        request.generator or preset.generator, "generator", index_file="model_index.json"
    )
    prompt = None
    if request.prompt is not None:
        prompt = check_prompt(request.prompt)
        check_drawable(prompt, generator_location)
    weights = check_weights(_weights_text(preset.weights if request.weights is None else request.weights),
                            parse_weights)
    check_generation_values(steps, request.guidance_scale, request.height, request.width, request.batch_size,
                            request.seed, candidates_at_most(cls, options) or 1)
    if request.selection not in SELECTIONS:
        raise RunError(f"unknown selection {request.selection!r}; choose from {', '.join(SELECTIONS)}")
    check_float("--lcb-lambda", request.lcb_lambda, 0.0, MAX_LCB_LAMBDA)
    check_device(request.device)
    cheap = _cheap_scorer(request, preset, cls, scorer_name, scorer_kwargs)
    _check_placement(request)
    settings = preset.generation_settings(
        num_inference_steps=steps, guidance_scale=request.guidance_scale, height=request.height,
        width=request.width, negative_prompt=check_negative_prompt(request.negative_prompt),
    )
    check_image_size(generator_location, settings.height, settings.width)
    return RunPlan(request, prompt, budget, preset, generator_location, scorer_name, scorer_kwargs, cheap,
                   weights, settings, options)


@dataclass
class Run:
    """A built run: call it with a prompt."""

    plan: RunPlan
    generator: Any
    scorer: Any
    strategy: Any

    def __call__(self, prompt: str, seed: int = 0, progress: bool = False,
                 settings: GenerationSettings | None = None) -> SearchResult:
        result = self.strategy(prompt, settings or self.plan.settings, seed=seed, budget=self.plan.budget,
                               progress=progress)
        result.config.update(self.plan.config())
        return result


def _cheap_pass_scorer(plan: RunPlan, scorer: Any) -> Any:
    """The cheap pass's scorer: the loaded one, in another request mode when the cheap kwargs differ only in
    how requests are answered; a second model only when the cheap pass names another scorer or model."""
    name, kwargs = plan.cheap
    if name == plan.scorer_name:
        changed = {key: value for key, value in kwargs.items() if plan.scorer_kwargs.get(key, _UNSET) != value}
        unchanged = all(kwargs.get(key, _UNSET) == value for key, value in plan.scorer_kwargs.items())
        if not changed and unchanged:
            return scorer
        if unchanged and hasattr(scorer, "with_settings"):
            try:
                return scorer.with_settings(**changed)
            except ValueError:  # a setting that needs its own model load
                pass
    return registries.build_scorer(name, **kwargs)


_UNSET = object()


def build_run(plan: RunPlan | RunRequest, generator: Any = None, scorer: Any = None,
              memory: MemoryPlan | None = None) -> Run:
    """Load what the plan names (a given generator or scorer is reused) and assemble the strategy; the two
    take turns on the GPU when the memory plan says so."""
    if isinstance(plan, RunRequest):
        plan = plan_run(plan)
    if memory is None and generator is not None and scorer is not None:
        # Both already loaded: the plan they were loaded by (re-planning now would count them as used memory).
        loaded_by = getattr(generator, "memory_plan", None)
        memory = loaded_by if isinstance(loaded_by, MemoryPlan) else MemoryPlan("as loaded", True, reason="models given")
    memory = memory or memory_plan_for(plan)
    if generator is None and scorer is None:
        generator, scorer = load_models(plan, memory)
    generator = generator if generator is not None else load_generator(plan, memory)
    scorer = scorer if scorer is not None else load_scorer(plan, memory)
    options = dict(plan.strategy_options)
    cheap = _cheap_pass_scorer(plan, scorer) if plan.cheap is not None else None
    generator, scorer, cheap = with_phases(memory, generator, scorer, cheap)
    if cheap is not None:
        options["cheap_scorer"] = cheap
    request = plan.request
    if request.score_chunk_size is not None:
        options["score_chunk_size"] = request.score_chunk_size
    strategy = strategy_class(request.strategy)(
        generator, scorer, weights=plan.weights, batch_size=request.batch_size, selection=request.selection,
        lcb_lambda=request.lcb_lambda, **options,
    )
    return Run(plan, generator, scorer, strategy)

"""Loading and running as the memory plan says: where each model loads, and which holds the GPU while the
other works.

    memory = memory_plan_for(plan)              # plan: a checked RunPlan; reads sizes, loads nothing
    generator, scorer = load_models(plan, memory)

A plan with `alternate` set shares one GPU between phases. The switch is lazy and happens where the work
starts: the generator comes back to its device when asked to draw (or when its denoiser runs again, as
between the checkpoints of particles and path search), and leaves before the scorer judges. A one-pass loop
(best-of-N) therefore moves the generator once per run; an alternating loop, once per round.

    generator, scorer, cheap = with_phases(plan, generator, scorer, cheap)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from t2i_guidance import registries
from t2i_guidance.generator import Generator, default_device, denoiser_of
from t2i_guidance.hub_errors import hub_error_message
from t2i_guidance.input_checks import accepts_keyword
from t2i_guidance.memory_plan import MemoryPlan, cpu_warning, plan_for_run

if TYPE_CHECKING:
    from t2i_guidance.input_checks import RunPlan

AWAY = "cpu"  # where an idle model waits


class ModelLoadError(RuntimeError):
    """A model that could not be loaded; the message is one line naming it."""


def memory_plan_for(plan: RunPlan, gpus: list | None = None) -> MemoryPlan:
    """Where the run's models will live, from their sizes and the GPUs' free memory (gpus: (free, total)
    bytes each; default this machine's, none when --device cpu). Loads nothing. A model whose size cannot
    be read without loading gets an "unplanned" plan that keeps the default placement."""
    from reward_model.backends import choose_backend_name

    request = plan.request
    if request.device is not None and request.device.startswith("cpu"):
        gpus = []
    omniquality = plan.scorer_name == "omniquality-r"
    scorer_model = plan.scorer_kwargs.get("model", "embedded") if omniquality else None
    backend = choose_backend_name(plan.scorer_kwargs.get("backend", "auto")) if omniquality else "transformers"
    try:
        memory = plan_for_run(plan.generator_location, scorer_model, request.strategy, backend,
                              request.vllm_share, gpus)
    except ValueError as exc:
        device = request.device or default_device()
        return MemoryPlan("unplanned", True, device, request.scorer_device or device,
                          reason=f"{exc}; the default placement is used")
    if request.device is not None or request.scorer_device is not None:  # the user's placement wins
        memory = replace(memory, generator_device=request.device or memory.generator_device,
                         scorer_device=request.scorer_device or memory.scorer_device)
    return memory


def cpu_warnings(memory: MemoryPlan) -> str | None:
    """The loud line for big models planned onto the CPU (None when nothing big runs there)."""
    generator, scorer = memory.sizes or (None, None)
    on_cpu = [size for size, device in ((generator, memory.generator_device), (scorer, memory.scorer_device))
              if size is not None and (device or "").startswith("cpu")]
    return cpu_warning(on_cpu, "cpu")


def load_generator(plan: RunPlan, memory: MemoryPlan | None = None) -> Any:
    memory = memory or memory_plan_for(plan)
    offload = plan.request.cpu_offload or memory.generator_cpu_offload
    return Generator.from_pretrained(plan.generator_location, device=memory.generator_device,
                                     precision=plan.request.dtype, cpu_offload=offload)


def load_scorer(plan: RunPlan, memory: MemoryPlan | None = None) -> Any:
    memory = memory or memory_plan_for(plan)
    kwargs = dict(plan.scorer_kwargs)
    factory = registries.get_scorer_factory(plan.scorer_name)
    placement = {"device": memory.scorer_device, "vllm_share": memory.vllm_share,
                 "vllm_sleep_mode": memory.alternate == "vllm-sleep" or None}
    for name, value in placement.items():
        if value is not None and accepts_keyword(factory, name):
            kwargs.setdefault(name, value)
    return registries.build_scorer(plan.scorer_name, **kwargs)


def load_models(plan: RunPlan, memory: MemoryPlan | None = None) -> tuple[Any, Any]:
    """The generator, then the scorer, placed as the memory plan says; when the two take turns on one GPU
    the generator leaves it before the scorer loads. A failure is a ModelLoadError of one line (a gated or
    missing hub model says which licence page or id). Big models planned onto a CPU get a loud line on stderr."""
    memory = memory or memory_plan_for(plan)
    warning = cpu_warnings(memory)
    if warning:  # the CLI, the demo and the benchmarks all load here
        print(warning, file=sys.stderr)
    scorer_model = str(plan.scorer_kwargs.get("model", plan.scorer_name))
    with _one_line_load_errors("generator", plan.generator_location):
        generator = load_generator(plan, memory)
    generator.memory_plan = memory  # runs built later on these models follow the plan they were loaded by
    if memory.alternate and not memory.generator_cpu_offload:
        park(generator)
    with _one_line_load_errors("scorer", scorer_model):
        scorer = load_scorer(plan, memory)
    return generator, scorer


@contextmanager
def _one_line_load_errors(role: str, name: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # missing weights, no network, out of memory: say which, do not guess
        hub_line = hub_error_message(exc, name)
        first_line = (str(exc).splitlines() or [""])[0]
        raise ModelLoadError(hub_line or f"could not load {role} {name!r}: {type(exc).__name__}: {first_line}") from exc


# --- Taking turns on one GPU ----------------------------------------------------------------------------

class Phases:
    """Which of the two models is on the shared GPU now, and the moves between them. Both take turns: the
    plan's peak is the larger of the two, never their sum."""

    def __init__(self, plan: MemoryPlan, pipeline: Any, generator_device: str, scorer: Any) -> None:
        self.plan = plan
        self.pipeline = pipeline
        self.home = generator_device
        # Under model CPU offload diffusers moves the generator's parts itself (and frees them after a call).
        self.move_generator = not plan.generator_cpu_offload
        self.backend = getattr(scorer, "backend", None)
        self.turn: str | None = None  # unknown at first: the first switch makes every move (no-ops if in place)

    def for_generating(self) -> None:
        if self.turn == "generator":
            return
        self.turn = "generator"
        if self.plan.alternate == "vllm-sleep":
            self.backend.sleep()
        else:
            _move(getattr(self.backend, "model", None), AWAY)
        if self.move_generator:
            _move(self.pipeline, self.home)

    def for_scoring(self) -> None:
        if self.turn == "scorer":
            return
        self.turn = "scorer"
        if self.move_generator:
            _move(self.pipeline, AWAY)
        if self.plan.alternate == "vllm-sleep":
            self.backend.wake_up()
        else:
            _move(getattr(self.backend, "model", None), str(getattr(self.backend, "device", self.plan.scorer_device)))


def park(generator: Any) -> None:
    """Send a just-loaded generator off the GPU, so the scorer loads into the room the plan gave it (the
    generator comes back when it first draws)."""
    _move(generator.pipeline, AWAY)


def _move(model: Any, device: str) -> None:
    """Weights to `device`, outside inference mode (a move inside it would leave inference tensors as
    parameters), and the freed blocks back to the driver."""
    if model is None:
        return
    with torch.inference_mode(False):
        model.to(device)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class PhasedGenerator:
    """The generator, brought back to its device before it draws; everything else passes through."""

    def __init__(self, generator: Any, phases: Phases) -> None:
        self._generator = generator
        self._phases = phases

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self._phases.for_generating()
        return self._generator.generate(*args, **kwargs)

    @property
    def pipeline(self) -> Any:  # strategies that drive the pipeline themselves start here
        self._phases.for_generating()
        return self._generator.pipeline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)


class PhasedScorer:
    """The scorer, given the GPU before it judges; everything else passes through."""

    def __init__(self, scorer: Any, phases: Phases) -> None:
        self._scorer = scorer
        self._phases = phases

    def score(self, *args: Any, **kwargs: Any) -> Any:
        self._phases.for_scoring()
        return self._scorer.score(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)


def with_phases(plan: MemoryPlan, generator: Any, scorer: Any, cheap: Any = None) -> tuple[Any, Any, Any]:
    """The generator and scorers wrapped to take turns on the GPU when the plan says so; unchanged otherwise."""
    if not plan.alternate:
        earlier = getattr(getattr(generator, "pipeline", None), "components", {}).values()
        for module in earlier:  # an earlier run's turns on this pipeline end here
            if getattr(module, "_memory_phases", None) is not None:
                module._memory_phases = None
        return generator, scorer, cheap
    pipeline = generator.pipeline
    denoiser = denoiser_of(pipeline)
    phases = Phases(plan, pipeline, generator.device, scorer)
    # The denoiser brings the generator back mid-call too (a checkpoint's scoring sent it away). One hook per
    # denoiser, whatever the number of runs built on it: it asks the latest plan's phases.
    if not hasattr(denoiser, "_memory_phases"):
        denoiser.register_forward_pre_hook(_generator_turn, prepend=True)  # before any other hook sees it
    denoiser._memory_phases = phases
    cheap = PhasedScorer(cheap, phases) if cheap is not None else None
    return PhasedGenerator(generator, phases), PhasedScorer(scorer, phases), cheap


def _generator_turn(denoiser: torch.nn.Module, args: tuple) -> None:
    phases = getattr(denoiser, "_memory_phases", None)
    if phases is not None:  # None: a later run on this denoiser does not take turns
        phases.for_generating()

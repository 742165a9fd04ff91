"""The run builder follows the memory plan: --dry-run prints it, a plan that does not fit stops before
loading, models load where it says, the generator leaves the GPU before scoring when the two take turns, one
scorer instance serves the main and the cheap pass, and hub failures are one line."""

from __future__ import annotations

import pytest

from t2i_guidance import cli, placement
from t2i_guidance.generator import GenerationSettings, Generator, denoiser_of
from t2i_guidance.memory_plan import Gpu, MemoryPlan
from t2i_guidance.model_sizes import GB
from t2i_guidance.search.run_builder import (
    ModelLoadError,
    RunError,
    RunRequest,
    build_run,
    load_models,
    memory_plan_for,
    plan_run,
)
from tests.search_fixtures import PROMPT, RecordingScorer, world_generator
from tests.tiny_pipelines import TINY_IMAGE_SIZE, build_tiny_pipeline

HOME = "cuda:0"  # what the tests pretend the generator's device is; the spy below moves nothing there


def fake_gpus(monkeypatch, total_gb: int, count: int = 1) -> None:
    monkeypatch.setattr("t2i_guidance.memory_plan.visible_gpus", lambda: [Gpu(total_gb * GB, total_gb * GB)] * count)


def refuse_loading(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(placement, "load_generator", refuse)
    monkeypatch.setattr(placement, "load_scorer", refuse)


# ------------------------------------------------------------------ the plan before loading


def test_dry_run_prints_the_plan_and_its_peak_and_loads_nothing(monkeypatch, capsys, tmp_path):
    fake_gpus(monkeypatch, 24)
    refuse_loading(monkeypatch)
    code = cli.main(["--preset", "sdxl-turbo", "--prompt", "a lighthouse", "--out", str(tmp_path / "run"),
                     "--dry-run"], strategy="best-of-n")
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("memory plan: phases") and "expected peak on cuda:0" in out
    assert not (tmp_path / "run").exists()  # nothing written either


def test_a_plan_that_does_not_fit_is_one_error_line_before_loading(monkeypatch, capsys, tmp_path):
    fake_gpus(monkeypatch, 24)
    refuse_loading(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--preset", "flux-schnell", "--prompt", "a lighthouse", "--out", str(tmp_path / "run")],
                 strategy="best-of-n")
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2
    assert err.startswith("error: memory plan: does not fit:") and "\n" not in err and "23.8 GB" in err


def test_placement_flags_are_checked_before_loading():
    with pytest.raises(RunError, match="--scorer-device"):
        plan_run(RunRequest(scorer_device="gpu1"))
    with pytest.raises(RunError, match="--vllm-memory-share"):
        plan_run(RunRequest(vllm_share=1.5))


def test_device_cpu_plans_the_cpu_and_warns_loudly_for_a_hub_preset(monkeypatch):
    fake_gpus(monkeypatch, 80)
    memory = memory_plan_for(plan_run(RunRequest(preset="sdxl-turbo", device="cpu")))
    assert (memory.generator_device, memory.scorer_device) == ("cpu", "cpu")
    warning = placement.cpu_warnings(memory)
    assert warning.startswith("WARNING:") and "yeeeeeyy/OmniQuality-R" in warning and "\n" not in warning
    embedded = memory_plan_for(plan_run(RunRequest(device="cpu")))  # small models: no warning
    assert placement.cpu_warnings(embedded) is None


# ------------------------------------------------------------------ loading follows the plan


class FakeGenerator:
    def __init__(self, **placed) -> None:
        self.placed = placed
        self.pipeline = MovesRecorder()


class MovesRecorder:
    def __init__(self) -> None:
        self.moves: list[str] = []

    def to(self, device, *args, **kwargs):
        self.moves.append(str(device))
        return self


def record_loads(monkeypatch) -> dict:
    loaded: dict = {}

    def from_pretrained(location, device=None, dtype=None, cpu_offload=False, precision=None):
        loaded["generator"] = {"device": device, "cpu_offload": cpu_offload}
        return FakeGenerator(**loaded["generator"])

    def build_scorer(name, **kwargs):
        loaded["scorer"] = kwargs
        return RecordingScorer()

    monkeypatch.setattr(Generator, "from_pretrained", from_pretrained)
    monkeypatch.setattr(placement.registries, "build_scorer", build_scorer)
    return loaded


def test_models_load_on_the_devices_the_plan_chose(monkeypatch):
    fake_gpus(monkeypatch, 24, count=2)
    loaded = record_loads(monkeypatch)
    plan = plan_run(RunRequest(preset="sdxl-turbo"))
    memory = memory_plan_for(plan)
    assert memory.strategy == "scorer-on-second-gpu"
    generator, _ = load_models(plan, memory)
    assert loaded["generator"] == {"device": "cuda:0", "cpu_offload": False}
    assert loaded["scorer"]["device"] == "cuda:1"
    assert generator.pipeline.moves == []  # each has its own GPU: nothing moves


def test_taking_turns_parks_the_generator_before_the_scorer_loads(monkeypatch):
    fake_gpus(monkeypatch, 24)
    loaded = record_loads(monkeypatch)
    plan = plan_run(RunRequest(preset="sdxl-turbo"))
    generator, _ = load_models(plan)
    assert loaded["generator"]["device"] == "cuda:0" and loaded["scorer"]["device"] == "cuda:0"
    assert generator.pipeline.moves == ["cpu"]


def test_the_users_placement_wins_and_the_vllm_share_reaches_the_scorer(monkeypatch):
    fake_gpus(monkeypatch, 80, count=2)
    loaded = record_loads(monkeypatch)
    monkeypatch.setattr("reward_model.backends.choose_backend_name", lambda requested: "vllm")
    plan = plan_run(RunRequest(preset="sdxl-turbo", scorer_device="cuda:1", vllm_share=0.5))
    memory = memory_plan_for(plan)
    load_models(plan, memory)
    assert memory.vllm_share == 0.5 and loaded["scorer"]["device"] == "cuda:1"
    assert loaded["scorer"]["vllm_share"] == 0.5


def test_a_gated_hub_model_is_one_line_naming_its_licence_page(monkeypatch):
    from huggingface_hub.errors import GatedRepoError

    from tests.test_gpu_readiness import _http_error

    def gated(*args, **kwargs):
        try:
            raise _http_error(GatedRepoError, 401)
        except GatedRepoError as inner:
            raise OSError("Cannot load model") from inner

    monkeypatch.setattr(Generator, "from_pretrained", gated)
    plan = plan_run(RunRequest(preset="flux-schnell"))
    with pytest.raises(ModelLoadError) as failed:
        load_models(plan, MemoryPlan("resident", True, "cpu", "cpu"))
    message = str(failed.value)
    assert "\n" not in message and "https://huggingface.co/black-forest-labs/FLUX.1-schnell" in message


# ------------------------------------------------------------------ taking turns on one GPU, for real


class WhereIsTheGenerator(RecordingScorer):
    """Notes where the generator's pipeline was last sent each time it is asked to judge."""

    def __init__(self, moves: list[str]) -> None:
        super().__init__()
        self.moves = moves
        self.seen: list[str | None] = []

    def score(self, items, prompt, dimensions):
        self.seen.append(self.moves[-1] if self.moves else None)
        return super().score(items, prompt, dimensions)


def spied_generator(pipeline) -> tuple:
    """A CPU generator that believes it lives on HOME; its pipeline's moves are recorded (and stay on the
    CPU), and so is the last move seen by every denoiser evaluation."""
    generator = Generator(pipeline, device="cpu")
    generator.device = HOME
    moves: list[str] = []
    real_to = type(pipeline).to

    def recording_to(device, *args, **kwargs):
        moves.append(str(device))
        return real_to(pipeline, "cpu")

    pipeline.to = recording_to
    at_denoiser: list[str | None] = []
    handle = denoiser_of(pipeline).register_forward_pre_hook(
        lambda module, args: at_denoiser.append(moves[-1] if moves else None))
    return generator, moves, at_denoiser, handle


PHASES = MemoryPlan("phases", True, HOME, HOME, alternate="move-to-cpu")


@pytest.mark.parametrize(("strategy", "options"), [("best-of-n", {"n": 3}), ("particles", {"n": 3, "checkpoints": 1})])
@pytest.mark.parametrize("family", ["world", "sd15"])
def test_the_generator_leaves_its_device_before_every_scoring(strategy, options, family):
    pipeline = world_generator().pipeline if family == "world" else build_tiny_pipeline("sd15")
    generator, moves, at_denoiser, handle = spied_generator(pipeline)
    try:
        scorer = WhereIsTheGenerator(moves)
        plan = plan_run(RunRequest(scorer="oracle", strategy=strategy, strategy_options=options, steps=2))
        run = build_run(plan, generator=generator, scorer=scorer, memory=PHASES)
        size = TINY_IMAGE_SIZE if family == "sd15" else None
        result = run(PROMPT, seed=0, settings=GenerationSettings(num_inference_steps=2, height=size, width=size))
    finally:
        handle.remove()
        del pipeline.to
        denoiser_of(pipeline)._memory_phases = None  # the tiny SD 1.5 is shared with other tests
    assert result.best is not None
    assert scorer.seen and all(where == "cpu" for where in scorer.seen)  # judged with the generator away
    assert at_denoiser and all(where == HOME for where in at_denoiser)  # drew with the generator home
    if strategy == "particles":  # mid-denoising judgements sent it away and the next step brought it back
        assert moves.count("cpu") >= 2


def test_nothing_moves_when_the_plan_keeps_both_resident():
    generator, moves, at_denoiser, handle = spied_generator(world_generator().pipeline)
    try:
        plan = plan_run(RunRequest(scorer="oracle", strategy_options={"n": 2}, steps=2))
        resident = MemoryPlan("resident", True, HOME, HOME)
        build_run(plan, generator=generator, scorer=RecordingScorer(), memory=resident)(PROMPT, seed=0)
    finally:
        handle.remove()
    assert moves == [] and at_denoiser


# ------------------------------------------------------------------ one scorer instance


def test_the_cheap_pass_shares_the_loaded_scorer(monkeypatch):
    from reward_model.scorer import OmniQualityScorer

    backends = []
    monkeypatch.setattr(OmniQualityScorer, "_build_backend",
                        lambda self, *args: backends.append(object()) or backends[-1])
    for strategy, options in (("cascade", {"n": 4, "keep": 2}), ("particles", {"n": 2})):
        backends.clear()
        plan = plan_run(RunRequest(strategy=strategy, strategy_options=options, cheap_scorer_options={"mode": "answer-only"}))
        run = build_run(plan, generator=world_generator(), memory=MemoryPlan("cpu", True, "cpu", "cpu"))
        cheap = run.strategy.cheap_scorer
        assert len(backends) == 1  # one model load for both passes
        assert cheap.backend is run.scorer.backend and cheap.cache is run.scorer.cache
        assert (run.scorer.mode, cheap.mode) == ("reason", "answer-only")
        assert cheap.decoding.max_new_tokens < run.scorer.decoding.max_new_tokens


def test_a_request_mode_twin_keeps_everything_else():
    from reward_model.scorer import OmniQualityScorer

    scorer = OmniQualityScorer.__new__(OmniQualityScorer)
    scorer.model_info = type("Info", (), {"max_new_tokens": 512})()
    scorer._set_request_settings("reason", "sampled", 4, None, 0.7, 0.8, 20, 7)
    twin = scorer.with_settings(mode="prob-weighted", samples=1)
    assert twin.mode == "prob-weighted" and not twin.decoding.do_sample and twin.decoding.seed == 7
    assert scorer.mode == "reason" and scorer.decoding.num_samples == 4
    assert twin.with_settings(mode="reason", samples=4).decoding == scorer.decoding
    with pytest.raises(ValueError, match="model"):
        scorer.with_settings(model="other")

"""Every strategy on the tiny SD3, FLUX and SANA pipelines (flow matching) and two DPM-Solver++ variants:
from Python, the run builder and the command line; the same seed gives the same pictures; a brightness
scorer sends every particle to the brightest prediction; FLUX's packed latents round-trip exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from t2i_guidance import cli
from t2i_guidance.generator import Generator
from t2i_guidance.search import available_strategies, build_strategy
from t2i_guidance.search.denoising_paths import decode_x0
from t2i_guidance.search.packed_latents import pack, packed_initial_noise, spatial_shape, unpack
from t2i_guidance.search.run_builder import RunRequest, build_run, plan_run
from tests.search_families import FAMILY_CASES, ROWS_PER_STEP, SETTINGS, STEPS, family_pipeline
from tests.search_fixtures import PROMPT, RecordingScorer

WEIGHTS = {"technical": 1.0}
OPTIONS = {
    "best-of-n": {"n": 2},
    "refine": {"per_round": 2, "max_rounds": 2, "rewriter": "world"},
    "zero-order": {"n": 2, "neighbours": 1, "rounds": 2},
    "cascade": {"n": 2, "keep": 1},
    "particles": {"n": 3, "checkpoints": 1, "resample_lambda": 8.0},
    "path-search": {"n": 3, "checkpoints": 1, "keep": 1},
}
BATCH_TOLERANCE = 2  # pixel steps a different batch shape may move a value by (float summation order)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def generator_of(case: str) -> Generator:
    return Generator(family_pipeline(case), device="cpu")


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_every_strategy_runs_from_the_run_builder(case, tmp_path):
    assert set(OPTIONS) == set(available_strategies())
    generator = generator_of(case)
    nfes_each = STEPS * ROWS_PER_STEP[case]
    for strategy, options in OPTIONS.items():
        plan = plan_run(RunRequest(preset="embedded", strategy=strategy, strategy_options=options, device="cpu",
                                   weights="technical=1,aesthetic=0,alignment=0", steps=STEPS, height=32, width=32))
        result = build_run(plan, generator=generator, scorer=RecordingScorer())(PROMPT, seed=1)
        assert result.strategy == strategy and result.best is not None, strategy
        assert result.costs.nfes == nfes_each * len(result.candidates), strategy
        if strategy in ("particles", "path-search"):  # judged by the preset's cheap scorer, which may fail
            assert len(result.rounds) == 1 and len(result.rounds[0]["values"]) == 3


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_same_seed_same_pictures_and_the_brightness_scorer_steers_the_particles(case):
    generator = generator_of(case)

    def run(name, **options):
        return build_strategy(name, generator, RecordingScorer(), weights=WEIGHTS, **options)(PROMPT, SETTINGS, seed=0)

    plain = run("best-of-n", n=4)
    sharp = 1e6  # the tiny random models' pictures differ in brightness by thousandths
    steered = run("particles", n=4, checkpoints=1, resample_lambda=sharp, copies="exact")
    record = steered.rounds[0]
    brightest = int(np.argmax(record["values"]))
    assert record["parents"] == [brightest] * 4  # every slot inherits the brightest prediction
    # Exact copies of a deterministic sampler end as the same picture, the brightest particle's own.
    exact = [pixels(c.candidate.image) for c in steered.candidates]
    own = pixels(plain.candidates[brightest].candidate.image)
    assert all(np.abs(f - own).max() <= BATCH_TOLERANCE for f in exact)
    # Re-noised copies diverge; the first copy keeps the parent's path.
    diverse = run("particles", n=4, checkpoints=1, resample_lambda=sharp)
    assert diverse.rounds[0]["renoised"] == [1, 2, 3]
    images = [pixels(c.candidate.image) for c in diverse.candidates]
    assert np.abs(images[0] - own).max() <= BATCH_TOLERANCE
    spread = lambda pictures: max(np.abs(p - pictures[0]).max() for p in pictures[1:])  # noqa: E731
    assert spread(images) > spread(exact)
    again = run("particles", n=4, checkpoints=1, resample_lambda=sharp)
    for a, b in zip(diverse.candidates, again.candidates, strict=True):
        assert (pixels(a.candidate.image) == pixels(b.candidate.image)).all()
    branched = [run("path-search", n=4, checkpoints=1, keep=1) for _ in range(2)]
    assert branched[0].rounds[0]["survivors"] == [brightest]
    for a, b in zip(*(r.candidates for r in branched), strict=True):
        assert (pixels(a.candidate.image) == pixels(b.candidate.image)).all()


@pytest.mark.parametrize("case", ["flux", "sd3"])
def test_zero_order_starts_from_the_noise_the_pipeline_draws(case):
    """Round 0 passes its noises as latents; they are the pipeline's own, so its pictures are best-of-N's."""
    generator = generator_of(case)
    plain = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=2)(PROMPT, SETTINGS, seed=5)
    searched = build_strategy("zero-order", generator, RecordingScorer(), weights=WEIGHTS, n=2, neighbours=1,
                              rounds=2)(PROMPT, SETTINGS, seed=5)
    for a, b in zip(plain.candidates, searched.candidates[:2], strict=True):
        assert (pixels(a.candidate.image) == pixels(b.candidate.image)).all()
    assert searched.candidates[2].candidate.extra["pivot"] == searched.rounds[0]["pivot"]


def test_flux_packing_round_trips_exactly_and_decodes_as_the_pipeline_does():
    pipeline = family_pipeline("flux")
    channels, height, width = spatial_shape(pipeline, 32, 32)
    spatial = torch.randn(3, channels, height, width, generator=torch.Generator().manual_seed(0))
    packed = pack(pipeline, spatial)
    assert packed.shape == (3, height // 2 * width // 2, channels * 4)
    assert torch.equal(unpack(pipeline, packed, 32, 32), spatial)
    assert torch.equal(pack(pipeline, unpack(pipeline, packed, 32, 32)), packed)
    assert packed_initial_noise(pipeline, 7, 32, 32).shape == packed.shape[1:]
    # The final latents decoded through decode_x0 are the pipeline's own output, pixel for pixel.
    generator = torch.Generator().manual_seed(3)
    latents = pipeline(PROMPT, output_type="latent", generator=generator, **SETTINGS.pipeline_kwargs()).images
    shown = pipeline(PROMPT, output_type="pil", generator=torch.Generator().manual_seed(3),
                     **SETTINGS.pipeline_kwargs()).images[0]
    with torch.inference_mode():
        decoded = decode_x0(pipeline, latents, SETTINGS)[0]
    assert (pixels(decoded) == pixels(shown)).all()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    preset = folder / "family.json"
    preset.write_text(json.dumps({"description": "test", "generator": "./sd3", "scorer": "oracle",
                                  "num_inference_steps": STEPS, "guidance_scale": 3.0, "weights": "technical=1"}))
    return folder, preset


@pytest.mark.parametrize("case", FAMILY_CASES)
def test_search_strategies_from_the_command_line(case, saved, tmp_path, capsys):
    folder, preset = saved
    path = folder / case
    if not path.exists():
        family_pipeline(case).save_pretrained(path, safe_serialization=True)
    args = {"particles": ["--n", "3", "--checkpoints", "1", "--potential", "sum"],
            "path-search": ["--n", "3", "--checkpoints", "1", "--keep", "1"],
            "zero-order": ["--n", "2", "--neighbours", "1", "--rounds", "2"],
            "best-of-n": ["--n", "3", "--target", "-1"]}
    for strategy, extra in args.items():
        out = tmp_path / strategy
        code = cli.main(["--strategy", strategy, "--prompt", PROMPT, "--preset", str(preset), "--generator",
                         str(path), "--height", "32", "--width", "32", "--device", "cpu", "--out", str(out),
                         "--quiet", "--json", *extra])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        result = json.loads(captured.out)
        assert result["costs"]["nfes"] == STEPS * ROWS_PER_STEP[case] * len(result["candidates"])
        if strategy == "best-of-n":  # the first candidate passes any target: two are saved
            assert len(result["candidates"]) == 1 and result["costs"]["saved"]["candidates"] == 2
        if strategy == "particles":
            assert result["config"]["potential"] == "sum"

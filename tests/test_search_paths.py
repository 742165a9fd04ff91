"""Search inside the denoising loop (particles, path-search) on the tiny world generator and a tiny SD 1.5:
resampling follows the scores, the ledger is exact, failures are handled, unsupported schedulers refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler

from t2i_guidance.generator import GenerationSettings, Generator
from t2i_guidance.ledger import Budget
from t2i_guidance.search import build_strategy
from t2i_guidance.search.denoising_paths import refuse_unsupported
from t2i_guidance.search.particles import systematic_resample
from t2i_guidance.search.scheduler_hooks import carry_history
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from tests.pixel_scorers import FailingOnSomeScorer, brightness
from tests.search_fixtures import PROMPT, SMALL, FailsOnCallScorer, RecordingScorer, world_generator
from tests.tiny_pipelines import TINY_IMAGE_SIZE, build_tiny_pipeline

WEIGHTS = {"technical": 1.0, "aesthetic": 1.0}
FOUR_STEPS = GenerationSettings(num_inference_steps=4, guidance_scale=3.0)
NFES_EACH = 8.0  # 4 steps x 2 rows (classifier-free guidance)
STRATEGIES = ("particles", "path-search")


@pytest.fixture(scope="module")
def generator():
    return world_generator()


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def run(generator, name, scorer=None, settings=FOUR_STEPS, seed=3, budget=None, **options):
    search = build_strategy(name, generator, scorer or RecordingScorer(), weights=WEIGHTS, **options)
    return search(PROMPT, settings, seed=seed, budget=budget)


@pytest.mark.parametrize("name", STRATEGIES)
def test_the_ledger_counts_every_evaluation_and_every_request_exactly(generator, name):
    result = run(generator, name, n=5, checkpoints=2)
    costs = result.costs
    assert len(result.candidates) == 5 and result.best is not None and result.strategy == name
    assert costs.nfes == 5 * NFES_EACH and costs.candidates == 5
    assert [r["step"] for r in result.rounds] == [0, 2]  # after 4/3 and 8/3 of 4 steps, never the last
    assert costs.by_scorer["intermediate"]["requests"] == 2 * 5 * 2  # checkpoints x particles x dimensions
    assert costs.by_scorer["main"]["requests"] == 5 * 2
    assert costs.scorer_requests == 30
    assert {"generate", "decode_intermediate", "score_intermediate", "score", "total"} <= set(costs.seconds)
    again = run(generator, name, n=5, checkpoints=2)  # same seed: same paths, same pictures, same pick
    assert [r["parents"] for r in again.rounds] == [r["parents"] for r in result.rounds]
    for a, b in zip(result.candidates, again.candidates, strict=True):
        assert (pixels(a.candidate.image) == pixels(b.candidate.image)).all()
    assert again.best.id == result.best.id


@pytest.mark.parametrize("name, options", [("particles", {"resample_lambda": 0.0}), ("path-search", {"checkpoints": 0})])
def test_without_steering_the_population_is_best_of_n(generator, name, options):
    plain = run(generator, "best-of-n", n=4)
    population = run(generator, name, n=4, **options)
    for a, b in zip(plain.candidates, population.candidates, strict=True):
        assert np.abs(pixels(a.candidate.image) - pixels(b.candidate.image)).max() <= 2
    if name == "particles":  # judged at the checkpoint, but uniform weights leave every particle in place
        assert population.rounds[0]["parents"] == [0, 1, 2, 3]


def test_resampling_concentrates_on_the_brightest_particle(generator):
    """The brightness scorer prefers bright pictures: with a sharp lambda every slot inherits the brightest
    prediction, and the final pictures are brighter on average than best-of-N's from the same noises."""
    result = run(generator, "particles", n=6, checkpoints=1, resample_lambda=200.0)
    record = result.rounds[0]
    values, parents = record["values"], record["parents"]
    weights = np.exp(200.0 * (np.array(values) - max(values)))
    weights /= weights.sum()
    for k in range(6):  # systematic resampling: floor or ceil of N * weight copies, each
        assert np.floor(6 * weights[k]) <= parents.count(k) <= np.ceil(6 * weights[k])
        assert record["weights"][f"particle {k}"] == pytest.approx(weights[k])
    brightest = int(np.argmax(values))
    assert parents.count(brightest) == max(parents.count(k) for k in range(6)) >= 3
    assert [c.candidate.extra["particle_origin_seed"] for c in result.candidates] == [3 + p for p in parents]
    sharp = run(generator, "particles", n=6, checkpoints=1, resample_lambda=1e5)
    assert sharp.rounds[0]["parents"] == [brightest] * 6
    plain = run(generator, "best-of-n", n=6)
    mean = lambda r: np.mean([brightness(c.candidate.image) for c in r.candidates])  # noqa: E731
    assert mean(result) > mean(plain)


def test_systematic_resampling_follows_the_weights():
    import torch

    draws = torch.Generator().manual_seed(0)
    assert systematic_resample([1.0, 1.0, 1.0, 1.0], draws) == [0, 1, 2, 3]
    assert systematic_resample([0.0, 1.0, 0.0], draws) == [1, 1, 1]
    picks = systematic_resample([3.0, 1.0, 0.0, 0.0], draws)
    assert picks.count(0) == 3 and picks.count(1) == 1


def test_path_search_keeps_the_best_and_branches_them(generator):
    result = run(generator, "path-search", n=6, checkpoints=1, keep=2)
    record = result.rounds[0]
    values = record["values"]
    best_two = sorted(range(6), key=lambda k: -values[k])[:2]
    assert record["survivors"] == best_two
    assert sorted(record["parents"]) == sorted([best_two[0]] * 3 + [best_two[1]] * 3)
    # A survivor continues its own path undisturbed: its picture is best-of-N's from the same seed.
    plain = run(generator, "best-of-n", n=6)
    for k in best_two:
        assert np.abs(pixels(result.candidates[k].candidate.image) - pixels(plain.candidates[k].candidate.image)).max() <= 2
    # The branches are re-noised with fresh noise: each differs from its survivor.
    for slot, parent in record["branched"].items():
        assert np.abs(pixels(result.candidates[slot].candidate.image) - pixels(result.candidates[parent].candidate.image)).max() > 2


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_scorer_failing_at_a_checkpoint_leaves_the_population_alone_and_is_reported(generator, name):
    failing = FailsOnCallScorer({1})  # the first call is the checkpoint's
    result = run(generator, name, scorer=failing, n=4, checkpoints=1)
    assert result.rounds[0]["parents"] == [0, 1, 2, 3] and result.rounds[0]["values"] == [None] * 4
    event = next(e for e in result.events if e["event"] == "intermediate_score_failed")
    assert event["particles"] == [0, 1, 2, 3] and "verifier service unavailable" in event["errors"][0]
    assert result.best is not None and result.costs.nfes == 4 * NFES_EACH


@pytest.mark.parametrize("name", STRATEGIES)
def test_particles_that_could_not_be_scored_keep_their_slots(generator, name):
    scorer = FailingOnSomeScorer(parse_fail={"x001s001"}, error={"x002s001"}, missing=set())
    result = run(generator, name, scorer=scorer, n=4, checkpoints=1, resample_lambda=200.0) if name == "particles" \
        else run(generator, name, scorer=scorer, n=4, checkpoints=1, keep=1)
    record = result.rounds[0]
    assert record["values"][1] is None and record["values"][2] is None  # never given a number
    assert record["parents"][1] == 1 and record["parents"][2] == 2
    assert {record["parents"][0], record["parents"][3]} <= {0, 3}
    event = next(e for e in result.events if e["event"] == "intermediate_score_failed")
    assert event["particles"] == [1, 2]


def test_a_scorer_failing_on_the_final_pictures_ranks_nothing(generator):
    result = run(generator, "particles", scorer=FailsOnCallScorer({2}), n=3, checkpoints=1)
    assert result.best is None and all(c.aggregate is None for c in result.candidates)
    assert all(not s.ok for c in result.candidates for s in c.scores.values())


@pytest.mark.parametrize("name", STRATEGIES)
def test_budgets_size_the_population(generator, name):
    result = run(generator, name, budget=Budget(nfes=5 * NFES_EACH + 3), checkpoints=1)
    assert len(result.candidates) == 5 and result.costs.nfes == 5 * NFES_EACH
    capped = run(generator, name, n=2, budget=Budget(nfes=100 * NFES_EACH), checkpoints=1)
    assert len(capped.candidates) == 2
    timed = run(generator, name, budget=Budget(seconds=60), checkpoints=1)
    assert 1 <= len(timed.candidates) <= 64 and "probe" in timed.costs.seconds
    assert timed.costs.nfes == pytest.approx(NFES_EACH * len(timed.candidates) + 2)  # + the timed probe's one call


def test_unsupported_schedulers_and_bad_options_are_refused():
    pipeline = WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=SMALL)
    config = pipeline.scheduler.config
    pipeline.scheduler = DPMSolverMultistepScheduler.from_config(config)
    refuse_unsupported(pipeline)  # DPM-Solver++ keeps x0 predictions: supported
    refuse_unsupported(build_tiny_pipeline("sd3"))  # flow matching: supported
    pipeline.scheduler = DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver",
                                                                     final_sigmas_type="sigma_min")
    with pytest.raises(ValueError, match="noise predictions.*dpmsolver\\+\\+"):
        refuse_unsupported(pipeline)
    pipeline.scheduler = HeunDiscreteScheduler.from_config(config)
    with pytest.raises(ValueError, match="2 denoiser calls per step"):
        refuse_unsupported(pipeline)
    generator = world_generator()
    for options in ({"n": 0}, {"checkpoints": -1}, {"resample_lambda": float("nan")}):
        with pytest.raises(ValueError):
            build_strategy("particles", generator, RecordingScorer(), **options)
    with pytest.raises(ValueError, match="keep"):
        build_strategy("path-search", generator, RecordingScorer(), keep=0)


@pytest.mark.parametrize("name", STRATEGIES)
def test_on_a_tiny_stable_diffusion_the_predictions_go_through_the_vae(name):
    sd = Generator(build_tiny_pipeline("sd15"), device="cpu")
    settings = GenerationSettings(num_inference_steps=3, guidance_scale=5.0, height=TINY_IMAGE_SIZE,
                                  width=TINY_IMAGE_SIZE)
    options = {"resample_lambda": 200.0} if name == "particles" else {"keep": 1}
    result = build_strategy(name, sd, RecordingScorer(), weights=WEIGHTS, n=3, checkpoints=1, **options)(
        PROMPT, settings, seed=0)
    assert result.costs.nfes == 3 * 3 * 2 and result.costs.by_scorer["intermediate"]["requests"] == 3 * 2
    assert all(c.candidate.image.size == (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE) for c in result.candidates)
    values = result.rounds[0]["values"]
    assert all(v is not None for v in values)
    assert set(result.rounds[0]["parents"]) == {int(np.argmax(values))} or name == "path-search"
    assert "scheduler" not in vars(sd.pipeline.scheduler) and "step" not in vars(sd.pipeline.scheduler)


@pytest.mark.parametrize("potential", ["current", "max", "difference", "sum"])
def test_the_potential_weighs_each_particles_path_of_scores(generator, potential):
    result = run(generator, "particles", n=4, checkpoints=2, resample_lambda=1.0, potential=potential)
    first, second = result.rounds
    assert first["potentials"] == {f"particle {k}": v for k, v in enumerate(first["values"])}  # no history yet
    for k, now in enumerate(second["values"]):
        before = first["values"][first["parents"][k]]  # the score of this slot's path at the first checkpoint
        expected = {"current": now, "max": max(before, now), "difference": now - before, "sum": before + now}
        assert second["potentials"][f"particle {k}"] == pytest.approx(expected[potential])
    assert result.config["potential"] == potential
    with pytest.raises(ValueError, match="unknown potential"):
        build_strategy("particles", generator, RecordingScorer(), potential="product")


def test_a_multistep_solvers_history_follows_each_copied_particle():
    scheduler = DPMSolverMultistepScheduler()
    scheduler.set_timesteps(4)
    history = [torch.randn(3, 2), torch.randn(3, 2)]
    scheduler.model_outputs = list(history) + [None]
    carry_history(scheduler, [2, 2, 0], population=3)
    assert torch.equal(scheduler.model_outputs[0], history[0][[2, 2, 0]])
    assert torch.equal(scheduler.model_outputs[1], history[1][[2, 2, 0]]) and scheduler.model_outputs[2] is None

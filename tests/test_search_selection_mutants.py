"""The strategies' selection on its own, without drawing a picture: which candidates a cascade passes on,
which particles FK resampling copies, which paths path search keeps and branches, and the options each
refuses. The candidates' pictures and scores are made up; the selection code is the real one."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import pytest
import torch
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate, GenerationSettings, candidate_id
from t2i_guidance.ledger import Budget
from t2i_guidance.search.cascade import Cascade
from t2i_guidance.search.denoising_paths import Checkpoint
from t2i_guidance.search.particles import ParticleResampling, systematic_resample
from t2i_guidance.search.path_search import PathSearch
from tests.search_fixtures import world_generator

SETTINGS = GenerationSettings(num_inference_steps=2, guidance_scale=3.0)
WEIGHTS = {"technical": 1.0, "aesthetic": 1.0}


class FakeGenerator:
    """Candidate k: seed + k, a 2x2 picture; no model runs. Keeps the prompt, settings and progress asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def generate(self, prompts, seeds, settings, batch_size=None, progress=False, first_index=0, latents=None):
        self.calls.append((prompts, settings, progress))
        return [Candidate(candidate_id(first_index + i), first_index + i, seed, "p",
                          Image.new("RGB", (2, 2), (first_index + i,) * 3), {}, nfes=4.0)
                for i, seed in enumerate(seeds)]


class TableScorer:
    """Fixed scores by candidate id and dimension (None: that one fails); counts requests per call."""

    def __init__(self, name: str, table: dict[str, dict[str, float | None]], tokens: int = 0,
                 cached: bool = False, seconds: float = 0.0) -> None:
        self.name, self.table, self.tokens, self.cached, self.seconds = name, table, tokens, cached, seconds
        self.calls: list[tuple[list[str], list[str]]] = []
        self.prompts: list[str] = []

    def score(self, items, prompt, dimensions):
        time.sleep(self.seconds)
        self.prompts.append(prompt)
        self.calls.append(([item.id for item in items], list(dimensions)))
        return {item.id: {d: self.one(d, self.table[item.id].get(d)) for d in dimensions} for item in items}

    def one(self, dimension: str, value: float | None) -> DimensionScore:
        if value is None:
            return DimensionScore.failure(dimension, ScoreStatus.PARSE_FAILURE, "unreadable")
        return DimensionScore(dimension, ScoreStatus.OK, value, generated_tokens=self.tokens, cached=self.cached)


def table(values: list[float | None], dimensions=("technical", "aesthetic")) -> dict:
    return {candidate_id(k): {d: v for d in dimensions} for k, v in enumerate(values)}


# ---------------------------------------------------------------- cascade


def run_cascade(cheap: TableScorer, main: TableScorer, **options):
    search = Cascade(FakeGenerator(), main, cheap_scorer=cheap, weights=WEIGHTS, **options)
    return search("p", SETTINGS)


def test_the_cascade_passes_the_cheap_passs_best_to_the_main_scorer(monkeypatch):
    cheap = TableScorer("cheap", table([1.0, 4.0, 2.0, 4.0, 3.0]))
    main = TableScorer("main", table([5.0, 1.0, 5.0, 2.0, 3.0]), tokens=10)
    result = run_cascade(cheap, main, n=5, keep=3)
    # the best three by the cheap pass, a tie broken by index: 1 and 3 (4.0), then 4 (3.0)
    assert main.calls == [([candidate_id(1), candidate_id(3), candidate_id(4)], ["technical", "aesthetic"])]
    by_index = {c.candidate.index: c for c in result.candidates}
    assert [k for k, c in by_index.items() if c.candidate.extra.get("pruned")] == [0, 2]
    assert by_index[0].aggregate is None and by_index[0].lcb is None and by_index[0].scores["technical"].score == 1.0
    assert by_index[4].aggregate == 3.0 and by_index[3].aggregate == 2.0  # the main scorer's judgement
    assert [c.candidate.extra["cheap_value"] for c in result.candidates] == [1.0, 4.0, 2.0, 4.0, 3.0]
    assert [c.candidate.index for c in result.ranking] == [4, 3, 1]
    costs = result.costs
    assert costs.by_scorer["cheap"]["requests"] == 10 and costs.by_scorer["main"]["requests"] == 6
    assert costs.saved["scorer_requests"] == 10 - (10 + 6)
    assert costs.saved["generated_tokens_estimate"] == 10 * (10 - (10 + 6))
    assert "score_cheap" in costs.seconds and "score" in costs.seconds


def test_the_cascade_hands_on_prompt_settings_budget_and_progress(monkeypatch):
    import t2i_guidance.search.base as base

    shown = []
    real = base.score_candidates
    monkeypatch.setattr(base, "score_candidates", lambda *args: (shown.append(args[-1]), real(*args))[1])
    cheap = TableScorer("cheap", table([1.0, 2.0, 3.0]), seconds=0.05)
    main = TableScorer("main", table([1.0, 2.0, 3.0]))
    generator = FakeGenerator()
    search = Cascade(generator, main, cheap_scorer=cheap, weights=WEIGHTS, n=None, keep=1)
    result = search("a red circle", SETTINGS, budget=Budget(nfes=12), progress=True)
    assert len(result.candidates) == 3  # what 12 NFEs afford at 4 each (unbudgeted: 8)
    assert {call[:3:2] for call in generator.calls} == {("a red circle", True)}
    assert all(call[1] is SETTINGS for call in generator.calls)
    assert set(cheap.prompts + main.prompts) == {"a red circle"} and len(main.prompts) == 1
    assert shown == [True] * (len(cheap.calls) + 1)  # every pass shows its bar
    # the cheap pass's time is its own stage, not the main pass's
    assert result.costs.seconds["score_cheap"] >= 0.05


def test_the_cheap_pass_weighs_its_dimensions_as_the_run_does():
    cheap = TableScorer("cheap", {candidate_id(0): {"technical": 2.0, "aesthetic": 2.0},
                                  candidate_id(1): {"technical": 3.0, "aesthetic": 0.0}})
    main = TableScorer("main", table([3.0, 3.0]))
    search = Cascade(FakeGenerator(), main, cheap_scorer=cheap, weights={"technical": 3.0, "aesthetic": 1.0}, n=2,
                     keep=1)
    result = search("p", SETTINGS)
    assert [c.candidate.extra["cheap_value"] for c in result.candidates] == [2.0, 2.25]  # (3*3 + 0) / 4
    assert main.calls[0][0] == [candidate_id(1)]


def test_the_cheap_pass_weighs_only_its_own_dimensions_and_unweighted_ones_count_fully():
    cheap = TableScorer("cheap", {candidate_id(0): {"technical": 5.0, "aesthetic": 1.0},
                                  candidate_id(1): {"technical": 2.0, "aesthetic": 3.0},
                                  candidate_id(2): {"technical": 1.0, "aesthetic": 2.5}})
    main = TableScorer("main", table([3.0, 3.0, 3.0]))
    search = Cascade(FakeGenerator(), main, cheap_scorer=cheap, weights={"technical": 0.0, "aesthetic": 1.0},
                     cheap_dimensions=["technical", "aesthetic"], n=3, keep=1)
    result = search("p", SETTINGS)
    # technical has weight 0 in the run, yet the cheap pass weighs it 1: (5 + 1) / 2 is best
    assert [c.candidate.extra["cheap_value"] for c in result.candidates] == [3.0, 2.5, 1.75]
    assert main.calls == [([candidate_id(0)], ["aesthetic"])]
    assert cheap.calls == [([candidate_id(k) for k in range(3)], ["technical", "aesthetic"])]


def test_candidates_the_cheap_pass_could_not_score_are_pruned_first():
    cheap = TableScorer("cheap", table([None, 1.0, None]))
    main = TableScorer("main", table([5.0, 2.0, 5.0]))
    result = run_cascade(cheap, main, n=3, keep=2)
    assert main.calls[0][0] == [candidate_id(1)] and [c.candidate.index for c in result.ranking] == [1]
    assert result.events == []


def test_a_cheap_pass_that_scores_nothing_sends_every_candidate_on_and_says_so():
    cheap = TableScorer("cheap", table([None, None, None]))
    main = TableScorer("main", table([1.0, 3.0, 2.0]))
    result = run_cascade(cheap, main, n=3, keep=1)
    assert main.calls[0][0] == [candidate_id(k) for k in range(3)]
    assert [c.candidate.index for c in result.ranking] == [1, 2, 0]
    assert result.events == [{"event": "cheap_pass_failed", "detail": "no candidate could be scored by the cheap "
                              "pass; every candidate went to the main scorer"}]


def test_the_same_scorer_on_fewer_dimensions_saves_the_requests_it_does_not_repeat():
    scorer = TableScorer("both", table([1.0, 2.0, 3.0, 4.0]))
    result = run_cascade(scorer, scorer, n=4, keep=1, cheap_dimensions=["aesthetic"])
    assert scorer.calls[1] == ([candidate_id(3)], ["technical", "aesthetic"])
    assert result.costs.saved["scorer_requests"] == 4 * 2 - (4 * 1 + 1 * 1)
    assert result.costs.saved["generated_tokens_estimate"] == 0.0  # the main pass generated no tokens


def test_no_token_saving_is_estimated_when_the_main_pass_made_no_request():
    cheap = TableScorer("cheap", table([1.0, 2.0]))
    main = TableScorer("main", table([1.0, 2.0]), cached=True)  # every answer from a cache
    result = run_cascade(cheap, main, n=2, keep=1)
    assert result.costs.by_scorer["main"]["requests"] == 0
    assert "generated_tokens_estimate" not in result.costs.saved and result.costs.saved["scorer_requests"] == -2


def test_a_cascades_options_and_refusals():
    cheap, main = TableScorer("cheap", {}), TableScorer("main", {})
    search = Cascade(FakeGenerator(), main, cheap_scorer=cheap, weights=WEIGHTS)
    assert (search.keep, search.n, search.cheap_dimensions) == (2, 8, ["technical", "aesthetic"])
    assert search.options() == {"keep": 2, "cheap_scorer": "cheap", "cheap_dimensions": ["technical", "aesthetic"],
                                **search.__class__.__mro__[1].options(search)}
    assert search.options()["n"] == 8
    assert Cascade(FakeGenerator(), main, cheap_scorer=cheap, keep=1).keep == 1
    with pytest.raises(ValueError) as refused:
        Cascade(FakeGenerator(), main, cheap_scorer=cheap, keep=0)
    assert str(refused.value) == "keep must be at least 1"
    with pytest.raises(ValueError) as refused:
        Cascade(FakeGenerator(), main)
    assert str(refused.value) == "a cascade needs a cheap scorer"
    assert Cascade(FakeGenerator(), main, cheap_scorer=object()).options()["cheap_scorer"] == "?"


# ---------------------------------------------------------------- checkpoints


@dataclass
class MarkedCheckpoint(Checkpoint):
    """Re-noising adds 1000 to the x0 it is given, so a branch shows whose prediction it came from."""

    renoised: list[torch.Tensor] = field(default_factory=list)

    def renoise(self, x0: torch.Tensor) -> torch.Tensor:
        self.renoised.append(x0.clone())
        return x0 + 1000


def checkpoint(values: list[float | None], history=None, seed: int = 0) -> MarkedCheckpoint:
    """Particle k's latents are k, its x0 prediction 100 + k."""
    slots = torch.arange(len(values), dtype=torch.float).reshape(-1, 1)
    return MarkedCheckpoint(step=1, timestep=torch.tensor(500), latents=slots.clone(), x0=slots + 100,
                            values=values, generator=torch.Generator().manual_seed(seed), history=history or [])


@pytest.fixture(scope="module")
def generator():
    return world_generator()


# ---------------------------------------------------------------- path search


def test_path_search_keeps_the_best_in_their_slots_and_shares_the_rest_out_best_first(generator):
    point = checkpoint([1.0, 5.0, 3.0, 5.0, 2.0, 0.0, 4.0])
    latents, parents, notes = PathSearch(generator, None, keep=3).update(point)
    assert notes["survivors"] == [1, 3, 6]  # a tie broken by the lower slot
    # 7 slots for 3 survivors: 3, 2 and 2 (the remainder to the best); the free slots in order
    assert notes["branched"] == {0: 1, 2: 1, 4: 3, 5: 6}
    assert parents == [1, 1, 1, 3, 3, 6, 6]
    assert latents.flatten().tolist() == [1101.0, 1.0, 1101.0, 3.0, 1103.0, 1106.0, 6.0]
    assert point.latents.flatten().tolist() == list(range(7))  # the checkpoint's own latents untouched


def test_path_search_leaves_unscored_particles_alone(generator):
    point = checkpoint([None, 2.0, 1.0, None, 3.0])
    latents, parents, notes = PathSearch(generator, None, keep=1).update(point)
    assert notes == {"survivors": [4], "branched": {1: 4, 2: 4}}
    assert parents == [0, 4, 4, 3, 4] and latents.flatten().tolist() == [0.0, 1104.0, 1104.0, 3.0, 4.0]


def test_path_search_keeping_everyone_branches_nothing(generator):
    point = checkpoint([1.0, 2.0])
    latents, parents, notes = PathSearch(generator, None, keep=3).update(point)
    assert notes == {"survivors": [1, 0], "branched": {}} and parents == [0, 1]
    assert latents.flatten().tolist() == [0.0, 1.0] and point.renoised == []


@pytest.mark.parametrize("strategy", [PathSearch, ParticleResampling])
def test_a_denoising_strategy_takes_its_scorer_size_checkpoints_and_weights(generator, strategy):
    scorer = TableScorer("main", {})
    search = strategy(generator, scorer)
    assert search.scorer is scorer and search.cheap_scorer is scorer
    given = strategy(generator, scorer, n=5, checkpoints=2, weights={"aesthetic": 1.0})
    assert (given.n, given.checkpoints, given.dimensions) == (5, 2, ["aesthetic"])


def test_path_search_options_and_refusals(generator):
    search = PathSearch(generator, TableScorer("main", {}))
    assert search.keep == 2 and search.options()["keep"] == 2 and search.options()["checkpoints"] == 3
    for keep in (0, 1.5, "2"):
        with pytest.raises(ValueError) as refused:
            PathSearch(generator, None, keep=keep)
        assert str(refused.value) == f"keep must be a whole number of at least 1, got {keep!r}"
    PathSearch.check_options({"keep": 1})
    with pytest.raises(ValueError, match="n must be"):
        PathSearch.check_options({"n": 0, "keep": 1})


# ---------------------------------------------------------------- particles


def test_systematic_resampling_is_one_draw_spread_evenly(monkeypatch):
    def resample(weights: list[float], draw: float) -> list[int]:  # the offset is draw / len(weights)
        monkeypatch.setattr(torch, "rand", lambda *args, generator=None: torch.tensor(draw))
        return systematic_resample(weights, torch.Generator())

    assert resample([1.0, 1.0, 2.0], 0.0) == [0, 1, 2]
    assert resample([1.0, 1.0, 2.0], 0.99) == [1, 2, 2]
    assert resample([2.0, 0.0, 0.0, 2.0], 0.5) == [0, 0, 3, 3]
    assert resample([0.0, 0.0, 1.0], 0.3) == [2, 2, 2]
    assert resample([5.0], 0.7) == [0]


def test_a_particle_of_weight_zero_is_never_drawn(monkeypatch):
    monkeypatch.setattr(torch, "rand", lambda *args, generator=None: torch.tensor(0.0))  # the lowest draw
    assert systematic_resample([0.0, 1.0], torch.Generator()) == [1, 1]
    assert systematic_resample([0.0, 1.0, 0.0, 1.0], torch.Generator()) == [1, 1, 3, 3]


def test_systematic_resampling_draws_from_the_generator_it_is_given():
    def picks(seed: int) -> tuple[int, ...]:
        torch.manual_seed(0)  # the global generator in the same state every time: it must not matter
        return tuple(systematic_resample([1.0, 1.0, 1.0, 0.5], torch.Generator().manual_seed(seed)))

    assert len({picks(seed) for seed in range(20)}) > 1  # the offset is random, drawn from the run's generator


def test_particles_resample_with_the_checkpoints_generator(generator):
    search = ParticleResampling(generator, None, resample_lambda=1.0, copies="exact")

    def parents(seed: int) -> tuple[int, ...]:
        torch.manual_seed(0)
        return tuple(search.update(checkpoint([1.0, 1.0, 1.0, 0.5], seed=seed))[1])

    assert len({parents(seed) for seed in range(20)}) > 1


def expected_weights(potentials: list[float], lam: float) -> list[float]:
    exps = [math.exp(lam * p) for p in potentials]
    return [e / sum(exps) for e in exps]


@pytest.mark.parametrize(("potential", "expected"), [
    ("current", [2.0, 1.0, 3.0]), ("max", [4.0, 1.0, 3.0]), ("difference", [-2.0, 1.0, 2.0]),
    ("sum", [6.0, 1.0, 4.0])])
def test_particles_are_weighed_by_the_softmax_of_their_potential(generator, potential, expected):
    history = [[4.0], [], [1.0]]  # particle 1 has no earlier value: its difference is its value
    point = checkpoint([2.0, 1.0, 3.0], history=history)
    _, parents, notes = ParticleResampling(generator, None, resample_lambda=0.5, potential=potential).update(point)
    assert notes["potentials"] == {f"particle {k}": v for k, v in enumerate(expected)}
    weights = expected_weights(expected, 0.5)
    assert notes["weights"] == {f"particle {k}": pytest.approx(w) for k, w in enumerate(weights)}
    assert len(parents) == 3


def test_a_large_lambda_copies_the_best_particle_and_renoises_every_copy_after_the_first(generator):
    point = checkpoint([1.0, 900.0, 2.0, None])
    latents, parents, notes = ParticleResampling(generator, None, resample_lambda=50.0).update(point)
    assert parents == [1, 1, 1, 3]  # the unscored particle keeps its slot
    assert notes["renoised"] == [1, 2] and notes["weights"]["particle 1"] == 1.0
    # slot 0 keeps particle 1's latents; slots 1 and 2 are its x0, re-noised (no overflow at exp(50 * 899))
    assert latents.flatten().tolist() == [1.0, 1101.0, 1101.0, 3.0]
    assert [x.flatten().tolist() for x in point.renoised] == [[101.0, 101.0]]


def test_exact_copies_are_not_renoised(generator):
    point = checkpoint([1.0, 900.0])
    latents, parents, notes = ParticleResampling(generator, None, resample_lambda=50.0, copies="exact").update(point)
    assert parents == [1, 1] and latents.flatten().tolist() == [1.0, 1.0] and notes["renoised"] == []
    assert point.renoised == []


def test_without_steering_every_particle_keeps_its_slot(generator):
    point = checkpoint([1.0, 5.0, 3.0])
    latents, parents, notes = ParticleResampling(generator, None, resample_lambda=0.0).update(point)
    assert parents == [0, 1, 2] and latents.flatten().tolist() == [0.0, 1.0, 2.0] and notes["renoised"] == []


def test_particle_options_and_refusals(generator):
    search = ParticleResampling(generator, TableScorer("main", {}))
    assert (search.resample_lambda, search.potential, search.copies) == (4.0, "current", "renoise")
    assert {k: search.options()[k] for k in ("resample_lambda", "potential", "copies", "n")} == {
        "resample_lambda": 4.0, "potential": "current", "copies": "renoise", "n": None}
    ParticleResampling.check_options({"resample_lambda": 0, "potential": "sum", "copies": "exact"})
    for options, message in (
        ({"resample_lambda": -0.5}, "resample_lambda must be a finite number >= 0, got -0.5"),
        ({"resample_lambda": math.inf}, "resample_lambda must be a finite number >= 0, got inf"),
        ({"resample_lambda": "4"}, "resample_lambda must be a finite number >= 0, got '4'"),
        ({"potential": "mean"}, "unknown potential 'mean'; choose from current, max, difference, sum"),
        ({"copies": "clone"}, "unknown copies 'clone'; choose from renoise, exact"),
    ):
        with pytest.raises(ValueError) as refused:
            ParticleResampling(generator, None, **options)
        assert str(refused.value) == message
    with pytest.raises(ValueError, match="n must be"):
        ParticleResampling.check_options({"n": 0})

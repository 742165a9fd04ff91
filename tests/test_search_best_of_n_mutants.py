"""Best-of-N's loop on its own, without drawing a picture: which seeds it draws in which batches, what a
budget affords, when the stopping rule ends it and what that saved, and its options. The generator makes
2x2 pictures and the scorer returns fixed scores by candidate id; the loop and the selection are real."""

from __future__ import annotations

import pytest
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate, GenerationSettings, candidate_id
from t2i_guidance.ledger import Budget
from t2i_guidance.search.base import BestOfN

SETTINGS = GenerationSettings(num_inference_steps=2, guidance_scale=3.0)
WEIGHTS = {"technical": 1.0}


class FakeGenerator:
    """Candidate k (4 NFEs): its seed, a 2x2 picture. Keeps every call's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def generate(self, prompts, seeds, settings, batch_size=None, progress=False, first_index=0, latents=None):
        self.calls.append({"prompts": prompts, "seeds": list(seeds), "settings": settings, "progress": progress,
                           "first_index": first_index, "batch_size": batch_size})
        return [Candidate(candidate_id(first_index + i), first_index + i, seed, prompts,
                          Image.new("RGB", (2, 2)), {}, nfes=4.0) for i, seed in enumerate(seeds)]


class TableScorer:
    """values[k] for candidate k on every dimension (None: that candidate fails); keeps the prompts."""

    name = "table"

    def __init__(self, values: list[float | None]) -> None:
        self.values = values
        self.prompts: list[str] = []

    def score(self, items, prompt, dimensions):
        self.prompts.append(prompt)
        return {item.id: {d: self.one(d, self.values[int(item.id[1:])]) for d in dimensions} for item in items}

    @staticmethod
    def one(dimension: str, value: float | None) -> DimensionScore:
        if value is None:
            return DimensionScore.failure(dimension, ScoreStatus.PARSE_FAILURE, "unreadable")
        return DimensionScore(dimension, ScoreStatus.OK, value)


class RecordingBar:
    """tqdm's stand-in (a real bar on stderr hangs the forked test runs of mutation testing)."""

    made: list[dict] = []

    def __init__(self, **options) -> None:
        type(self).made.append(options)

    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def recorded_bars(monkeypatch):
    monkeypatch.setattr("t2i_guidance.search.base.tqdm", RecordingBar)
    monkeypatch.setattr(RecordingBar, "made", [])
    return RecordingBar.made


def run(values, budget=None, seed=0, progress=False, **options):
    generator = FakeGenerator()
    scorer = TableScorer(values)
    result = BestOfN(generator, scorer, weights=WEIGHTS, **options)("a red circle", SETTINGS, seed=seed,
                                                                     budget=budget, progress=progress)
    return result, generator, scorer


def drawn(generator: FakeGenerator) -> list[tuple[int, list[int]]]:
    return [(call["first_index"], call["seeds"]) for call in generator.calls]


def test_n_candidates_from_consecutive_seeds_in_one_call_ranked_best_first(recorded_bars):
    result, generator, scorer = run([2.0, 5.0, 3.0], seed=100, n=3, progress=True)
    assert [bar["disable"] for bar in recorded_bars] == [False]  # the scoring shows its bar too
    assert drawn(generator) == [(0, [100, 101, 102])]
    call = generator.calls[0]
    assert call["prompts"] == "a red circle" and call["settings"] is SETTINGS and call["progress"] is True
    assert scorer.prompts == ["a red circle"]
    assert [c.candidate.index for c in result.ranking] == [1, 2, 0]
    assert result.events == [] and "stopped" not in result.config
    assert result.costs.candidates == 3 and result.costs.nfes == 12.0


def test_without_n_or_a_budget_eight_are_drawn():
    result, generator, _ = run([1.0] * 8, n=None)
    assert drawn(generator) == [(0, list(range(8)))] and len(result.candidates) == 8


def test_without_n_a_budget_alone_bounds_the_run():
    result, generator, _ = run([1.0] * 10, budget=Budget(nfes=40), n=None)
    assert drawn(generator) == [(0, [0]), (1, list(range(1, 10)))]  # ten, more than the unbudgeted eight


def test_a_batch_size_draws_in_batches_of_that_many():
    _, generator, _ = run([1.0] * 5, n=5, batch_size=2)
    assert drawn(generator) == [(0, [0, 1]), (2, [2, 3]), (4, [4])]
    assert {call["batch_size"] for call in generator.calls} == {2}


def test_under_a_budget_one_candidate_measures_the_cost_then_the_rest_fit():
    result, generator, _ = run([1.0] * 3, budget=Budget(nfes=12), n=None)
    assert drawn(generator) == [(0, [0]), (1, [1, 2])]  # 4 NFEs each: 12 afford three
    assert result.events == [] and len(result.candidates) == 3
    _, generator, _ = run([1.0] * 5, budget=Budget(nfes=100), n=3)
    assert drawn(generator) == [(0, [0]), (1, [1, 2])]  # n bounds a generous budget
    _, generator, _ = run([1.0] * 5, budget=Budget(nfes=10), n=None)
    assert drawn(generator) == [(0, [0]), (1, [1])]  # 10 afford two; the third would not fit


def test_a_batch_size_under_a_budget_draws_in_batches_after_the_first():
    _, generator, _ = run([1.0] * 6, budget=Budget(nfes=20), n=None, batch_size=2)
    assert drawn(generator) == [(0, [0]), (1, [1, 2]), (3, [3, 4])]


def test_a_budget_below_one_candidate_still_makes_one_and_says_so():
    result, generator, _ = run([1.0] * 3, budget=Budget(nfes=2), n=None)
    assert drawn(generator) == [(0, [0])]
    assert result.events == [{"event": "over_budget",
                              "detail": "the budget is below one candidate's cost; one was made"}]
    result, _, _ = run([1.0] * 3, budget=Budget(nfes=4), n=None)
    assert result.events == []  # exactly one candidate's cost is within the budget


def test_a_seconds_budget_is_not_over_in_nfes():
    result, generator, _ = run([1.0] * 3, budget=Budget(seconds=3600), n=3)
    assert drawn(generator) == [(0, [0]), (1, [1, 2])] and result.events == []


def test_the_target_stops_the_run_one_candidate_at_a_time_and_books_the_saving():
    result, generator, _ = run([2.0, 4.0, 5.0, 5.0], n=4, target=3.5)
    assert drawn(generator) == [(0, [0]), (1, [1])]
    assert result.config["stopped"] == "target" and result.config["target"] == 3.5
    assert result.costs.saved == {"candidates": 2, "nfes": 8.0}


def test_the_target_reached_by_the_last_candidate_stopped_nothing():
    result, generator, _ = run([2.0, 1.0, 4.0], n=3, target=3.5)
    assert drawn(generator) == [(0, [0]), (1, [1]), (2, [2])]
    assert result.config["stopped"] is None and result.costs.saved == {}


def test_the_stopping_rule_looks_after_each_batch_when_one_is_set():
    result, generator, _ = run([1.0, 4.0, 1.0, 1.0, 1.0], n=5, target=3.5, batch_size=2)
    assert drawn(generator) == [(0, [0, 1])] and result.config["stopped"] == "target"
    assert result.costs.saved == {"candidates": 3, "nfes": 12.0}


def test_failed_candidates_do_not_count_towards_the_target():
    result, generator, _ = run([None, 1.0, 4.0, 1.0], n=4, target=3.5)
    assert drawn(generator) == [(0, [0]), (1, [1]), (2, [2])] and result.config["stopped"] == "target"


def test_a_small_expected_gain_stops_the_run():
    result, generator, _ = run([3.0] * 8, n=8, min_gain=0.01)
    assert result.config["stopped"] == "small_gain" and len(generator.calls) < 8
    assert result.costs.saved["candidates"] == 8 - len(generator.calls)
    result, generator, _ = run([1.0, 4.0, 2.0, 4.5, 1.5, 3.0], n=6, min_gain=0.01)
    assert result.config["stopped"] is None and len(generator.calls) == 6  # a spread that may still pay


def test_the_expected_gain_looks_at_the_next_batch_as_it_will_be_drawn():
    # Four scores whose expected gain is 0.078 for one more candidate and 0.151 for two.
    scores = [1.0, 4.0, 2.0, 3.0]
    result, generator, _ = run([*scores, 1.0, 1.0], n=6, min_gain=0.1, batch_size=2)
    assert drawn(generator) == [(0, [0, 1]), (2, [2, 3]), (4, [4, 5])]  # two more may gain 0.151: go on
    result, generator, _ = run([*scores, 1.0], n=5, min_gain=0.1, batch_size=2)
    assert drawn(generator) == [(0, [0, 1]), (2, [2, 3])]  # only one is left: 0.078, stop
    assert result.config["stopped"] == "small_gain" and result.costs.saved == {"candidates": 1, "nfes": 4.0}


def test_the_saving_under_a_budget_counts_only_what_it_would_have_afforded():
    result, _, _ = run([4.0] * 8, budget=Budget(nfes=12), n=8, target=3.5)
    assert result.config["stopped"] == "target" and result.costs.saved == {"candidates": 2, "nfes": 8.0}


def test_best_of_ns_options_and_refusals():
    search = BestOfN(FakeGenerator(), TableScorer([]), weights=WEIGHTS, batch_size=3)
    assert search.n == 8 and search.batch_size == 3 and search.weights == WEIGHTS
    assert search.options() == {"n": 8, "target": None, "min_gain": None, "batch_size": 3, "selection": "mean",
                                "lcb_lambda": None}
    assert not search.stop.active
    tuned = BestOfN(FakeGenerator(), TableScorer([]), n=None, target=4.0, min_gain=0.1)
    assert (tuned.n, tuned.stop.target, tuned.stop.min_gain) == (None, 4.0, 0.1)
    assert BestOfN(FakeGenerator(), TableScorer([]), n=1).n == 1
    with pytest.raises(ValueError) as refused:
        BestOfN(FakeGenerator(), TableScorer([]), n=0)
    assert str(refused.value) == "n must be at least 1"

"""What every strategy shares, checked on its own with a fake generator and scorer: the constructor's
checks, the options that reach result.json, selection by mean or lower confidence bound, what a budget
affords, what stopping early saved, and the one-line failure a broken scorer leaves per candidate."""

from __future__ import annotations

import pytest
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate, GenerationSettings, candidate_id
from t2i_guidance.ledger import Budget, CostLedger
from t2i_guidance.search.base import Found, Search, candidates_at_most, score_candidates, strategy_parameters

SETTINGS = GenerationSettings(num_inference_steps=2, guidance_scale=3.0)


def candidate(k: int, nfes: float = 4.0, level: int = 0) -> Candidate:
    image = Image.new("RGB", (4, 4), (level, level, level))
    return Candidate(candidate_id(k), k, 100 + k, "p", image, {}, nfes=nfes)


class FakeGenerator:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def generate(self, prompts, seeds, settings, batch_size=None, progress=False, first_index=0, latents=None):
        self.calls.append({"prompts": prompts, "seeds": list(seeds), "batch_size": batch_size, "settings": settings,
                           "progress": progress,
                           "first_index": first_index, "latents": latents})
        return [candidate(first_index + i, level=10 * (first_index + i)) for i in range(len(seeds))]


class TableScorer:
    """Fixed (mean, std) per candidate id on every dimension asked; records the calls."""

    name = "table"

    def __init__(self, stats: dict[str, tuple[float, float]]) -> None:
        self.stats = stats
        self.calls: list[tuple[list[str], str, list[str]]] = []

    def score(self, items, prompt, dimensions):
        self.calls.append(([item.id for item in items], prompt, list(dimensions)))
        return {item.id: {d: DimensionScore(d, ScoreStatus.OK, self.stats[item.id][0], std=self.stats[item.id][1],
                                            generated_tokens=3) for d in dimensions} for item in items}


class DrawAll(Search):
    name = "draw-all"

    def __init__(self, generator, scorer, n: int = 3, **common) -> None:
        super().__init__(generator, scorer, **common)
        self.n = n

    def search(self, prompt, settings, seed, budget, ledger, progress):
        n = self.affordable(ledger, budget, self.n, 4.0)
        drawn = self.generate(ledger, prompt, [seed + k for k in range(n)], settings, 0, progress=progress)
        return Found(self.score(ledger, drawn, prompt), rounds=[{"round": 0}], config={"stopped": None})


class FakeLedger(CostLedger):
    """A ledger whose clock says what the test wants."""

    def __init__(self, nfes=0.0, candidates=0, elapsed=0.0) -> None:
        super().__init__(nfes=nfes, candidates=candidates)
        self._elapsed = elapsed

    def elapsed(self) -> float:
        return self._elapsed


STATS = {"c000": (2.0, 0.0), "c001": (4.0, 3.0), "c002": (3.0, 0.5)}


def test_the_constructor_refuses_unknown_selections_and_empty_batches():
    with pytest.raises(ValueError, match="unknown selection 'median'; choose from mean, lcb"):
        Search(FakeGenerator(), TableScorer({}), selection="median")
    for bad in (0, -1):
        with pytest.raises(ValueError) as info:
            Search(FakeGenerator(), TableScorer({}), batch_size=bad)
        assert str(info.value) == "batch size must be at least 1"
    assert Search(FakeGenerator(), TableScorer({}), batch_size=1).batch_size == 1


def test_default_weights_score_every_dimension_and_zero_weights_drop_one():
    assert Search(FakeGenerator(), TableScorer({})).dimensions == ["technical", "aesthetic", "alignment"]
    search = Search(FakeGenerator(), TableScorer({}), weights={"technical": 1.0, "aesthetic": 0.0, "alignment": 2.0})
    assert search.dimensions == ["technical", "alignment"] and search.weights["alignment"] == 2.0


def test_a_run_records_its_settings_and_ranks_by_mean():
    generator, scorer = FakeGenerator(), TableScorer(STATS)
    run = DrawAll(generator, scorer, batch_size=2, score_chunk_size=2)
    result = run("a prompt", SETTINGS, seed=7, budget=Budget(nfes=100))
    assert generator.calls[0]["seeds"] == [7, 8, 9] and generator.calls[0]["batch_size"] == 2
    assert [ids for ids, _, _ in scorer.calls] == [["c000", "c001"], ["c002"]]  # chunks of score_chunk_size
    assert all(prompt == "a prompt" for _, prompt, _ in scorer.calls)
    assert result.best.id == "c001" and result.selection == "mean"
    assert result.config["seed"] == 7 and result.config["budget"] == {"nfes": 100, "seconds": None}
    assert result.config["settings"] == vars(SETTINGS) and result.config["stopped"] is None
    assert result.config["batch_size"] == 2 and result.config["selection"] == "mean"
    assert result.config["lcb_lambda"] is None  # only the lcb rule has a lambda
    assert result.rounds == [{"round": 0}] and result.costs.nfes == 12.0 and result.costs.candidates == 3
    assert DrawAll(FakeGenerator(), TableScorer(STATS))("p", SETTINGS).config["budget"] is None


def test_the_lcb_rule_ranks_by_mean_minus_lambda_std():
    result = DrawAll(FakeGenerator(), TableScorer(STATS), selection="lcb", lcb_lambda=0.5)("p", SETTINGS)
    assert result.best.id == "c002"  # 3 - 0.25 beats 4 - 1.5 and 2 - 0
    by_id = {c.id: c for c in result.candidates}
    assert by_id["c001"].lcb == pytest.approx(2.5) and by_id["c002"].lcb == pytest.approx(2.75)
    assert by_id["c001"].scores["technical"].score == 4.0 and by_id["c001"].scores["technical"].std == 3.0
    assert result.config["selection"] == "lcb" and result.config["lcb_lambda"] == 0.5
    plain = DrawAll(FakeGenerator(), TableScorer(STATS))("p", SETTINGS)
    assert all(c.lcb is None for c in plain.candidates)
    by_default = {c.id: c.lcb for c in DrawAll(FakeGenerator(), TableScorer(STATS), selection="lcb")("p", SETTINGS).candidates}
    assert by_default == {"c000": 2.0, "c001": 1.0, "c002": 2.5}  # lambda 1 by default


def test_generated_candidates_carry_the_extra_and_are_counted():
    generator, ledger = FakeGenerator(), CostLedger()
    search = Search(generator, TableScorer({}))
    drawn = search.generate(ledger, ["p1", "p2"], [5, 6], SETTINGS, first_index=4, extra={"round": 2})
    assert [c.index for c in drawn] == [4, 5] and all(c.extra == {"round": 2} for c in drawn)
    assert generator.calls[0]["first_index"] == 4 and generator.calls[0]["prompts"] == ["p1", "p2"]
    assert ledger.nfes == 8.0 and ledger.candidates == 2 and "generate" in ledger.seconds
    assert all(c.extra == {} for c in search.generate(ledger, "p", [1], SETTINGS, first_index=0))


def test_scoring_with_another_scorer_and_role_is_booked_under_that_role():
    main, cheap = TableScorer(STATS), TableScorer(STATS)
    search = Search(FakeGenerator(), main, weights={"technical": 1.0, "aesthetic": 1.0})
    ledger = CostLedger()
    scored = search.score(ledger, [candidate(0), candidate(1)], "p", scorer=cheap, dimensions=["aesthetic", "technical"],
                          role="cheap")
    assert main.calls == [] and cheap.calls == [(["c000", "c001"], "p", ["aesthetic", "technical"])]
    assert [s.aggregate for s in scored] == [2.0, 4.0]
    assert "score_cheap" in ledger.seconds and "score" not in ledger.seconds
    assert ledger.by_scorer["cheap"]["requests"] == 4 and ledger.by_scorer["cheap"]["generated_tokens"] == 12
    search.score(ledger, [candidate(2)], "p")
    assert main.calls == [(["c002"], "p", ["technical", "aesthetic"])] and "score" in ledger.seconds
    assert ledger.by_scorer["main"]["requests"] == 2


def test_a_scorer_failure_is_one_line_per_candidate_naming_the_scorer_and_the_error():
    class Raising(TableScorer):
        def score(self, items, prompt, dimensions):
            raise TimeoutError("no answer in 30 s")

    class Forgetful(TableScorer):
        def score(self, items, prompt, dimensions):
            return {}

    table = score_candidates(Raising({}), [candidate(0)], "p", ["technical"])
    assert table["c000"]["technical"].error == "scorer table failed: TimeoutError: no answer in 30 s"
    table = score_candidates(Forgetful({}), [candidate(0)], "p", ["technical", "alignment"])
    assert [s.error for s in table["c000"].values()] == ["scorer table returned no result"] * 2
    assert [s.dimension for s in table["c000"].values()] == ["technical", "alignment"]


def test_a_partial_answer_fails_only_the_dimensions_left_out():
    class HalfScorer(TableScorer):
        def score(self, items, prompt, dimensions):
            return {item.id: {"technical": DimensionScore("technical", ScoreStatus.OK, 3.0)} for item in items}

    table = score_candidates(HalfScorer({}), [candidate(0)], "p", ["technical", "aesthetic"])
    assert table["c000"]["technical"].score == 3.0
    assert table["c000"]["aesthetic"].status is ScoreStatus.ERROR and table["c000"]["aesthetic"].score is None


def test_the_best_is_the_highest_value_ties_to_the_lower_index_unscored_never():
    search = Search(FakeGenerator(), TableScorer({}), weights={"technical": 1.0})
    ok = lambda value: {"technical": DimensionScore("technical", ScoreStatus.OK, value)}  # noqa: E731
    failed = {"technical": DimensionScore.failure("technical", ScoreStatus.ERROR, "down")}
    a, b, c, d = (search.judge(candidate(k), s) for k, s in enumerate([ok(3.0), ok(4.0), ok(4.0), failed]))
    assert search.best_of([d, c, a, b]) is b and search.best_of([a]) is a
    assert search.best_of([d]) is None and search.best_of([]) is None
    assert search.improves(b, a) and not search.improves(a, b) and not search.improves(c, b)  # a tie is no gain
    assert search.improves(a, None) and not search.improves(None, a) and not search.improves(None, None)


def test_without_a_budget_everything_wanted_is_drawn():
    search = Search(FakeGenerator(), TableScorer({}))
    assert search.draw_now(FakeLedger(), None, 5, None) == 5
    assert search.draw_now(FakeLedger(), Budget(), 5, None) == 5  # a budget with no limit
    assert search.draw_now(FakeLedger(nfes=1e6), None, 5, 4.0) == 5
    assert search.affordable(FakeLedger(nfes=1e6), Budget(), 5, 4.0) == 5


def test_under_a_budget_one_candidate_first_then_what_the_budget_affords():
    search = Search(FakeGenerator(), TableScorer({}))
    assert search.draw_now(FakeLedger(), Budget(nfes=100), 5, None) == 1  # its cost is not known yet
    assert search.draw_now(FakeLedger(), Budget(seconds=60), 5, None) == 1
    assert search.draw_now(FakeLedger(nfes=4.0), Budget(nfes=16), 5, 4.0) == 3  # 12 left, 4 each
    assert search.affordable(FakeLedger(nfes=4.0), Budget(nfes=15.9), 5, 4.0) == 2
    assert search.affordable(FakeLedger(nfes=0.0), Budget(nfes=12), 2, 4.0) == 2  # never more than wanted
    # exact arithmetic that floats get wrong by a hair still affords the last candidate
    assert search.affordable(FakeLedger(nfes=0.7), Budget(nfes=1.0), 5, 0.1) == 3
    assert search.affordable(FakeLedger(nfes=20.0), Budget(nfes=16), 5, 4.0) == 0  # overspent: none, not negative
    assert search.affordable(FakeLedger(nfes=4.0), Budget(nfes=16), 5, 0.0) == 5  # free candidates: no nfe limit


def test_a_time_budget_affords_what_the_time_left_pays_for_at_the_measured_rate():
    search = Search(FakeGenerator(), TableScorer({}))
    ledger = FakeLedger(nfes=8.0, candidates=2, elapsed=10.0)  # 5 s a candidate so far
    assert search.affordable(ledger, Budget(seconds=30), 10, 4.0) == 4
    assert search.affordable(ledger, Budget(seconds=29), 10, 4.0) == 3
    assert search.affordable(ledger, Budget(seconds=30), 2, 4.0) == 2
    assert search.affordable(ledger, Budget(seconds=5), 10, 4.0) == 0
    assert search.affordable(ledger, Budget(seconds=30, nfes=16), 10, 4.0) == 2  # whichever runs out first
    assert search.affordable(FakeLedger(elapsed=10.0), Budget(seconds=30), 10, 4.0) == 10  # no rate measured yet


def test_stopping_early_records_what_a_fixed_run_would_still_have_spent():
    search = Search(FakeGenerator(), TableScorer({}))
    ledger = FakeLedger(nfes=8.0)
    search.record_saving(ledger, None, 3, 4.0)
    assert ledger.saved == {"candidates": 3, "nfes": 12.0}
    capped = FakeLedger(nfes=8.0)
    search.record_saving(capped, Budget(nfes=16), 3, 4.0)  # the budget would have paid for 2 more only
    assert capped.saved == {"candidates": 2, "nfes": 8.0}


def test_strategy_parameters_are_the_named_options_nearest_declaration_first():
    class Base:
        def __init__(self, generator, scorer, n: int = 4, selection: str = "mean", **common):
            pass

    class Child(Base):
        def __init__(self, generator, scorer, *extra, n: int = 8, rounds: int = 2, **common):
            super().__init__(generator, scorer, n=n, **common)

    class Grandchild(Child):  # no constructor of its own
        pass

    parameters = strategy_parameters(Grandchild)
    assert list(parameters) == ["n", "rounds", "selection"]
    assert parameters["n"].default == 8
    assert candidates_at_most(Grandchild, {}) == 8 and candidates_at_most(Grandchild, {"n": 3}) == 3
    assert candidates_at_most(Base, {}) == 4


def test_candidates_at_most_asks_the_strategy_rule():
    class Rounds(Search):
        def __init__(self, generator, scorer, n: int = 2, rounds: int = 3, required=None, **common):
            super().__init__(generator, scorer, **common)

        @staticmethod
        def most_candidates(options):
            return options["n"] * options["rounds"]

    assert candidates_at_most(Rounds, {}) == 6 and candidates_at_most(Rounds, {"rounds": 5}) == 10
    assert candidates_at_most(DrawAll, {}) == 3 and candidates_at_most(DrawAll, {"n": 9}) == 9
    assert "required" in strategy_parameters(Rounds) and "batch_size" in strategy_parameters(Rounds)
    assert Search.most_candidates({"rounds": 2}) is None


def test_with_the_lcb_rule_the_best_is_the_highest_bound_not_the_highest_mean():
    search = Search(FakeGenerator(), TableScorer({}), weights={"technical": 1.0}, selection="lcb", lcb_lambda=1.0)
    noisy = search.judge(candidate(0), {"technical": DimensionScore("technical", ScoreStatus.OK, 4.0, std=2.0)})
    steady = search.judge(candidate(1), {"technical": DimensionScore("technical", ScoreStatus.OK, 3.0, std=0.1)})
    assert search.value(noisy) == pytest.approx(2.0) and search.best_of([noisy, steady]) is steady
    assert search.improves(steady, noisy) and not search.improves(noisy, steady)


def test_a_run_hands_its_settings_budget_and_progress_to_the_search_and_times_the_ranking():
    generator = FakeGenerator()
    result = DrawAll(generator, TableScorer(STATS))("p", SETTINGS, budget=Budget(nfes=8))
    assert generator.calls[0]["seeds"] == [0, 1]  # seed 0 by default; the budget affords two
    assert generator.calls[0]["settings"] is SETTINGS and generator.calls[0]["progress"] is False
    assert {"generate", "score", "rank", "total"} <= set(result.costs.seconds)
    DrawAll(generator, TableScorer(STATS))("p", SETTINGS, progress=True)
    assert generator.calls[1]["progress"] is True and generator.calls[1]["seeds"] == [0, 1, 2]


def test_the_result_carries_the_strategy_name_weights_selection_and_events():
    class WithEvents(DrawAll):
        def search(self, prompt, settings, seed, budget, ledger, progress):
            found = super().search(prompt, settings, seed, budget, ledger, progress)
            found.events.append({"event": "stopped early"})
            return found

    weights = {"technical": 2.0, "aesthetic": 1.0}
    result = WithEvents(FakeGenerator(), TableScorer(STATS), weights=weights, selection="lcb")("p", SETTINGS)
    assert result.prompt == "p" and result.strategy == "draw-all" and result.weights == weights and result.selection == "lcb"
    assert result.events == [{"event": "stopped early"}]


def test_generation_passes_settings_latents_and_progress_through():
    generator, latents = FakeGenerator(), ["latent"]
    Search(generator, TableScorer({})).generate(CostLedger(), "p", [1], SETTINGS, 0, latents=latents)
    assert generator.calls[0]["settings"] is SETTINGS and generator.calls[0]["latents"] is latents
    assert generator.calls[0]["progress"] is False
    Search(generator, TableScorer({})).generate(CostLedger(), "p", [1], SETTINGS, 0, progress=True)
    assert generator.calls[1]["progress"] is True and generator.calls[1]["latents"] is None


class RecordingBar:
    """tqdm's stand-in: keeps how each bar was made, updated and closed (a real bar on stderr hangs the
    forked test processes of a mutation run)."""

    made: list[dict] = []

    def __init__(self, **options) -> None:
        self.options, self.updates, self.closed = options, [], False
        type(self).made.append(self)

    def update(self, count: int) -> None:
        self.updates.append(count)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def recorded_bars(monkeypatch):
    monkeypatch.setattr("t2i_guidance.search.base.tqdm", RecordingBar)
    monkeypatch.setattr(RecordingBar, "made", [])
    return RecordingBar.made


def test_scoring_shows_a_progress_bar_only_when_asked(recorded_bars):
    search = Search(FakeGenerator(), TableScorer(STATS), weights={"technical": 1.0})
    search.score(CostLedger(), [candidate(0)], "p")
    search.score(CostLedger(), [candidate(0), candidate(1)], "p", progress=True)
    score_candidates(TableScorer(STATS), [candidate(k) for k in range(3)], "p", ["technical"], chunk_size=2)
    assert [bar.options for bar in recorded_bars] == [
        {"total": 1, "desc": "score", "unit": "img", "disable": True},
        {"total": 2, "desc": "score", "unit": "img", "disable": False},
        {"total": 3, "desc": "score", "unit": "img", "disable": True}]
    assert [bar.updates for bar in recorded_bars] == [[1], [2], [2, 1]]  # one step per chunk of images
    assert all(bar.closed for bar in recorded_bars)


def test_scores_are_asked_for_16_images_at_a_time_by_default():
    scorer = TableScorer({candidate_id(k): (1.0, 0.0) for k in range(17)})
    score_candidates(scorer, [candidate(k) for k in range(17)], "p", ["technical"])
    assert [len(ids) for ids, _, _ in scorer.calls] == [16, 1]
    scorer.calls.clear()
    Search(FakeGenerator(), scorer, weights={"technical": 1.0}).score(CostLedger(), [candidate(k) for k in range(17)], "p")
    assert [len(ids) for ids, _, _ in scorer.calls] == [16, 1]

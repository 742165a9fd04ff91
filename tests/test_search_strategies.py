"""Every strategy from Python on a tiny world generator: budgets, rounds, noise, cascades, selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2i_guidance.ledger import Budget, parse_budget
from t2i_guidance.registries import build_scorer
from t2i_guidance.search import available_strategies, build_strategy
from t2i_guidance.search.base import SearchStrategy
from t2i_guidance.search.noise_search import neighbour
from tests.search_fixtures import (
    NFES_EACH,
    PROMPT,
    SETTINGS,
    FailsOnCallScorer,
    FirstCallWinsScorer,
    RecordingScorer,
    SampledScorer,
    world_generator,
)

WEIGHTS = {"technical": 1.0, "aesthetic": 1.0}


@pytest.fixture(scope="module")
def generator():
    return world_generator()


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_every_registered_strategy_runs_and_fills_the_ledger(generator):
    options = {"cascade": {"cheap_scorer": RecordingScorer(), "n": 4, "keep": 2}, "best-of-n": {"n": 4},
               "refine": {"per_round": 2, "max_rounds": 2}, "zero-order": {"n": 2, "neighbours": 2, "rounds": 2}}
    assert set(options) <= set(available_strategies())
    for name in available_strategies():
        search = build_strategy(name, generator, RecordingScorer(), weights=WEIGHTS, **options.get(name, {}))
        assert isinstance(search, SearchStrategy)
        result = search(PROMPT, SETTINGS, seed=3)
        assert result.strategy == name and result.best is not None
        costs = result.costs
        assert costs.nfes == pytest.approx(NFES_EACH * len(result.candidates))
        assert costs.candidates == len(result.candidates) and costs.scorer_requests > 0
        assert {"generate", "total"} <= set(costs.seconds)


def test_budget_in_nfes_sets_n_and_keeps_the_images_of_plain_best_of_n(generator):
    scorer = RecordingScorer()
    limited = build_strategy("best-of-n", generator, scorer, weights=WEIGHTS, n=None)(
        PROMPT, SETTINGS, seed=0, budget=Budget(nfes=5 * NFES_EACH + 1))
    plain = build_strategy("best-of-n", generator, scorer, weights=WEIGHTS, n=5)(PROMPT, SETTINGS, seed=0)
    assert len(limited.candidates) == 5 and limited.costs.nfes <= 5 * NFES_EACH + 1
    for a, b in zip(limited.candidates, plain.candidates, strict=True):
        assert a.candidate.seed == b.candidate.seed
        assert np.abs(pixels(a.candidate.image) - pixels(b.candidate.image)).max() <= 2  # batching rounds
    assert limited.best.id == plain.best.id


def test_budget_parsing():
    assert parse_budget("320") == Budget(nfes=320) and parse_budget("320nfe") == Budget(nfes=320)
    assert parse_budget("30s") == Budget(seconds=30)
    for bad in ("", "-3", "0", "ten", "5 minutes"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def test_seconds_budget_stops_a_long_run(generator):
    result = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=200, batch_size=2)(
        PROMPT, SETTINGS, budget=Budget(seconds=0.5))
    assert 1 <= len(result.candidates) < 200


# ---------------------------------------------------------------- refinement


def test_refinement_judges_the_original_prompt_and_picks_the_best_of_all_rounds(generator):
    scorer = FirstCallWinsScorer()
    search = build_strategy("refine", generator, scorer, weights=WEIGHTS, per_round=2, max_rounds=3, patience=5)
    result = search(PROMPT, SETTINGS, seed=0)
    assert len(result.rounds) == 3
    assert set(scorer.prompts) == {PROMPT}  # every call, every round: the ORIGINAL prompt
    drawn = [r["prompt"] for r in result.rounds]
    assert drawn[0] == PROMPT and len(set(drawn)) == 3  # later rounds drew rewrites
    # The best is from round 0 although later rounds ran: the pick is over all rounds, not the last.
    assert result.best.candidate.extra["round"] == 0
    assert result.best.aggregate == max(c.aggregate for c in result.candidates)
    # Seeds continue across rounds, so round 0 is best-of-N's first candidates.
    assert [c.candidate.seed for c in result.candidates] == list(range(6))


def test_refinement_stops_after_rounds_without_gain_and_at_the_target(generator):
    result = build_strategy("refine", generator, FirstCallWinsScorer(), weights=WEIGHTS, per_round=2,
                            max_rounds=6, patience=2)(PROMPT, SETTINGS)
    assert len(result.rounds) == 3 and result.config["stopped"] == "no_gain"
    result = build_strategy("refine", generator, FirstCallWinsScorer(), weights=WEIGHTS, per_round=2,
                            max_rounds=6, target=0.5)(PROMPT, SETTINGS)
    assert len(result.rounds) == 1 and result.config["stopped"] == "target"


def test_refinement_spends_at_most_its_nfe_budget(generator):
    result = build_strategy("refine", generator, RecordingScorer(), weights=WEIGHTS, per_round=3,
                            max_rounds=10, patience=10)(PROMPT, SETTINGS, budget=Budget(nfes=7 * NFES_EACH))
    assert len(result.candidates) == 7 and result.config["stopped"] == "budget"
    assert [len(r["candidates"]) for r in result.rounds] == [3, 3, 1]


def test_refinement_with_fixed_seeds_redraws_round_0s_seeds_and_by_default_draws_fresh_ones(generator):
    from t2i_guidance.search.rewriting import Rewrite

    same = Misbehaving(Rewrite(prompt=PROMPT))  # "rewrites" to the original: only the seeds could differ
    options = {"rewriter": same, "per_round": 2, "max_rounds": 3, "patience": 5}
    fixed = build_strategy("refine", generator, RecordingScorer(), weights=WEIGHTS, round_seeds="fixed",
                           **options)(PROMPT, SETTINGS, seed=7)
    assert [r["seeds"] for r in fixed.rounds] == [[7, 8]] * 3 and fixed.config["round_seeds"] == "fixed"
    by_round = [[c for c in fixed.candidates if c.candidate.extra["round"] == k] for k in range(3)]
    for later in by_round[1:]:  # same prompt, same seeds: the same pictures
        for a, b in zip(by_round[0], later, strict=True):
            assert np.array_equal(pixels(a.candidate.image), pixels(b.candidate.image))
    assert len({c.id for c in fixed.candidates}) == 6  # still six distinct candidates in the result
    fresh = build_strategy("refine", generator, RecordingScorer(), weights=WEIGHTS, **options)(
        PROMPT, SETTINGS, seed=7)
    assert [r["seeds"] for r in fresh.rounds] == [[7, 8], [9, 10], [11, 12]]
    # A rejected rewrite under fixed seeds redraws with fresh seeds (the same ones would repeat the pictures).
    rejected = build_strategy("refine", generator, RecordingScorer(), weights=WEIGHTS, round_seeds="fixed",
                              **{**options, "rewriter": Misbehaving(None)})(PROMPT, SETTINGS, seed=7)
    assert [r["seeds"] for r in rejected.rounds] == [[7, 8], [9, 10], [11, 12]]


class Misbehaving:
    name = "misbehaving"

    def __init__(self, output):
        self.output, self.seen = output, []

    def rewrite(self, request):
        self.seen.append(request)
        if isinstance(self.output, Exception):
            raise self.output
        return self.output


@pytest.mark.parametrize(
    "output, reason",
    [
        (None, "returned nothing"),
        ("   ", "returned nothing"),
        ("a red circle above a small blue square on a white background " * 40, "runaway"),
        ("a majestic dragon over the sea", "leaves the caption grammar"),
        ("a red circle above a blue square on a white background", "drops size blue small"),
        ("a red circle below a small blue square on a white background", "drops relation"),
        (RuntimeError("model crashed"), "the rewriter failed: RuntimeError: model crashed"),
    ],
)
def test_a_misbehaving_rewriter_is_rejected_logged_and_the_run_goes_on(generator, output, reason):
    from t2i_guidance.search.rewriting import Rewrite

    proposal = Rewrite(prompt=output) if isinstance(output, str) else output
    rewriter = Misbehaving(proposal)
    result = build_strategy("refine", generator, RecordingScorer(), weights=WEIGHTS, rewriter=rewriter,
                            per_round=2, max_rounds=3, patience=5)(PROMPT, SETTINGS)
    assert len(result.rounds) == 3 and len(result.candidates) == 6
    rejected = [e for e in result.events if e["event"] == "rewrite_rejected"]
    assert len(rejected) == 2 and all(reason in e["reason"] for e in rejected), rejected
    # A rejected proposal redraws the best prompt so far (here the original) with fresh seeds.
    assert {r["prompt"] for r in result.rounds} == {PROMPT}
    request = rewriter.seen[0]
    assert request.original_prompt == PROMPT and request.best and request.best[0].rationales


def test_a_scorer_failing_mid_round_loses_only_that_chunk(generator):
    scorer = FailsOnCallScorer(failing_calls={2})
    result = build_strategy("refine", generator, scorer, weights=WEIGHTS, per_round=2, max_rounds=3,
                            patience=5)(PROMPT, SETTINGS)
    round1 = set(result.rounds[1]["candidates"])
    for c in result.candidates:
        if c.id in round1:
            assert c.aggregate is None and c.rank is None
            assert all(s.status == "error" and "verifier service unavailable" in s.error for s in c.scores.values())
        else:
            assert c.aggregate is not None
    assert result.best is not None and result.best.id not in round1 and len(result.rounds) == 3


def test_world_rewriter_is_deterministic_in_grammar_and_keeps_every_element():
    from t2i_guidance.search.rewriting import CandidateFeedback, RewriteRequest
    from t2i_guidance.world.rewriter import WorldRewriter, check_rewrite

    unmet = ("Seen: ... Unmet: the prompt asks for the red circle above the small blue square but it is not; "
             "the prompt asks for a white background but it is gray.")
    feedback = [CandidateFeedback("c000", PROMPT, 2.0, {"alignment": 2.0}, {"alignment": unmet})]
    request = RewriteRequest(PROMPT, PROMPT, feedback, history=[], guidance_scale=3.0)
    first = WorldRewriter().rewrite(request)
    assert first == WorldRewriter().rewrite(request)
    assert check_rewrite(PROMPT, first, world_grammar=True) is None
    # The relation and the background were named as unmet: the rewrite changes how both are said.
    assert first.prompt.startswith("on a white background") and "small blue square" in first.prompt.split(",")[1][:25]
    history = [{"round": 0, "prompt": PROMPT, "best_value": 2.0}, {"round": 1, "prompt": first.prompt, "best_value": 2.0}]
    second = WorldRewriter().rewrite(RewriteRequest(PROMPT, first.prompt, feedback, history, guidance_scale=3.0))
    assert second.prompt not in {PROMPT, first.prompt} and check_rewrite(PROMPT, second, True) is None
    assert second.guidance_scale == 3.0  # no gain in the last round: new wording, the same guidance


def test_check_rewrite_outside_the_world_keeps_every_content_word():
    from t2i_guidance.search.rewriting import Rewrite, check_rewrite

    original = "a portrait of an astronaut riding a horse"
    assert check_rewrite(original, Rewrite("a detailed portrait of an astronaut riding a brown horse"), False) is None
    assert "horse" in check_rewrite(original, Rewrite("a portrait of an astronaut"), False)


# ---------------------------------------------------------------- noise search


def test_initial_noise_reproduces_the_seeded_candidate(generator):
    seeded = generator.generate(PROMPT, [4], SETTINGS)[0]
    explicit = generator.generate(PROMPT, [4], SETTINGS, latents=[generator.initial_noise(4, SETTINGS)])[0]
    assert np.array_equal(pixels(seeded.image), pixels(explicit.image))


def test_zero_order_searches_around_the_best_noise_and_reproduces(generator):
    search = build_strategy("zero-order", generator, RecordingScorer(), weights=WEIGHTS, n=3, neighbours=2,
                            rounds=3, patience=5, step_size=0.3)
    result = search(PROMPT, SETTINGS, seed=1)
    assert [len(r["candidates"]) for r in result.rounds] == [3, 2, 2]
    by_id = {c.id: c for c in result.candidates}
    round0_best = max(result.rounds[0]["candidates"], key=lambda i: (by_id[i].aggregate, -by_id[i].candidate.index))
    for c in result.candidates:
        if c.candidate.extra["round"] == 1:
            assert c.candidate.extra["pivot"] == round0_best
    # The neighbour's image is the one its noise draws.
    c = by_id[result.rounds[1]["candidates"][0]]
    pivot = by_id[round0_best].candidate
    noise = neighbour(generator.initial_noise(pivot.seed, SETTINGS), generator.initial_noise(c.candidate.seed, SETTINGS), 0.3)
    redrawn = generator.generate(PROMPT, [c.candidate.seed], SETTINGS, latents=[noise])[0]
    assert np.abs(pixels(redrawn.image) - pixels(c.candidate.image)).max() <= 2  # batch of 2 vs alone
    assert torch.std(noise).item() == pytest.approx(1.0, abs=0.15)
    again = search(PROMPT, SETTINGS, seed=1)
    assert [c.id for c in again.ranking] == [c.id for c in result.ranking]


# ---------------------------------------------------------------- cascade


def test_cascade_prunes_to_keep_before_the_expensive_scorer_and_counts_the_saving(generator):
    cheap, expensive = RecordingScorer(), RecordingScorer()
    result = build_strategy("cascade", generator, expensive, weights=WEIGHTS, cheap_scorer=cheap, n=6, keep=2)(
        PROMPT, SETTINGS)
    survivors = [c for c in result.candidates if not c.candidate.extra.get("pruned")]
    assert len(survivors) == 2 and expensive.calls == 1 and cheap.calls == 1
    cheap_values = sorted((c.candidate.extra["cheap_value"] for c in result.candidates), reverse=True)
    assert sorted(c.candidate.extra["cheap_value"] for c in survivors) == sorted(cheap_values[:2])
    assert {c.id for c in result.ranking} == {c.id for c in survivors}
    costs = result.costs
    assert costs.by_scorer["cheap"]["requests"] == 12 and costs.by_scorer["main"]["requests"] == 4
    # A separate cheap pass on every dimension makes more requests than best-of-N (12 + 4 vs 12); what it
    # saves is the expensive ones, which the ledger shows apart.
    assert costs.saved["scorer_requests"] == 12 - (12 + 4)
    assert result.to_dict()["pareto_front"] and set(result.to_dict()["pareto_front"]) <= {c.id for c in survivors}


def test_cascade_on_fewer_dimensions_saves_requests_and_survives_a_failing_cheap_pass(generator):
    scorer = RecordingScorer()
    result = build_strategy("cascade", generator, scorer, weights=WEIGHTS, cheap_scorer=scorer,
                            cheap_dimensions=["aesthetic"], n=6, keep=2)(PROMPT, SETTINGS)
    assert result.costs.saved["scorer_requests"] == 6 * 2 - (6 + 2)
    failing = FailsOnCallScorer(failing_calls={1})
    result = build_strategy("cascade", generator, RecordingScorer(), weights=WEIGHTS, cheap_scorer=failing,
                            n=3, keep=1)(PROMPT, SETTINGS)
    assert [e["event"] for e in result.events] == ["cheap_pass_failed"] and len(result.ranking) == 3


# ---------------------------------------------------------------- selection


def test_lower_confidence_bound_prefers_the_reliable_candidate(generator):
    stats = {"c000": (4.0, 2.0), "c001": (3.5, 0.1), "c002": (1.0, 0.0)}
    for selection, expected in (("mean", "c000"), ("lcb", "c001")):
        result = build_strategy("best-of-n", generator, SampledScorer(stats), weights=WEIGHTS, n=3,
                                selection=selection, lcb_lambda=1.0)(PROMPT, SETTINGS)
        assert result.best.id == expected and result.to_dict()["selection"] == selection
    assert result.best.lcb == pytest.approx(3.4)


def test_pareto_front_over_the_dimensions():
    from PIL import Image

    from reward_model.interface import DimensionScore
    from t2i_guidance.generator import Candidate
    from t2i_guidance.result import ScoredCandidate, pareto_front

    def scored(i, tech, aes, ali):
        values = {"technical": tech, "aesthetic": aes, "alignment": ali}
        scores = {d: DimensionScore(d, "ok", v) for d, v in values.items()}
        return ScoredCandidate(Candidate(f"c{i}", i, i, "p", Image.new("RGB", (2, 2)), {}, 1.0), scores, 1.0)

    candidates = [scored(0, 5, 1, 1), scored(1, 1, 5, 1), scored(2, 1, 1, 1), scored(3, 4, 4, 4), scored(4, 3, 3, 3)]
    weights = {"technical": 1, "aesthetic": 1, "alignment": 1}
    assert pareto_front(candidates, weights) == ["c0", "c1", "c3"]
    candidates[3].aggregate = None  # not ranked (failed or pruned): not on the front
    assert pareto_front(candidates, weights) == ["c0", "c1", "c4"]


def test_oracle_guided_refinement_on_a_world_prompt_keeps_its_rounds_in_grammar(generator):
    result = build_strategy("refine", generator, build_scorer("oracle"), weights={"alignment": 1.0},
                            per_round=2, max_rounds=3, patience=5)(PROMPT, SETTINGS)
    from t2i_guidance.world.captions import parse_prompt

    for r in result.rounds:
        parse_prompt(r["prompt"])
    assert not result.events


def test_the_cheap_pass_uses_the_mode_its_preset_names_and_answer_only_otherwise():
    from t2i_guidance.search.run_builder import RunRequest, plan_run

    # The tiny scorer cannot answer without reasoning first, so the embedded preset names prob-weighted.
    for strategy in ("cascade", "particles", "path-search"):
        assert plan_run(RunRequest(preset="embedded", strategy=strategy)).cheap[1]["mode"] == "prob-weighted"
    plan = plan_run(RunRequest(preset="sdxl-turbo", strategy="cascade"))
    assert plan.cheap[1]["mode"] == "answer-only"
    asked = plan_run(RunRequest(preset="embedded", strategy="cascade", cheap_scorer_options={"mode": "reason"}))
    assert asked.cheap[1]["mode"] == "reason"


@pytest.mark.parametrize("original", [
    "three small red squares on a white background",
    "two circles on a black background",
    "a circle and a red square on a gray background",
])
def test_world_rewriter_keeps_counts_and_both_objects_of_extended_prompts(original):
    from t2i_guidance.search.rewriting import Rewrite, RewriteRequest
    from t2i_guidance.world.rewriter import WorldRewriter, check_rewrite

    history, current = [], original
    for round_index in range(4):
        rewrite = WorldRewriter().rewrite(RewriteRequest(original, current, [], history, guidance_scale=3.0))
        assert rewrite is not None and check_rewrite(original, rewrite, world_grammar=True) is None, rewrite
        history.append({"round": round_index, "prompt": rewrite.prompt, "best_value": 1.0})
        current = rewrite.prompt
    assert "drops" in check_rewrite("three red squares", Rewrite("a red square"), world_grammar=True)

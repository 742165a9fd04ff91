"""Stopping when good enough: best-of-N and zero-order stop at the first candidate over the target (or
its lower confidence bound), or when another batch is not expected to gain enough, and say what they saved."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from t2i_guidance.ledger import MIN_SCORES_FOR_GAIN, StopRule, expected_gain
from t2i_guidance.search import build_strategy
from tests.search_fixtures import NFES_EACH, PROMPT, SETTINGS, RecordingScorer, SampledScorer, world_generator

WEIGHTS = {"technical": 1.0, "aesthetic": 1.0}


@pytest.fixture(scope="module")
def generator():
    return world_generator()


@pytest.fixture(scope="module")
def plain(generator):
    return build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=8)(PROMPT, SETTINGS, seed=0)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_best_of_n_stops_at_the_first_candidate_over_the_target_and_records_the_saving(generator, plain):
    values = [c.aggregate for c in plain.candidates]
    target = max(values[:4])  # reached first by the best of the first four, never earlier
    first = next(k for k, v in enumerate(values) if v >= target)
    result = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=8, target=target)(
        PROMPT, SETTINGS, seed=0)
    assert len(result.candidates) == first + 1 and result.best.aggregate >= target
    assert result.config["stopped"] == "target"
    assert result.costs.saved == {"candidates": 8 - (first + 1), "nfes": (8 - (first + 1)) * NFES_EACH}
    assert result.costs.nfes + result.costs.saved["nfes"] == plain.costs.nfes
    for a, b in zip(result.candidates, plain.candidates, strict=False):  # the same candidates, drawn one by one
        assert np.abs(pixels(a.candidate.image) - pixels(b.candidate.image)).max() <= 2


def test_an_unreached_target_draws_all_n_and_saves_nothing(generator, plain):
    result = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=8, target=99.0,
                            batch_size=4)(PROMPT, SETTINGS, seed=0)
    assert len(result.candidates) == 8 and result.costs.saved == {} and result.config["stopped"] is None
    assert result.best.id == plain.best.id


def test_the_target_applies_to_the_lower_confidence_bound_with_lcb_selection(generator):
    # c000 has the highest mean but is unreliable; c001's bound passes the target first.
    scorer = SampledScorer({"c000": (4.5, 2.0), "c001": (3.5, 0.1), "c002": (5.0, 0.0), "c003": (1.0, 0.0)})
    result = build_strategy("best-of-n", generator, scorer, weights=WEIGHTS, n=4, target=3.0, selection="lcb")(
        PROMPT, SETTINGS, seed=0)
    assert [c.id for c in result.candidates] == ["c000", "c001"] and result.best.id == "c001"
    assert result.costs.saved["candidates"] == 2
    by_mean = build_strategy("best-of-n", generator, scorer, weights=WEIGHTS, n=4, target=3.0)(PROMPT, SETTINGS, seed=0)
    assert [c.id for c in by_mean.candidates] == ["c000"]


def test_a_small_expected_gain_stops_the_draw(generator):
    never = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=6, min_gain=1e-12)(
        PROMPT, SETTINGS, seed=0)
    assert len(never.candidates) == 6 and never.costs.saved == {}
    at_once = build_strategy("best-of-n", generator, RecordingScorer(), weights=WEIGHTS, n=6, min_gain=10.0)(
        PROMPT, SETTINGS, seed=0)
    assert len(at_once.candidates) == MIN_SCORES_FOR_GAIN and at_once.config["stopped"] == "small_gain"
    assert at_once.costs.saved["candidates"] == 6 - MIN_SCORES_FOR_GAIN


def test_zero_order_stops_mid_round_at_the_target(generator):
    full = build_strategy("zero-order", generator, RecordingScorer(), weights=WEIGHTS, n=2, neighbours=3, rounds=3,
                          patience=5)(PROMPT, SETTINGS, seed=0)
    values = [c.aggregate for c in full.candidates]
    first = next(k for k, v in enumerate(values) if k >= 2 and v > max(values[:2]))  # a neighbour that gains
    target = max(values[: first + 1])
    first = next(k for k, v in enumerate(values) if v >= target)
    stopped = build_strategy("zero-order", generator, RecordingScorer(), weights=WEIGHTS, n=2, neighbours=3,
                             rounds=3, patience=5, target=target)(PROMPT, SETTINGS, seed=0)
    assert len(stopped.candidates) == first + 1 and stopped.config["stopped"] == "target"
    assert stopped.costs.saved["candidates"] == 2 + 3 * 2 - (first + 1)
    assert [c.id for c in stopped.candidates] == [c.id for c in full.candidates[: first + 1]]


def test_expected_gain_matches_the_normal_closed_form_and_sampling():
    values = [0.0, 1.0, -1.0, 0.5, -0.5]
    mean, std, best = float(np.mean(values)), float(np.std(values, ddof=1)), 1.0
    z = (mean - best) / std
    closed = (mean - best) * 0.5 * (1 + math.erf(z / math.sqrt(2))) + std * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert expected_gain(values, 1) == pytest.approx(closed, rel=1e-3)
    rng = random.Random(0)
    sampled = np.mean([max(0.0, max(rng.gauss(mean, std) for _ in range(4)) - best) for _ in range(40_000)])
    assert expected_gain(values, 4) == pytest.approx(sampled, rel=0.05)
    assert expected_gain([2.0, 2.0, 2.0], 8) == 0.0
    assert StopRule(target=1.0).reason([0.5, 1.0], 1) == "target"
    assert StopRule(min_gain=0.5).reason([0.0, 1.0], 1) is None  # too few scores to judge their spread
    for bad in ({"target": float("nan")}, {"min_gain": 0.0}):
        with pytest.raises(ValueError):
            StopRule(**bad)


def test_refinement_stops_when_another_round_is_not_worth_drawing(generator):
    common = {"weights": WEIGHTS, "per_round": 4, "max_rounds": 3, "patience": 5}
    stopped = build_strategy("refine", generator, RecordingScorer(), min_gain=10.0, **common)(PROMPT, SETTINGS, seed=0)
    assert stopped.config["stopped"] == "small_gain"  # no round can gain 10 points on a 0..5 scale
    assert len(stopped.candidates) == 4 and stopped.config["min_gain"] == 10.0
    tiny = build_strategy("refine", generator, RecordingScorer(), min_gain=1e-9, **common)(PROMPT, SETTINGS, seed=0)
    assert len(tiny.candidates) > 4  # a gain this small is always expected while scores still spread

"""The stopping rule on its own: the expected gain against an exact reference, the rule's checks, how many
candidates it draws before looking again, and its edges (a target reached exactly, a gain exactly at
min_gain, a single score)."""

from __future__ import annotations

import math

import pytest

from t2i_guidance.ledger import MIN_SCORES_FOR_GAIN, StopRule, expected_gain


def reference_gain(values, batch):
    """E[max(0, max(X_1..X_batch) - best)] for X ~ N(mean, std), by adaptive quadrature (scipy)."""
    integrate = pytest.importorskip("scipy.integrate")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    best = max(values)
    phi = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    return integrate.quad(lambda x: 1 - phi(x) ** batch, best, math.inf, epsabs=1e-13, epsrel=1e-11)[0]


@pytest.mark.parametrize("values", [[0.0, 1.0, -1.0, 0.5, -0.5], [3.1, 3.5, 2.9, 4.0], [1.0, 2.0, 2.5],
                                    [4.9, 1.0, 1.2, 0.8, 1.1]])
@pytest.mark.parametrize("batch", [1, 2, 4, 16])
def test_expected_gain_is_the_normal_tail_integral_to_four_digits(values, batch):
    assert expected_gain(values, batch) == pytest.approx(reference_gain(values, batch), rel=2e-4)


def test_more_draws_are_expected_to_gain_more():
    values = [2.0, 3.0, 2.5, 3.2]
    gains = [expected_gain(values, batch) for batch in (1, 2, 4, 8)]
    assert gains == sorted(gains) and gains[0] < gains[-1]


def test_no_spread_or_no_draws_gains_nothing():
    assert expected_gain([2.5], 4) == 0.0  # one score: no spread to judge
    assert expected_gain([1.0, 1.0], 4) == 0.0
    assert expected_gain([0.0, 1.0, 2.0], 0) == 0.0
    assert expected_gain([0.0, 1.0, 2.0], -1) == 0.0
    assert expected_gain([0.0, 1.0, 2.0], 1) > 0.0
    # a best score 8 standard deviations past the mean: nothing more to gain under the fit
    assert expected_gain([0.0] * 99 + [100.0], 4) == 0.0


@pytest.mark.parametrize("bad", [{"target": float("nan")}, {"target": float("inf")}, {"min_gain": float("-inf")},
                                 {"target": "3"}, {"min_gain": [0.1]}, {"min_gain": 0.0}, {"min_gain": -0.1}])
def test_a_rule_refuses_values_that_would_never_or_always_stop(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        StopRule(**bad)


def test_a_rule_takes_finite_numbers():
    assert StopRule(target=3, min_gain=0.01) == StopRule(target=3.0, min_gain=0.01)
    StopRule(target=-1.0)  # any finite target
    StopRule(min_gain=1e-12)


def test_only_a_rule_with_a_target_or_a_gain_is_adaptive():
    assert not StopRule().active
    assert StopRule(target=3.0).active and StopRule(min_gain=0.1).active
    assert StopRule(target=0.0).active  # zero is a target


def test_adaptive_runs_draw_one_at_a_time_unless_a_batch_size_is_set():
    assert StopRule().batch(8, None) == 8  # not adaptive: all at once
    assert StopRule(target=3.0).batch(8, None) == 1
    assert StopRule(min_gain=0.1).batch(8, None) == 1
    assert StopRule(target=3.0).batch(8, 3) == 3 and StopRule().batch(8, 3) == 3
    assert StopRule(target=3.0).batch(2, 4) == 2  # never more than wanted
    assert StopRule().batch(0, None) == 0


def test_the_target_stops_once_reached_exactly_or_passed():
    rule = StopRule(target=3.0)
    assert rule.reason([], 1) is None
    assert rule.reason([2.9, 2.99], 1) is None
    assert rule.reason([2.0, 3.0], 1) == "target"
    assert rule.reason([3.5, 1.0], 1) == "target"
    assert StopRule().reason([100.0, 0.0, 50.0], 1) is None  # no rule: never stops


def test_a_gain_below_min_gain_stops_and_one_at_min_gain_goes_on():
    values = [1.0, 2.0, 2.5]
    gain = expected_gain(values, 1)
    assert StopRule(min_gain=gain).reason(values, 1) is None
    assert StopRule(min_gain=gain * 1.01).reason(values, 1) == "small_gain"
    assert StopRule(min_gain=gain * 0.99).reason(values, 1) is None
    # the next batch's size counts: a larger batch is expected to gain more
    between = (expected_gain(values, 1) + expected_gain(values, 8)) / 2
    assert StopRule(min_gain=between).reason(values, 1) == "small_gain"
    assert StopRule(min_gain=between).reason(values, 8) is None


def test_the_gain_is_judged_from_the_minimum_number_of_scores_on():
    assert MIN_SCORES_FOR_GAIN == 3
    rule = StopRule(min_gain=10.0)
    assert rule.reason([1.0, 2.0], 1) is None
    assert rule.reason([1.0, 2.0, 2.5], 1) == "small_gain"
    # the target is checked first
    assert StopRule(target=2.5, min_gain=10.0).reason([1.0, 2.0, 2.5], 1) == "target"
    assert StopRule(target=5.0, min_gain=10.0).reason([1.0, 2.0, 2.5], 1) == "small_gain"

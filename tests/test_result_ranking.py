"""How a result orders its candidates: the weighted mean or its lower confidence bound, ties by index,
the unranked left out, and the Pareto front of the judged dimensions."""

import pytest
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate, candidate_id
from t2i_guidance.result import (
    ScoredCandidate,
    lower_confidence_bound,
    pareto_front,
    parse_weights,
    rank_candidates,
)

PIXEL = Image.new("RGB", (1, 1))


def ok(dimension, score, std=None):
    return DimensionScore(dimension, ScoreStatus.OK, score=score, std=std)


def scored(index, aggregate, lcb=None, **scores):
    candidate = Candidate(candidate_id(index), index, index, "p", PIXEL, {}, 1.0)
    return ScoredCandidate(candidate, {d: ok(d, s) if not isinstance(s, DimensionScore) else s for d, s in scores.items()},
                           aggregate, lcb=lcb)


def test_ranking_by_mean_puts_the_highest_first_breaks_ties_by_index_and_skips_the_unranked():
    cands = [scored(0, 3.0), scored(1, 4.0), scored(2, None), scored(3, 4.0)]
    cands[2].rank = 7  # a stale rank from an earlier call is cleared
    rank_candidates(cands)
    assert [c.rank for c in cands] == [3, 1, None, 2]


def test_ranking_by_lcb_uses_the_bound_not_the_mean_and_mean_is_the_default():
    cands = [scored(0, 4.5, lcb=2.0), scored(1, 4.0, lcb=3.5), scored(2, 5.0, lcb=None)]
    rank_candidates(cands, "lcb")
    assert [c.rank for c in cands] == [2, 1, None]  # no bound, no rank, whatever its mean
    rank_candidates(cands)
    assert [c.rank for c in cands] == [2, 3, 1]


def test_the_lower_confidence_bound_is_the_weighted_mean_of_mean_minus_lambda_std():
    scores = {"technical": ok("technical", 4.0, std=1.0), "aesthetic": ok("aesthetic", 3.0),
              "alignment": ok("alignment", 5.0, std=0.5)}
    weights = {"technical": 1.0, "aesthetic": 0.0, "alignment": 3.0}
    assert lower_confidence_bound(scores, weights, 2.0) == pytest.approx((1 * (4 - 2) + 3 * (5 - 1)) / 4)
    one_sample = {"technical": 1.0, "aesthetic": 1.0, "alignment": 3.0}  # aesthetic: one sample, no spread
    assert lower_confidence_bound(scores, one_sample, 2.0) == pytest.approx((2 + 3 + 12) / 5)
    assert lower_confidence_bound(scores, weights, 0.0) == pytest.approx((4 + 15) / 4)
    failed = dict(scores, alignment=DimensionScore("alignment", ScoreStatus.PARSE_FAILURE, error="x"))
    assert lower_confidence_bound(failed, weights, 1.0) is None
    assert lower_confidence_bound({"technical": scores["technical"]}, weights, 1.0) is None  # a dimension missing


def test_the_pareto_front_keeps_the_unbeaten_on_the_weighted_dimensions():
    weights = {"technical": 1.0, "aesthetic": 1.0, "alignment": 0.0}
    cands = [
        scored(0, 4.0, technical=5.0, aesthetic=3.0, alignment=0.0),
        scored(1, 4.0, technical=3.0, aesthetic=5.0, alignment=5.0),
        scored(2, 3.0, technical=3.0, aesthetic=3.0, alignment=5.0),  # beaten by c000 and c001
        scored(3, 4.0, technical=5.0, aesthetic=3.0, alignment=1.0),  # equal to c000 there: not beaten
        scored(4, None, technical=5.0, aesthetic=5.0, alignment=5.0),  # unranked (e.g. pruned): left out
    ]
    assert pareto_front(cands, weights) == ["c000", "c001", "c003"]
    # With no weights every dimension counts: c003 beats c000 on alignment, c001 is unbeaten.
    assert pareto_front(cands) == ["c001", "c003"]
    assert pareto_front([]) == []
    # A dimension the weights do not name has weight 0; a candidate missing a judged dimension takes no part.
    assert pareto_front(cands, {"technical": 1.0, "aesthetic": 1.0}) == ["c000", "c001", "c003"]
    partial = scored(5, 4.0, technical=5.0)
    assert pareto_front([*cands[:2], partial], weights) == ["c000", "c001"]


def test_weights_name_the_dimension_before_the_equals_sign():
    with pytest.raises(ValueError, match="^at least one weight must be positive$"):
        parse_weights("technical=0")
    with pytest.raises(ValueError, match="'1=2' is not a number"):  # the name is what precedes the first '='
        parse_weights("technical=1=2")

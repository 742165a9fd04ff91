import pytest

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.result import active_dimensions, aggregate, parse_weights


def ok(dimension, value):
    return DimensionScore(dimension, ScoreStatus.OK, score=value)


def test_parse_weights_names_only_given_dimensions():
    weights = parse_weights("technical=1, alignment=2")
    assert weights == {"technical": 1.0, "aesthetic": 0.0, "alignment": 2.0}
    assert active_dimensions(weights) == ["technical", "alignment"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("sharpness=1", "DIMENSION=NUMBER"),
        ("technical", "DIMENSION=NUMBER"),
        ("technical=high", "not a number"),
        ("technical=-1", ">= 0"),
        ("technical=0,aesthetic=0", "positive"),
    ],
)
def test_parse_weights_rejects_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_weights(text)


def test_aggregate_is_the_weighted_mean_of_weighted_dimensions():
    scores = {"technical": ok("technical", 4.0), "aesthetic": ok("aesthetic", 1.0), "alignment": ok("alignment", 2.0)}
    assert aggregate(scores, {"technical": 1, "aesthetic": 0, "alignment": 3}) == pytest.approx((4 + 6) / 4)


def test_aggregate_refuses_to_rank_a_candidate_with_a_failed_weighted_dimension():
    failed = DimensionScore.failure("alignment", ScoreStatus.PARSE_FAILURE, "no answer")
    scores = {"technical": ok("technical", 4.0), "alignment": failed}
    assert aggregate(scores, {"technical": 1, "alignment": 1}) is None
    # A failure on a dimension with zero weight does not matter.
    assert aggregate(scores, {"technical": 1, "alignment": 0}) == 4.0


def test_a_failed_score_cannot_carry_a_number():
    with pytest.raises(ValueError):
        DimensionScore("technical", ScoreStatus.PARSE_FAILURE, score=2.5)
    with pytest.raises(ValueError):
        DimensionScore("technical", ScoreStatus.OK)

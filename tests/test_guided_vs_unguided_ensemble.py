"""The benchmark's two-judge mean: averaged where both answered, a failure never passed off as a score."""

from __future__ import annotations

from benchmarks.guided_vs_unguided import MeanOfScorers
from reward_model.interface import DimensionScore, ImageItem, ScoreStatus


class FixedScorer:
    def __init__(self, values: dict) -> None:
        self.values = values  # (item id, dimension) -> score, or None for a failure

    def score(self, items, prompt, dimensions):
        table = {}
        for item in items:
            table[item.id] = {}
            for d in dimensions:
                value = self.values[(item.id, d)]
                table[item.id][d] = (DimensionScore(d, ScoreStatus.OK, value, rationale=f"{value}") if value is not None
                                     else DimensionScore(d, ScoreStatus.PARSE_FAILURE, error="no answer"))
        return table


def test_the_mean_of_two_judges_per_dimension_and_failures_stand():
    items = [ImageItem("a", None), ImageItem("b", None)]
    first = FixedScorer({("a", "technical"): 4.0, ("a", "alignment"): 1.0,
                         ("b", "technical"): None, ("b", "alignment"): 3.0})
    second = FixedScorer({("a", "technical"): 2.0, ("a", "alignment"): 5.0,
                          ("b", "technical"): 5.0, ("b", "alignment"): None})
    table = MeanOfScorers(first, second).score(items, "a red circle", ["technical", "alignment"])
    assert table["a"]["technical"].score == 3.0 and table["a"]["alignment"].score == 3.0
    assert table["a"]["technical"].rationale == "4.0"  # the first judge's reasons are the ones shown
    assert not table["b"]["technical"].ok and table["b"]["technical"].score is None
    assert not table["b"]["alignment"].ok and table["b"]["alignment"].score is None

"""Scores reach the right candidates and failures never abort a round (tt-scale-flux's two faults)."""

import numpy as np
import pytest
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate, candidate_id
from t2i_guidance.result import ScoredCandidate, aggregate, rank_candidates
from t2i_guidance.search.base import score_candidates
from tests.pixel_scorers import FailingOnSomeScorer, RaisingScorer, ShuffledBrightnessScorer, brightness

DIMS = ["technical", "aesthetic"]


def make_candidates(n: int) -> list[Candidate]:
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        level = rng.integers(0, 256)
        image = Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8))
        out.append(Candidate(candidate_id(k), k, 100 + k, "p", image, {}, nfes=2.0))
    return out


class StaleAnswerFirstScorer(ShuffledBrightnessScorer):
    """Puts an answer for an image nobody asked about (a stale reply) before the real ones, so even a
    one-image chunk tells matching by id from matching by position."""

    def score(self, items, prompt, dimensions):
        stale = {d: DimensionScore(d, ScoreStatus.OK, score=-1.0) for d in dimensions}
        return {"stale": stale, **super().score(items, prompt, dimensions)}


@pytest.mark.parametrize("chunk_size", [1, 3, 16])
@pytest.mark.parametrize("scorer", [ShuffledBrightnessScorer(seed=3), StaleAnswerFirstScorer(seed=3)])
def test_each_candidate_gets_the_score_of_its_own_image_despite_shuffled_answers(scorer, chunk_size):
    candidates = make_candidates(10)
    table = score_candidates(scorer, candidates, "p", DIMS, chunk_size=chunk_size)
    assert set(table) == {c.id for c in candidates}
    for c in candidates:
        for d in DIMS:
            assert table[c.id][d].score == pytest.approx(brightness(c.image))


def test_failures_are_recorded_per_candidate_and_excluded_from_ranking():
    candidates = make_candidates(6)
    scorer = FailingOnSomeScorer(parse_fail={"c001"}, error={"c002"}, missing={"c003"})
    table = score_candidates(scorer, candidates, "p", DIMS)
    assert table["c001"]["technical"].status is ScoreStatus.PARSE_FAILURE
    assert table["c001"]["technical"].raw == "<think>hmm"
    assert table["c001"]["aesthetic"].ok
    assert all(s.status is ScoreStatus.ERROR for s in table["c002"].values())
    assert all(s.status is ScoreStatus.ERROR and "no result" in s.error for s in table["c003"].values())
    scored = [ScoredCandidate(c, table[c.id], aggregate(table[c.id], {"technical": 1, "aesthetic": 1})) for c in candidates]
    rank_candidates(scored)
    ranked_ids = {s.id for s in scored if s.rank is not None}
    assert ranked_ids == {"c000", "c004", "c005"}
    failed = [s for s in scored if s.id in ("c001", "c002", "c003")]
    assert [(s.aggregate, s.rank) for s in failed] == [(None, None)] * 3  # no stand-in number, no place
    assert "scorer failing-brightness returned no result" in table["c003"]["technical"].error


def test_a_scorer_that_raises_marks_its_chunk_failed_and_the_round_goes_on():
    candidates = make_candidates(4)
    table = score_candidates(RaisingScorer(), candidates, "p", DIMS, chunk_size=2)
    assert len(table) == 4
    for row in table.values():
        for result in row.values():
            assert result.status is ScoreStatus.ERROR
            assert "verifier service unavailable" in result.error
            assert result.score is None


def test_ties_are_broken_by_candidate_index():
    candidates = make_candidates(3)
    scored = [ScoredCandidate(c, {}, 2.5) for c in reversed(candidates)]
    rank_candidates(scored)
    assert sorted((s.rank, s.id) for s in scored) == [(1, "c000"), (2, "c001"), (3, "c002")]


def test_ranking_is_best_first_whatever_the_input_order():
    candidates = make_candidates(5)
    values = {"c000": 1.0, "c001": 4.5, "c002": None, "c003": 2.0, "c004": 4.5}
    scored = [ScoredCandidate(c, {}, values[c.id]) for c in reversed(candidates)]
    rank_candidates(scored)
    ranks = {s.id: s.rank for s in scored}
    assert ranks == {"c001": 1, "c004": 2, "c003": 3, "c000": 4, "c002": None}  # the tie to the lower index

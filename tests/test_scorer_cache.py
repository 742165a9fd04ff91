"""Scores are remembered by content: re-scoring the same picture generates nothing."""

from __future__ import annotations

import pytest

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus
from reward_model.scorer import OmniQualityScorer, ScoreCache, cache_key
from tests.scorer_fixtures import TRAIN_PROMPT, random_image, trained_scorer_dir  # noqa: F401 - fixture


def test_key_uses_the_prompt_only_for_alignment():
    settings = {"mode": "reason", "do_sample": False}
    assert cache_key("h", "a cat", "technical", "m", settings) == cache_key(
        "h", "a dog", "technical", "m", settings
    )
    assert cache_key("h", "a cat", "alignment", "m", settings) != cache_key(
        "h", "a dog", "alignment", "m", settings
    )
    assert cache_key("h", None, "technical", "m", settings) != cache_key(
        "h", None, "technical", "m2", settings
    )
    other = {"mode": "reason", "do_sample": True}
    assert cache_key("h", None, "technical", "m", settings) != cache_key("h", None, "technical", "m", other)


def test_memory_and_disk(tmp_path):
    result = DimensionScore(
        "technical", ScoreStatus.OK, score=3.5, raw="<answer>3.5</answer>", generated_tokens=9
    )
    first = ScoreCache(tmp_path)
    first.put("k", result)
    reread = ScoreCache(tmp_path).get("k")  # a new process would see the same entry
    assert reread is not None and reread.cached and reread.score == 3.5 and reread.raw == result.raw
    assert reread.generated_tokens == 0  # no work was done for it
    assert not result.cached  # the caller's object is untouched


def test_errors_are_not_cached(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("k", DimensionScore.failure("technical", ScoreStatus.ERROR, "bad image"))
    assert cache.get("k") is None and not list(tmp_path.iterdir())


def test_damaged_disk_entry_is_a_miss(tmp_path):
    (tmp_path / "k.json").write_text("{not json")
    assert ScoreCache(tmp_path).get("k") is None


@pytest.fixture(scope="module")
def greedy_scorer(trained_scorer_dir, tmp_path_factory):  # noqa: F811
    cache_dir = tmp_path_factory.mktemp("score-cache")
    return OmniQualityScorer(
        trained_scorer_dir, decoding="greedy", max_new_tokens=24, cache_dir=str(cache_dir)
    )


def test_rescoring_costs_nothing(greedy_scorer):
    items = [ImageItem("a", random_image(20)), ImageItem("b", random_image(21))]
    first = greedy_scorer.score(items, TRAIN_PROMPT, ["technical", "alignment"])
    calls = len(greedy_scorer.backend.last_batch_seconds)
    # Same pictures under new ids, in another order: every result comes from the cache.
    again = greedy_scorer.score(
        [ImageItem("b2", items[1].image), ImageItem("a2", items[0].image)],
        TRAIN_PROMPT,
        ["technical", "alignment"],
    )
    assert len(greedy_scorer.backend.last_batch_seconds) == calls
    for old, new in (("a", "a2"), ("b", "b2")):
        for dimension in ("technical", "alignment"):
            assert again[new][dimension].cached and again[new][dimension].generated_tokens == 0
            assert again[new][dimension].score == first[old][dimension].score
            assert not first[old][dimension].cached and first[old][dimension].generated_tokens > 0


def test_disk_cache_survives_a_new_scorer(greedy_scorer, trained_scorer_dir):  # noqa: F811
    image = random_image(22)
    greedy_scorer.score([ImageItem("x", image)], None, ["technical"])
    fresh = OmniQualityScorer(
        trained_scorer_dir, decoding="greedy", max_new_tokens=24, cache_dir=str(greedy_scorer.cache.directory)
    )
    result = fresh.score([ImageItem("y", image)], None, ["technical"])["y"]["technical"]
    assert result.cached and fresh.backend.last_batch_seconds == []


def test_other_settings_do_not_share_entries(greedy_scorer, trained_scorer_dir):  # noqa: F811
    image = random_image(23)
    greedy_scorer.score([ImageItem("x", image)], None, ["technical"])
    answer_only = OmniQualityScorer(
        trained_scorer_dir,
        decoding="greedy",
        mode="answer-only",
        cache_dir=str(greedy_scorer.cache.directory),
    )
    result = answer_only.score([ImageItem("x", image)], None, ["technical"])["x"]["technical"]
    assert not result.cached

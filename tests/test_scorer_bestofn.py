"""OmniQuality-R plugs into best-of-N by name: a tiny pipeline's candidates scored by the tiny scorer."""

from __future__ import annotations

import pytest

from t2i_guidance import registries as scorer_registry
from t2i_guidance.generator import GenerationSettings, Generator
from t2i_guidance.search.base import BestOfN
from tests.scorer_fixtures import TRAIN_PROMPT, trained_scorer_dir  # noqa: F401 - fixture
from tests.tiny_pipelines import build_tiny_pipeline


@pytest.fixture(scope="module")
def scorer(trained_scorer_dir):  # noqa: F811
    return scorer_registry.build_scorer(
        "omniquality-r", model=trained_scorer_dir, decoding="greedy", max_new_tokens=24
    )


def test_best_of_n_with_the_scorer_by_name(scorer):
    generator = Generator(build_tiny_pipeline("sd15"), device="cpu")
    search = BestOfN(generator, scorer, n=3, weights={"technical": 1.0, "alignment": 1.0})
    result = search(TRAIN_PROMPT, GenerationSettings(2, height=32, width=32), seed=0)
    assert len(result.candidates) == 3 and result.best is not None
    for candidate in result.candidates:
        # The tiny scorer answers 3.47 (technical) and 1.25 (alignment) whatever the picture.
        assert candidate.scores["technical"].score == 3.47 and candidate.scores["alignment"].score == 1.25
    assert result.costs.generated_tokens > 0 and result.costs.scorer_requests == 6


def test_unparsable_dimension_excludes_candidates_instead_of_guessing(scorer):
    generator = Generator(build_tiny_pipeline("sd15"), device="cpu")
    result = BestOfN(generator, scorer, n=2)(TRAIN_PROMPT, GenerationSettings(2, height=32, width=32), seed=1)
    # Aesthetic answers are 7.50, out of range: parse failures, so no candidate gets an aggregate.
    assert all(not c.scores["aesthetic"].ok and c.aggregate is None for c in result.candidates)
    assert result.best is None

"""Small scorers that judge real pixel properties, for testing the plumbing around any scorer.

Their scores are computed from each image, so a test can check that every candidate received the
score of its own image, whatever order the scorer answered in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, ScoreTable


def brightness(image) -> float:
    """Mean pixel value mapped onto 0..5."""
    return float(np.asarray(image.convert("L"), dtype=np.float64).mean() / 255.0 * 5.0)


class ShuffledBrightnessScorer:
    """Answers in a shuffled order, like a remote verifier whose calls complete out of order."""

    name = "shuffled-brightness"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.calls = 0

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        self.calls += 1
        order = list(items)
        self.rng.shuffle(order)
        table: ScoreTable = {}
        for item in order:
            value = brightness(item.image)
            table[item.id] = {
                d: DimensionScore(d, ScoreStatus.OK, score=value, rationale=f"mean brightness {value:.3f}")
                for d in dimensions
            }
        return table


class FailingOnSomeScorer(ShuffledBrightnessScorer):
    """Fails in three different ways on chosen images: a parse failure, an error, and no answer."""

    name = "failing-brightness"

    def __init__(self, parse_fail: set[str], error: set[str], missing: set[str]) -> None:
        super().__init__()
        self.parse_fail, self.error, self.missing = parse_fail, error, missing

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        table = super().score(items, prompt, dimensions)
        for item_id in self.parse_fail & table.keys():
            table[item_id]["technical"] = DimensionScore.failure(
                "technical", ScoreStatus.PARSE_FAILURE, "no <answer> block", raw="<think>hmm"
            )
        for item_id in self.error & table.keys():
            table[item_id] = {
                d: DimensionScore.failure(d, ScoreStatus.ERROR, "image unreadable") for d in dimensions
            }
        for item_id in self.missing:
            table.pop(item_id, None)
        return table


class RaisingScorer:
    name = "raising"

    def score(self, items, prompt, dimensions):
        raise RuntimeError("verifier service unavailable")

"""Shared pieces for the search tests: a tiny untrained world generator and scorers that misbehave on cue."""

from __future__ import annotations

from collections.abc import Sequence

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, ScoreTable
from t2i_guidance.generator import GenerationSettings, Generator
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from tests.pixel_scorers import brightness

PROMPT = "a red circle above a small blue square on a white background"
SMALL = (8, 16, 16)  # the world's architecture with narrow blocks: fast
SETTINGS = GenerationSettings(num_inference_steps=2, guidance_scale=3.0)
NFES_EACH = 4.0  # 2 steps x 2 rows (classifier-free guidance)


def world_generator(seed: int = 1) -> Generator:
    return Generator(WorldDiffusionPipeline.from_config_untrained(seed=seed, block_out_channels=SMALL), device="cpu")


class RecordingScorer:
    """Brightness on every dimension; records the prompt of every call and how many calls were made."""

    name = "recording"

    def __init__(self) -> None:
        self.prompts: list[str | None] = []
        self.calls = 0

    def value(self, item: ImageItem) -> float:
        return brightness(item.image)

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        self.calls += 1
        self.prompts.append(prompt)
        return {
            item.id: {d: DimensionScore(d, ScoreStatus.OK, self.value(item), rationale=f"call {self.calls}")
                      for d in dimensions}
            for item in items
        }


class FirstCallWinsScorer(RecordingScorer):
    """Images of the first call score high, later ones low: the best is in round 0 whatever comes later."""

    def value(self, item: ImageItem) -> float:
        return 4.0 + brightness(item.image) / 10 if self.calls == 1 else 1.0 + brightness(item.image) / 10


class FailsOnCallScorer(RecordingScorer):
    """Raises on the given call numbers (a verifier that drops out mid-run)."""

    def __init__(self, failing_calls: set[int]) -> None:
        super().__init__()
        self.failing_calls = failing_calls

    def score(self, items, prompt, dimensions):
        if self.calls + 1 in self.failing_calls:
            self.calls += 1
            raise RuntimeError("verifier service unavailable")
        return super().score(items, prompt, dimensions)


class SampledScorer:
    """Fixed per-image means and spreads (by image id), as a scorer drawing several samples would report."""

    name = "sampled"

    def __init__(self, stats: dict[str, tuple[float, float]]) -> None:
        self.stats = stats

    def score(self, items, prompt, dimensions):
        return {
            item.id: {d: DimensionScore(d, ScoreStatus.OK, self.stats[item.id][0], std=self.stats[item.id][1])
                      for d in dimensions}
            for item in items
        }

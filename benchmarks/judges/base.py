"""What every learned judge shares: the Scorer interface around a per-image prompt-conditioned number.

A judge answers the dimensions it knows (`dimensions`); asked for another one, or for alignment without a
prompt, it returns an ERROR entry for it rather than a number. A model failure fails that call's images only.
"""

from __future__ import annotations

from collections.abc import Sequence

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, ScoreTable, validate_dimensions


class PromptImageJudge:
    """Base class: subclasses set `name`, `dimensions`, `description` and implement `values`."""

    name = "judge"
    dimensions: tuple[str, ...] = ("alignment",)
    description = ""
    batch_size = 16

    def values(self, images: list, prompt: str) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        dimensions = validate_dimensions(dimensions)
        table: ScoreTable = {item.id: {} for item in items}
        known = [d for d in dimensions if d in self.dimensions]
        for d in dimensions:
            if d not in self.dimensions:
                for item in items:
                    table[item.id][d] = DimensionScore.failure(
                        d, ScoreStatus.ERROR, f"{self.name} judges {', '.join(self.dimensions)} only")
        if not known:
            return table
        if not prompt:
            for item in items:
                for d in known:
                    table[item.id][d] = DimensionScore.failure(d, ScoreStatus.ERROR, f"{self.name} needs the prompt")
            return table
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            try:
                values = self.values([item.image.convert("RGB") for item in chunk], prompt)
            except Exception as error:  # one failed batch fails its images, with the reason
                for item in chunk:
                    for d in known:
                        table[item.id][d] = DimensionScore.failure(d, ScoreStatus.ERROR, repr(error))
                continue
            for item, value in zip(chunk, values, strict=True):
                for d in known:
                    table[item.id][d] = DimensionScore(d, ScoreStatus.OK, float(value), self.description)
        return table


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")

"""The oracles as a registered scorer: one DimensionScore per image and dimension, with its reasons."""

from __future__ import annotations

from collections.abc import Sequence

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, ScoreTable, validate_dimensions
from t2i_guidance.world.captions import PromptParseError, parse_prompt
from t2i_guidance.world.oracles.aesthetic import composition_score
from t2i_guidance.world.oracles.alignment import judge_alignment
from t2i_guidance.world.oracles.perception import observe, to_array
from t2i_guidance.world.oracles.technical import technical_score


class OracleScorer:
    """The oracles as a registered scorer (`build_scorer("oracle")`): fast, exact, pixel-only."""

    name = "oracle"

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        dimensions = validate_dimensions(dimensions)
        spec, spec_error = None, None
        if "alignment" in dimensions:
            try:
                spec = parse_prompt(prompt) if prompt else None
                spec_error = None if prompt else "alignment needs the generation prompt"
            except PromptParseError as error:
                spec_error = f"the oracle cannot judge this prompt: {error}"
        table: ScoreTable = {}
        for item in items:
            try:
                table[item.id] = self._score_one(item.image, spec, spec_error, dimensions)
            except Exception as error:  # a broken image fails alone, with its reason
                table[item.id] = {d: DimensionScore.failure(d, ScoreStatus.ERROR, repr(error)) for d in dimensions}
        return table

    def _score_one(self, image, spec, spec_error, dimensions) -> dict[str, DimensionScore]:
        pixels = to_array(image)
        seen = observe(pixels)
        results = {}
        for dimension in dimensions:
            if dimension == "technical":
                result = technical_score(pixels)
                levels = ", ".join(f"{k} {v:.1f}" for k, v in result.levels.items())
                text = f"Degradation levels: {levels}. " + ("; ".join(result.issues) or "clean and sharp") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, result.score, text)
            elif dimension == "aesthetic":
                result = composition_score(seen)
                text = "Seen: " + "; ".join(seen.describe()) + ". " + (
                    "; ".join(result.issues) or "balanced, clear margins, good colours, no clutter") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, result.score, text)
            elif spec is None:
                results[dimension] = DimensionScore.failure(dimension, ScoreStatus.ERROR, spec_error)
            else:
                met, unmet = judge_alignment(spec, seen)
                value = 5.0 * len(met) / (len(met) + len(unmet))
                text = "Seen: " + "; ".join(seen.describe()) + ". " + (
                    "Unmet: " + "; ".join(unmet) if unmet else "Every element of the prompt is met") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, value, text)
        return results

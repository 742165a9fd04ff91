"""Scoring candidates through any registered scorer, matched by id and never aborting on failure."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from reward_model.interface import DimensionScore, ImageItem, Scorer, ScoreStatus, ScoreTable
from t2i_guidance.generator import Candidate


def score_candidates(
    scorer: Scorer,
    candidates: Sequence[Candidate],
    prompt: str,
    dimensions: Sequence[str],
    chunk_size: int = 16,
    progress: bool = False,
) -> ScoreTable:
    """Scores for every candidate and dimension, in chunks of `chunk_size` images per scorer call.

    Results are looked up by candidate id, so the order a scorer answers in does not matter. A scorer
    that raises, or leaves out a candidate, yields ERROR entries for those candidates only.
    """
    table: ScoreTable = {}
    bar = tqdm(total=len(candidates), desc="score", unit="img", disable=not progress)
    for start in range(0, len(candidates), chunk_size):
        chunk = candidates[start : start + chunk_size]
        items = [ImageItem(id=c.id, image=c.image) for c in chunk]
        try:
            answered = scorer.score(items, prompt, dimensions)
        except Exception as exc:  # one broken call must not end the round
            answered = {}
            failure = f"scorer {scorer.name} failed: {type(exc).__name__}: {exc}"
        else:
            failure = f"scorer {scorer.name} returned no result"
        for candidate in chunk:
            row = answered.get(candidate.id, {})
            table[candidate.id] = {
                d: row[d] if d in row else DimensionScore.failure(d, ScoreStatus.ERROR, failure)
                for d in dimensions
            }
        bar.update(len(chunk))
    bar.close()
    return table

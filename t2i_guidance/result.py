"""What a search returns: every candidate with its scores, the pick, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from reward_model.interface import DimensionScore
from t2i_guidance.generator import Candidate

RESULT_VERSION = 1


@dataclass
class ScoredCandidate:
    candidate: Candidate
    scores: dict[str, DimensionScore]
    aggregate: float | None  # None: not ranked, some weighted dimension has no valid score
    rank: int | None = None  # 1 is best

    @property
    def id(self) -> str:
        return self.candidate.id

    def to_dict(self, image_path: str | None = None) -> dict:
        data = self.candidate.metadata()
        data.update(
            image=image_path,
            aggregate=self.aggregate,
            rank=self.rank,
            scores={d: s.to_dict() for d, s in self.scores.items()},
        )
        return data


@dataclass
class Costs:
    nfes: float = 0.0
    scorer_requests: int = 0  # (image, dimension) pairs sent to a model
    scorer_cache_hits: int = 0
    generated_tokens: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_cuda_mb: float | None = None


@dataclass
class SearchResult:
    prompt: str
    strategy: str
    weights: dict[str, float]
    candidates: list[ScoredCandidate]
    costs: Costs
    config: dict = field(default_factory=dict)

    @property
    def ranking(self) -> list[ScoredCandidate]:
        ranked = [c for c in self.candidates if c.rank is not None]
        return sorted(ranked, key=lambda c: c.rank)

    @property
    def best(self) -> ScoredCandidate | None:
        ranking = self.ranking
        return ranking[0] if ranking else None

    def to_dict(self, image_paths: dict[str, str] | None = None) -> dict:
        image_paths = image_paths or {}
        best = self.best
        return {
            "version": RESULT_VERSION,
            "strategy": self.strategy,
            "prompt": self.prompt,
            "weights": self.weights,
            "config": self.config,
            "best": best.id if best else None,
            "ranking": [c.id for c in self.ranking],
            "candidates": [c.to_dict(image_paths.get(c.id)) for c in self.candidates],
            "costs": vars(self.costs),
        }


def rank_candidates(candidates: list[ScoredCandidate]) -> None:
    """Rank by aggregate, highest first; ties go to the lower candidate index so runs are repeatable."""
    ranked = [c for c in candidates if c.aggregate is not None]
    ranked.sort(key=lambda c: (-c.aggregate, c.candidate.index))
    for position, scored in enumerate(ranked, start=1):
        scored.rank = position

"""What a search returns: every candidate with its scores, the pick, the rounds, and what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from reward_model.interface import DIMENSIONS, DimensionScore
from t2i_guidance.generator import Candidate
from t2i_guidance.ledger import CostLedger

RESULT_VERSION = 2  # 2: rounds, events, pareto_front, selection and the ledger's saved / by_scorer


@dataclass
class ScoredCandidate:
    candidate: Candidate
    scores: dict[str, DimensionScore]
    aggregate: float | None  # None: not ranked, some weighted dimension has no valid score
    rank: int | None = None  # 1 is best
    lcb: float | None = None  # weighted mean - lambda * std, when selection is by lower confidence bound

    @property
    def id(self) -> str:
        return self.candidate.id

    def selection_value(self, selection: str = "mean") -> float | None:
        return self.lcb if selection == "lcb" else self.aggregate

    def to_dict(self, image_path: str | None = None) -> dict:
        data = self.candidate.metadata()
        data.update(
            image=image_path,
            aggregate=self.aggregate,
            lcb=self.lcb,
            rank=self.rank,
            scores={d: s.to_dict() for d, s in self.scores.items()},
        )
        return data


@dataclass
class SearchResult:
    prompt: str  # the user's original prompt: alignment is always judged against it
    strategy: str
    weights: dict[str, float]
    candidates: list[ScoredCandidate]
    costs: CostLedger
    config: dict = field(default_factory=dict)
    selection: str = "mean"
    rounds: list[dict] = field(default_factory=list)  # per round: prompt used, candidate ids, best, notes
    events: list[dict] = field(default_factory=list)  # what went wrong and was handled (rejected rewrites...)

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
            "selection": self.selection,
            "config": self.config,
            "best": best.id if best else None,
            "ranking": [c.id for c in self.ranking],
            "pareto_front": pareto_front(self.candidates, self.weights),
            "rounds": self.rounds,
            "events": self.events,
            "candidates": [c.to_dict(image_paths.get(c.id)) for c in self.candidates],
            "costs": self.costs.to_dict(),
        }


def rank_candidates(candidates: list[ScoredCandidate], selection: str = "mean") -> None:
    """Rank by the selection value, highest first; ties go to the lower candidate index (repeatable)."""
    for scored in candidates:
        scored.rank = None
    ranked = [c for c in candidates if c.selection_value(selection) is not None]
    ranked.sort(key=lambda c: (-c.selection_value(selection), c.candidate.index))
    for position, scored in enumerate(ranked, start=1):
        scored.rank = position


def pareto_front(candidates: list[ScoredCandidate], weights: dict[str, float] | None = None) -> list[str]:
    """Ids of the candidates no other candidate beats on every judged dimension (the weighted ones, or all).

    Only candidates that were ranked-eligible (a valid score on each of those dimensions, not pruned by a
    cascade) take part; the front is in id order.
    """
    dims = [d for d in DIMENSIONS if (weights or {}).get(d, 0) > 0] or list(DIMENSIONS)
    points = {}
    for c in candidates:
        if c.aggregate is not None and all(d in c.scores and c.scores[d].ok for d in dims):
            points[c.id] = [c.scores[d].score for d in dims]

    def dominated(a: list[float]) -> bool:
        return any(all(x >= y for x, y in zip(b, a, strict=True)) and b != a for b in points.values())

    return sorted(i for i, p in points.items() if not dominated(p))

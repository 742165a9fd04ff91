"""The strategy interface and what every strategy shares: metered generation, scoring and selection.

A strategy is constructed with a generator, a scorer, the weights and its own options, and called once
per prompt: `strategy(prompt, settings, seed=0, budget=None, progress=False) -> SearchResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import torch

from reward_model.interface import Scorer
from t2i_guidance.aggregate import DEFAULT_WEIGHTS, active_dimensions, aggregate, lower_confidence_bound
from t2i_guidance.generator import Candidate, GenerationSettings, Generator
from t2i_guidance.result import ScoredCandidate, SearchResult, rank_candidates
from t2i_guidance.search.candidate_scores import score_candidates
from t2i_guidance.search.ledger import Budget, CostLedger

SELECTIONS = ("mean", "lcb")


@runtime_checkable
class SearchStrategy(Protocol):
    name: str

    def __call__(
        self,
        prompt: str,
        settings: GenerationSettings,
        *,
        seed: int = 0,
        budget: Budget | None = None,
        progress: bool = False,
    ) -> SearchResult: ...


class Search:
    """Base of the shipped strategies: owns the generator, the scorer, the weights and the selection rule.

    selection: "mean" ranks by the weighted mean score; "lcb" by the weighted mean - lcb_lambda * std of
    each dimension's samples (ask the scorer for several samples per request), which resists picking a
    candidate only because its one noisy score came out high.
    """

    name = "search"

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        weights: Mapping[str, float] | None = None,
        batch_size: int | None = None,
        score_chunk_size: int = 16,
        selection: str = "mean",
        lcb_lambda: float = 1.0,
    ) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; choose from {', '.join(SELECTIONS)}")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.generator = generator
        self.scorer = scorer
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.dimensions = active_dimensions(self.weights)
        self.batch_size = batch_size
        self.score_chunk_size = score_chunk_size
        self.selection = selection
        self.lcb_lambda = lcb_lambda

    # ------------------------------------------------------------------ building blocks

    def generate(
        self,
        ledger: CostLedger,
        prompts: str | Sequence[str],
        seeds: Sequence[int],
        settings: GenerationSettings,
        first_index: int,
        latents: Sequence[torch.Tensor] | None = None,
        progress: bool = False,
        extra: Mapping | None = None,
    ) -> list[Candidate]:
        with ledger.stage("generate"):
            candidates = self.generator.generate(
                prompts, seeds, settings, batch_size=self.batch_size, progress=progress,
                first_index=first_index, latents=latents,
            )
        for candidate in candidates:
            candidate.extra.update(extra or {})
        ledger.add_candidates(candidates)
        return candidates

    def score(
        self,
        ledger: CostLedger,
        candidates: Sequence[Candidate],
        original_prompt: str,
        progress: bool = False,
        scorer: Scorer | None = None,
        dimensions: Sequence[str] | None = None,
        role: str = "main",
    ) -> list[ScoredCandidate]:
        """Score against the ORIGINAL prompt, whatever prompt drew the image."""
        scorer = scorer or self.scorer
        dimensions = list(dimensions or self.dimensions)
        with ledger.stage("score" if role == "main" else f"score_{role}"):
            table = score_candidates(scorer, candidates, original_prompt, dimensions, self.score_chunk_size, progress)
        ledger.add_scores((s for row in table.values() for s in row.values()), role=role)
        return [self.judge(c, table[c.id]) for c in candidates]

    def judge(self, candidate: Candidate, scores: dict) -> ScoredCandidate:
        lcb = lower_confidence_bound(scores, self.weights, self.lcb_lambda) if self.selection == "lcb" else None
        return ScoredCandidate(candidate, scores, aggregate(scores, self.weights), lcb=lcb)

    def value(self, scored: ScoredCandidate) -> float | None:
        return scored.selection_value(self.selection)

    def best_of(self, scored: Sequence[ScoredCandidate]) -> ScoredCandidate | None:
        ranked = [c for c in scored if self.value(c) is not None]
        return min(ranked, key=lambda c: (-self.value(c), c.candidate.index)) if ranked else None

    def affordable(self, ledger: CostLedger, budget: Budget | None, wanted: int, nfes_each: float | None) -> int:
        """How many of `wanted` more candidates fit in the budget (all of them when it is unlimited)."""
        if budget is None or not budget.limited:
            return wanted
        count = wanted
        if budget.nfes is not None and nfes_each:
            count = min(count, math.floor((budget.nfes - ledger.nfes + 1e-9) / nfes_each))
        if budget.seconds is not None and ledger.candidates:
            per_candidate = ledger.elapsed() / ledger.candidates  # generating and scoring, measured so far
            count = min(count, math.floor((budget.seconds - ledger.elapsed()) / per_candidate))
        return max(count, 0)

    def options(self) -> dict:
        """The strategy's settings as they go into result.json's config."""
        return {
            "batch_size": self.batch_size,
            "selection": self.selection,
            "lcb_lambda": self.lcb_lambda if self.selection == "lcb" else None,
        }

    def result(
        self,
        prompt: str,
        scored: list[ScoredCandidate],
        ledger: CostLedger,
        settings: GenerationSettings,
        seed: int,
        budget: Budget | None,
        rounds: list[dict] | None = None,
        events: list[dict] | None = None,
    ) -> SearchResult:
        with ledger.stage("rank"):
            rank_candidates(scored, self.selection)
        config = {"seed": seed, "settings": vars(settings), "budget": budget.to_dict() if budget else None,
                  **self.options()}
        return SearchResult(prompt, self.name, self.weights, scored, ledger.finish(), config,
                            selection=self.selection, rounds=rounds or [], events=events or [])

"""Cascade: a cheap pass scores all N candidates, only the best `keep` reach the expensive scorer.

The cheap pass is any scorer (typically OmniQuality-R in answer-only or prob-weighted mode: a handful
of tokens instead of a rationale), or the same scorer on fewer dimensions (`cheap_dimensions`).
Candidates the cheap pass could not score are pruned as well; if it could score none, every candidate
goes to the expensive scorer (logged). The ledger records both passes (`by_scorer`: "cheap" and "main")
and what the cascade saved against best-of-N with the expensive scorer on every candidate: scorer
requests, and tokens at the expensive pass's measured mean per request. The pick is among the
candidates the expensive scorer judged.
"""

from __future__ import annotations

from typing import Any

from reward_model.interface import Scorer
from t2i_guidance.generator import GenerationSettings
from t2i_guidance.ledger import Budget, CostLedger
from t2i_guidance.result import aggregate
from t2i_guidance.search.base import BestOfN, Found


class Cascade(BestOfN):
    name = "cascade"

    def __init__(
        self,
        generator,
        scorer,
        cheap_scorer: Scorer | None = None,
        keep: int = 2,
        cheap_dimensions: list[str] | None = None,
        n: int | None = 8,
        **common: Any,
    ) -> None:
        super().__init__(generator, scorer, n=n, **common)
        if keep < 1:
            raise ValueError("keep must be at least 1")
        if cheap_scorer is None:
            raise ValueError("a cascade needs a cheap scorer")
        self.cheap_scorer = cheap_scorer
        self.keep = keep
        self.cheap_dimensions = list(cheap_dimensions or self.dimensions)

    def options(self) -> dict:
        return {"keep": self.keep, "cheap_scorer": getattr(self.cheap_scorer, "name", "?"),
                "cheap_dimensions": self.cheap_dimensions, **super().options()}

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        # Best-of-N's generation under the same budget rules, but scored by the cheap pass first.
        main, self.scorer = self.scorer, self.cheap_scorer
        dims, self.dimensions = self.dimensions, self.cheap_dimensions
        try:
            first = super().search(prompt, settings, seed, budget, ledger, progress)
        finally:
            self.scorer, self.dimensions = main, dims
        ledger.by_scorer["cheap"] = ledger.by_scorer.pop("main")
        ledger.seconds["score_cheap"] = ledger.seconds.pop("score", 0.0)
        cheap_weights = {d: self.weights.get(d, 0.0) or 1.0 for d in self.cheap_dimensions}
        cheap_value = {c.id: aggregate(c.scores, cheap_weights) for c in first.scored}
        survivors = sorted((c for c in first.scored if cheap_value[c.id] is not None),
                           key=lambda c: (-cheap_value[c.id], c.candidate.index))[: self.keep]
        events = list(first.events)
        if not survivors:  # the cheap pass could not rank anything: judge all rather than prune blindly
            survivors = list(first.scored)
            events.append({"event": "cheap_pass_failed", "detail": "no candidate could be scored by the cheap "
                           "pass; every candidate went to the main scorer"})
        kept = {c.id for c in survivors}
        rescored = self.score(ledger, [c.candidate for c in survivors], prompt, progress)
        by_id = {c.id: c for c in rescored}
        final = []
        for c in first.scored:
            if c.id in kept:
                final.append(by_id[c.id])
            else:  # pruned: its cheap scores stay visible, it is not ranked
                c.candidate.extra["pruned"] = True
                c.aggregate = c.lcb = None
                final.append(c)
            final[-1].candidate.extra["cheap_value"] = cheap_value[c.id]
        # Saved against best-of-N with the main scorer on every candidate, counted in (image, dimension)
        # pairs from the cascade's structure, so caches shared with other runs do not inflate it.
        n_all, n_kept = len(first.scored), len(survivors)
        repeated = set(self.dimensions) - set(self.cheap_dimensions) if self.cheap_scorer is self.scorer \
            else set(self.dimensions)
        saved = n_all * len(self.dimensions) - (n_all * len(self.cheap_dimensions) + n_kept * len(repeated))
        ledger.add_saved("scorer_requests", saved)
        main_entry = ledger.by_scorer.get("main", {"requests": 0, "generated_tokens": 0})
        if main_entry["requests"]:
            per_request = main_entry["generated_tokens"] / main_entry["requests"]
            ledger.add_saved("generated_tokens_estimate", per_request * saved)
        return Found(final, events=events)

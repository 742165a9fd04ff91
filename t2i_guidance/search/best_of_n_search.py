"""Best-of-N: generate N candidates, score them all, keep the best (random search over initial noises).

With `target` or `min_gain` (see `stopping.py`) it stops early: candidates are drawn one at a time (or
`batch_size` at a time) and drawing stops at the first one whose value reaches the target, or once
another batch is not expected to gain `min_gain`; the ledger's `saved` says what was not spent.
"""

from __future__ import annotations

from typing import Any

from t2i_guidance.generator import GenerationSettings, candidate_seeds
from t2i_guidance.ledger import Budget, CostLedger
from t2i_guidance.search.base import Found, Search
from t2i_guidance.search.stopping import StopRule

MAX_UNDER_BUDGET = 256  # candidates, when only a budget bounds the run


class BestOfN(Search):
    """Candidate k uses seed + k. With a budget, N is what fits: one candidate is made first to measure
    its cost, the rest in batches; the images are those of a plain best-of-N with that N."""

    name = "best-of-n"

    def __init__(self, generator, scorer, n: int | None = 8, target: float | None = None,
                 min_gain: float | None = None, **common: Any) -> None:
        super().__init__(generator, scorer, **common)
        if n is not None and n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.stop = StopRule(target, min_gain)

    def options(self) -> dict:
        return {"n": self.n, "target": self.stop.target, "min_gain": self.stop.min_gain, **super().options()}

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        limited = budget is not None and budget.limited
        n = self.n or (MAX_UNDER_BUDGET if limited else 8)
        scored, events, stopped = [], [], None
        while len(scored) < n:
            nfes_each = scored[0].candidate.nfes if scored else None
            want = self.draw_now(ledger, budget, n - len(scored), nfes_each)
            if scored:
                want = min(want, self.batch_size or want)
                if want == 0:
                    break
            want = self.stop.batch(want, self.batch_size)
            seeds = candidate_seeds(seed, want, first_index=len(scored))
            candidates = self.generate(ledger, prompt, seeds, settings, len(scored), progress=progress)
            scored += self.score(ledger, candidates, prompt, progress)
            stopped = self.stop.reason([v for c in scored if (v := self.value(c)) is not None],
                                       self.stop.batch(n - len(scored), self.batch_size))
            if stopped and len(scored) < n:
                self.record_saving(ledger, budget, n - len(scored), scored[0].candidate.nfes)
                break
            stopped = None
        if limited and budget.nfes is not None and ledger.nfes > budget.nfes:
            events.append({"event": "over_budget", "detail": "the budget is below one candidate's cost; one was made"})
        return Found(scored, events=events, config={"stopped": stopped} if self.stop.active else {})

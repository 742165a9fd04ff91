"""Best-of-N: generate N candidates, score them all, keep the best."""

from __future__ import annotations

from collections.abc import Mapping

from reward_model.interface import Scorer
from t2i_guidance.aggregate import DEFAULT_WEIGHTS, active_dimensions, aggregate
from t2i_guidance.costs import StageTimer, peak_cuda_mb, peak_rss_mb
from t2i_guidance.generator import GenerationSettings, Generator, candidate_seeds
from t2i_guidance.result import Costs, ScoredCandidate, SearchResult, rank_candidates
from t2i_guidance.scoring import score_candidates


class BestOfN:
    """One search strategy, one `__call__`: the random search of the inference-time scaling literature."""

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        weights: Mapping[str, float] | None = None,
        batch_size: int | None = None,
        score_chunk_size: int = 16,
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.dimensions = active_dimensions(self.weights)
        self.batch_size = batch_size
        self.score_chunk_size = score_chunk_size

    def __call__(
        self, prompt: str, n: int, settings: GenerationSettings, seed: int = 0, progress: bool = False
    ) -> SearchResult:
        if n < 1:
            raise ValueError("n must be at least 1")
        timer = StageTimer()
        with timer.stage("total"):
            with timer.stage("generate"):
                candidates = self.generator.generate(
                    prompt, candidate_seeds(seed, n), settings, batch_size=self.batch_size, progress=progress
                )
            with timer.stage("score"):
                table = score_candidates(
                    self.scorer, candidates, prompt, self.dimensions, self.score_chunk_size, progress
                )
            with timer.stage("rank"):
                scored = [
                    ScoredCandidate(c, table[c.id], aggregate(table[c.id], self.weights)) for c in candidates
                ]
                rank_candidates(scored)
        all_scores = [s for c in scored for s in c.scores.values()]
        costs = Costs(
            nfes=sum(c.nfes for c in candidates),
            scorer_requests=sum(not s.cached for s in all_scores),
            scorer_cache_hits=sum(s.cached for s in all_scores),
            generated_tokens=sum(s.generated_tokens for s in all_scores),
            seconds=timer.seconds,
            peak_rss_mb=peak_rss_mb(),
            peak_cuda_mb=peak_cuda_mb(),
        )
        config = {"n": n, "seed": seed, "settings": vars(settings), "batch_size": self.batch_size}
        return SearchResult(prompt, "best-of-n", self.weights, scored, costs, config)

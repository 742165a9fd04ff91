"""The strategy interface and what every strategy shares: metered generation, scoring and selection.

A strategy is constructed with a generator, a scorer, the weights and its own options, and called once
per prompt: `strategy(prompt, settings, seed=0, budget=None, progress=False) -> SearchResult`. The base
class's call opens the ledger, runs the strategy's `search` and assembles the result; a strategy
implements only `search`.

`BestOfN` is here too: the plain strategy the template is shaped around, and the first stage of the
cascade. It generates N candidates, scores them all and keeps the best (random search over initial
noises). With `target` or `min_gain` (see `StopRule` in `t2i_guidance/ledger.py`) it stops early:
candidates are drawn one at a time (or `batch_size` at a time) and drawing stops at the first one whose
value reaches the target, or once another batch is not expected to gain `min_gain`; the ledger's `saved`
says what was not spent.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from reward_model.interface import DimensionScore, ImageItem, Scorer, ScoreStatus, ScoreTable
from t2i_guidance.generator import Candidate, GenerationSettings, Generator, candidate_seeds
from t2i_guidance.ledger import Budget, CostLedger, StopRule
from t2i_guidance.result import (
    DEFAULT_WEIGHTS,
    ScoredCandidate,
    SearchResult,
    active_dimensions,
    aggregate,
    lower_confidence_bound,
    rank_candidates,
)

SELECTIONS = ("mean", "lcb")


_GIVEN_BY_THE_CORE = ("self", "generator", "scorer")
_CATCH_ALL = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def strategy_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named constructor parameters of a strategy class and of its parents (the nearest class's
    declaration wins), without self, generator, scorer and the `**common` catch-alls."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if name not in _GIVEN_BY_THE_CORE and parameter.kind not in _CATCH_ALL:
                found.setdefault(name, parameter)
    return found


def candidates_at_most(cls: type, options: Mapping[str, Any]) -> int | None:
    """At most how many candidates (seeds seed, seed + 1, ...) a run of `cls` with `options` draws, the
    class defaults filling in what `options` leaves out; None when a budget decides it. The count comes
    from the class's `most_candidates(values)` (best-of-N's rule, `n`, by default)."""
    values = {name: p.default for name, p in strategy_parameters(cls).items() if p.default is not p.empty}
    values.update(options)
    rule = getattr(cls, "most_candidates", None)
    return rule(values) if rule is not None else values.get("n")


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


@dataclass
class Found:
    """What a strategy's search returns: every scored candidate and what happened on the way."""

    scored: list[ScoredCandidate]
    rounds: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)  # what result.json's config adds, e.g. why the search stopped


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

    def __call__(
        self,
        prompt: str,
        settings: GenerationSettings,
        *,
        seed: int = 0,
        budget: Budget | None = None,
        progress: bool = False,
    ) -> SearchResult:
        ledger = CostLedger()
        found = self.search(prompt, settings, seed, budget, ledger, progress)
        with ledger.stage("rank"):
            rank_candidates(found.scored, self.selection)
        config = {"seed": seed, "settings": vars(settings), "budget": budget.to_dict() if budget else None,
                  **self.options(), **found.config}
        return SearchResult(prompt, self.name, self.weights, found.scored, ledger.finish(), config,
                            selection=self.selection, rounds=found.rounds, events=found.events)

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        """Draw, score and return the candidates (the strategy's own part)."""
        raise NotImplementedError

    @staticmethod
    def most_candidates(options: dict) -> int | None:
        """At most how many candidates a run with these options draws (None: the budget decides)."""
        return options.get("n")

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

    def improves(self, candidate: ScoredCandidate | None, best: ScoredCandidate | None) -> bool:
        """Whether a round's best `candidate` (None: nothing scored) beats the `best` so far."""
        return candidate is not None and (best is None or self.value(candidate) > self.value(best))

    def draw_now(self, ledger: CostLedger, budget: Budget | None, wanted: int, nfes_each: float | None) -> int:
        """How many of `wanted` more candidates to draw next: all of them without a budget; under one, a
        single candidate first (`nfes_each` None: its cost is not known yet), then what the budget affords."""
        if nfes_each is None:
            return 1 if budget is not None and budget.limited else wanted
        return self.affordable(ledger, budget, wanted, nfes_each)

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

    def record_saving(self, ledger: CostLedger, budget: Budget | None, left: int, nfes_each: float) -> None:
        """Put in the ledger what stopping early did not spend: the `left` candidates a fixed-N run would
        still have drawn, or fewer when the budget would not have afforded them."""
        left = self.affordable(ledger, budget, left, nfes_each)
        ledger.add_saved("candidates", left)
        ledger.add_saved("nfes", left * nfes_each)


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

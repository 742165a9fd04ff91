"""Iterative prompt refinement: rounds of generate -> score -> rewrite, best image over ALL rounds.

Round 0 draws the user's prompt. After each round a rewriter proposes the next prompt from the round's
best candidates (scores and rationales) and the history. Every candidate, whatever prompt drew it, is
judged against the ORIGINAL prompt, so refinement cannot drift from what the user asked. A rewrite that
is empty, runs away, leaves the generator's grammar (its pipeline family's `rewrite_problem`) or drops an
element of the original is rejected and logged; that round redraws the best prompt so far with fresh seeds, so compute is never
wasted on a bad proposal. The loop stops at the target score, when (`min_gain`) another round is not expected to beat
the best by that much, after `patience` rounds without gain, at `max_rounds`, or when the budget cannot
pay for another candidate. Seeds continue across rounds
(candidate k of the run uses seed + k), so round 0 is exactly best-of-N's first candidates.

With `round_seeds="fixed"` every round draws round 0's seeds again (candidate j of a round uses seed + j),
so only the prompt changes between rounds and a gain is the rewrite's, not fresh noise's. The one
exception is the redraw after a rejected rewrite: the same prompt with the same seeds would repeat the
same pictures, so that round draws fresh seeds (those after every seed drawn so far) and says so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from t2i_guidance.generator import GenerationSettings, candidate_seeds
from t2i_guidance.ledger import Budget, CostLedger, StopRule
from t2i_guidance.registries import REWRITERS, family_function, pipeline_family
from t2i_guidance.result import ScoredCandidate
from t2i_guidance.search.base import Found, Search
from t2i_guidance.search.rewriting import (
    CandidateFeedback,
    Rewrite,
    Rewriter,
    RewriteRequest,
    build_rewriter,
    check_rewrite,
)


class PromptRefinement(Search):
    name = "refine"

    @staticmethod
    def most_candidates(options: dict) -> int:
        return options["per_round"] * options["max_rounds"]

    def __init__(
        self,
        generator,
        scorer,
        rewriter: Rewriter | str | None = None,
        per_round: int = 4,
        max_rounds: int = 4,
        patience: int = 2,
        target: float | None = None,
        min_gain: float | None = None,
        feedback: int = 2,
        round_seeds: str = "fresh",
        **common: Any,
    ) -> None:
        super().__init__(generator, scorer, **common)
        if per_round < 1 or max_rounds < 1 or patience < 1 or feedback < 1:
            raise ValueError("per_round, max_rounds, patience and feedback must be at least 1")
        if round_seeds not in ("fresh", "fixed"):
            raise ValueError(f"round_seeds must be 'fresh' or 'fixed', got {round_seeds!r}")
        family_name = type(generator.pipeline).__name__
        if rewriter is None:  # the rewriter the generator's plugin ships for it
            family = pipeline_family(family_name)
            rewriter = family.default_rewriter if family is not None else None
            if rewriter is None:
                raise ValueError(f"refine needs a rewriter for a {family_name}: {', '.join(REWRITERS.names())}")
        self.rewriter = build_rewriter(rewriter) if isinstance(rewriter, str) else rewriter
        self.per_round = per_round
        self.max_rounds = max_rounds
        self.patience = patience
        self.stop = StopRule(target, min_gain)
        self.target = target
        self.feedback = feedback
        self.round_seeds = round_seeds
        self.fixed_seeds = round_seeds == "fixed"
        # A generator that draws only its own grammar holds rewrites to it.
        self.rewrite_problem = family_function(family_name, "rewrite_problem")

    def options(self) -> dict:
        return {"per_round": self.per_round, "max_rounds": self.max_rounds, "patience": self.patience,
                "target": self.target, "min_gain": self.stop.min_gain, "rewriter": self.rewriter.name, "round_seeds": self.round_seeds,
                "grammar_checked": self.rewrite_problem is not None,
                **super().options()}

    def _feedback(self, scored: list[ScoredCandidate]) -> list[CandidateFeedback]:
        ranked = sorted((c for c in scored if self.value(c) is not None), key=lambda c: -self.value(c))
        picked = ranked[: self.feedback] or scored[:1]  # nothing scored: show what failed and why
        return [
            CandidateFeedback(
                id=c.id, prompt=c.candidate.prompt, value=self.value(c),
                scores={d: s.score for d, s in c.scores.items()},
                rationales={d: s.rationale or s.error or "" for d, s in c.scores.items()},
            )
            for c in picked
        ]

    def _propose(self, request: RewriteRequest, events: list[dict], round_index: int) -> Rewrite | None:
        """The rewriter's proposal if it passes the checks, else None (logged)."""
        try:
            proposal = self.rewriter.rewrite(request)
        except Exception as exc:  # a broken rewriter must not end the run
            events.append({"event": "rewrite_rejected", "round": round_index,
                           "reason": f"the rewriter failed: {type(exc).__name__}: {exc}", "proposal": None})
            return None
        reason = check_rewrite(request.original_prompt, proposal, self.rewrite_problem)
        if reason is not None:
            text = proposal.prompt if proposal is not None and isinstance(proposal.prompt, str) else None
            events.append({"event": "rewrite_rejected", "round": round_index, "reason": reason,
                           "proposal": text[:500] if text else text})
            return None
        # What the rewriter leaves unsaid stays as it was.
        return replace(
            proposal,
            prompt=" ".join(proposal.prompt.split()),
            negative_prompt=proposal.negative_prompt if proposal.negative_prompt is not None else request.negative_prompt,
            guidance_scale=proposal.guidance_scale if proposal.guidance_scale is not None else request.guidance_scale,
        )

    def search(self, prompt: str, settings: GenerationSettings, seed: int, budget: Budget | None,
               ledger: CostLedger, progress: bool) -> Found:
        limited = budget is not None and budget.limited
        scored: list[ScoredCandidate] = []
        rounds: list[dict] = []
        events: list[dict] = []
        current = Rewrite(prompt=prompt, negative_prompt=settings.negative_prompt,
                          guidance_scale=settings.guidance_scale)
        best: ScoredCandidate | None = None
        best_rewrite = current
        without_gain = 0
        stop = "max_rounds"
        fresh_seeds = 0  # seeds after round 0's drawn by redraws (fixed round seeds only)
        redraw = False
        for round_index in range(self.max_rounds):
            round_settings = replace(settings, negative_prompt=current.negative_prompt,
                                     guidance_scale=current.guidance_scale)
            round_scored: list[ScoredCandidate] = []
            # Fixed seeds: candidate j of every round uses seed + j, except a redraw's (see the docstring).
            seed_offset = (self.per_round + fresh_seeds if redraw else 0) if self.fixed_seeds else len(scored)
            while len(round_scored) < self.per_round:
                drawn = scored or round_scored
                want = self.draw_now(ledger, budget, self.per_round - len(round_scored),
                                     drawn[0].candidate.nfes if drawn else None)
                if want == 0:
                    break
                first = len(scored) + len(round_scored)
                seeds = candidate_seeds(seed, want, first_index=seed_offset + len(round_scored))
                candidates = self.generate(
                    ledger, current.prompt, seeds, round_settings,
                    first, progress=progress, extra={"round": round_index},
                )
                round_scored += self.score(ledger, candidates, prompt, progress)  # the ORIGINAL prompt
            if not round_scored:
                stop = "budget"
                break
            scored += round_scored
            if self.fixed_seeds and redraw:
                fresh_seeds += len(round_scored)
            round_best = self.best_of(round_scored)
            gained = self.improves(round_best, best)
            if gained:
                best, best_rewrite, without_gain = round_best, current, 0
            else:
                without_gain += 1
            rounds.append({
                "round": round_index, "prompt": current.prompt, "negative_prompt": current.negative_prompt,
                "guidance_scale": current.guidance_scale, "note": current.note,
                "candidates": [c.id for c in round_scored], "seeds": [c.candidate.seed for c in round_scored],
                "best": round_best.id if round_best else None,
                "best_value": self.value(round_best) if round_best else None,
                "improved": gained,
            })
            # The target, or (min_gain) a next round of per_round candidates not expected to beat the best
            # by that much under a normal fit of every score so far (the rewrite's own effect is not modelled).
            why = self.stop.reason([v for c in scored if (v := self.value(c)) is not None], self.per_round)
            if why is not None:
                stop = why
                break
            if without_gain >= self.patience:
                stop = "no_gain"
                break
            if round_index == self.max_rounds - 1:
                break
            if limited and self.affordable(ledger, budget, 1, scored[0].candidate.nfes) == 0:
                stop = "budget"
                break
            request = RewriteRequest(
                original_prompt=prompt, current_prompt=current.prompt, best=self._feedback(round_scored),
                history=[{"round": r["round"], "prompt": r["prompt"], "best_value": r["best_value"]} for r in rounds],
                negative_prompt=current.negative_prompt, guidance_scale=current.guidance_scale,
            )
            proposal = self._propose(request, events, round_index + 1)
            # A rejected proposal redraws the best prompt so far with fresh seeds.
            redraw = proposal is None
            current = proposal if proposal is not None else replace(best_rewrite, note="redraw after a rejected rewrite")
        return Found(scored, rounds, events, config={"stopped": stop})

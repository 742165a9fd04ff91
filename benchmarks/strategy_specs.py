"""Strategies the benchmark runner compares, named `STRATEGY[,OPTION=VALUE...][:PRESET]`.

- `unguided:embedded`: one image per prompt, no scorer.
- `best-of-4:embedded`: shorthand for `best-of-n,n=4:embedded`.
- every strategy of the search registry (`t2i_guidance.search.available_strategies()`), built by the
  search package's own run builder (`plan_run` / `build_run`): `refine:embedded`,
  `refine,per_round=2,max_rounds=2:embedded`, `zero-order,n=2,neighbours=2,rounds=2:embedded`,
  `best-of-n,budget=160:embedded` (a budget in NFEs; `budget=30s` in seconds).

The preset defaults to `embedded`. An option that names a field of the run builder's `RunRequest`
(`budget`, `scorer`, `scorer_mode`, `selection`, `weights`, `steps`, ...) goes there; every other option is
the strategy's own keyword argument, checked by `plan_run` before anything loads. A strategy registered
later needs no change here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

_NAME = re.compile(r"^(?P<strategy>[a-z0-9][a-z0-9_-]*)(?P<options>(?:,[a-z_]+=[^,:]*)*)(?::(?P<preset>.+))?$")
_BEST_OF = re.compile(r"^best-of-(\d+)$")
# Request fields a strategy name must not set: the runner owns the prompt, the seed and the device.
_RUNNER_OWNED = {"preset", "strategy", "strategy_options", "prompt", "seed", "device"}


@dataclass(frozen=True)
class StrategySpec:
    """What a strategy name means, resolved against its preset; nothing is loaded."""

    name: str  # the canonical name, `...:PRESET`: what rows and the config record
    kind: str  # "unguided" or the search registry's name, e.g. "best-of-n", "refine"
    n: int | None  # at most how many candidates one image draws, where the options say (None: unknown)
    preset: str
    options: dict = field(default_factory=dict, compare=False)
    plan: Any = field(default=None, compare=False)  # the search package's RunPlan (None when unguided)

    @property
    def guided(self) -> bool:
        return self.kind != "unguided"


def _value(text: str) -> Any:
    """"4" -> 4, "0.5" -> 0.5, "true" -> True, "world" -> "world"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_strategy(name: str) -> StrategySpec:
    """A checked StrategySpec; ValueError (one line) naming the problem otherwise. Loads no model."""
    from t2i_guidance.ledger import parse_budget
    from t2i_guidance.registries import DEFAULT_PRESET, load_preset
    from t2i_guidance.search import available_strategies, strategy_class
    from t2i_guidance.search.base import candidates_at_most
    from t2i_guidance.search.run_builder import RunError, RunRequest, plan_run

    text = name.strip()
    match = _NAME.match(text)
    if not match:
        raise ValueError(f"bad strategy {name!r}: expected STRATEGY[,OPTION=VALUE...][:PRESET], e.g. "
                         "unguided:embedded, best-of-4:embedded or refine,per_round=2,max_rounds=2:embedded")
    kind, preset = match.group("strategy"), match.group("preset") or DEFAULT_PRESET
    options = {}
    for pair in filter(None, match.group("options").split(",")):
        key, _, value = pair.partition("=")
        if key in options:
            raise ValueError(f"bad strategy {name!r}: option {key} is given twice")
        options[key] = _value(value)
    load_preset(preset)  # KeyError for an unknown preset, before any model loads
    canonical = f"{text.split(':', 1)[0]}:{preset}"
    if kind == "unguided":
        if options:
            raise ValueError(f"bad strategy {name!r}: unguided takes no options")
        return StrategySpec(canonical, "unguided", 1, preset)
    best_of = _BEST_OF.match(kind)
    if best_of:
        if int(best_of.group(1)) < 2:
            raise ValueError(f"bad strategy {name!r}: best-of-N needs N >= 2")
        kind, options = "best-of-n", {"n": int(best_of.group(1)), **options}
    if kind not in available_strategies():
        raise ValueError(f"bad strategy {name!r}: unknown strategy {kind!r}; choose from unguided, best-of-N, "
                         f"{', '.join(available_strategies())}")
    request_fields = {f.name for f in fields(RunRequest)} - _RUNNER_OWNED
    owned = sorted(set(options) & _RUNNER_OWNED)
    if owned:
        raise ValueError(f"bad strategy {name!r}: the runner sets {', '.join(owned)}")
    request = RunRequest(preset=preset, strategy=kind)
    strategy_options = {}
    for key, value in options.items():
        if key == "budget":
            request.budget = parse_budget(str(value))
        elif key in request_fields:
            setattr(request, key, value)
        else:
            strategy_options[key] = value
    if kind in ("best-of-n", "cascade") and "n" not in strategy_options and request.budget is not None:
        strategy_options["n"] = None  # the budget decides how many
    request.strategy_options = strategy_options
    try:
        plan = plan_run(request)
    except RunError as exc:
        raise ValueError(f"bad strategy {name!r}: {exc}") from None
    bound = candidates_at_most(strategy_class(kind), plan.strategy_options)
    return StrategySpec(canonical, kind, bound, preset, options, plan)


def guides_of(spec: StrategySpec) -> list[str]:
    """Every registered scorer whose verdict steers the search (a cascade has two); empty when unguided."""
    if not spec.guided:
        return []
    cheap = [spec.plan.cheap[0]] if spec.plan.cheap else []
    return list(dict.fromkeys([spec.plan.scorer_name, *cheap]))


def guide_of(spec: StrategySpec) -> str | None:
    """The main registered scorer that picks among candidates, or None for an unguided strategy."""
    guides = guides_of(spec)
    return guides[0] if guides else None


@dataclass
class Outcome:
    """One image a strategy produced, with what it cost and how the search got there."""

    image: Any
    seeds: list[int]  # every candidate's seed, in candidate order
    pick: int  # index into `seeds` of the candidate kept (-1: none could be scored)
    guide_score: float | None  # the guide's selection value for the pick (None when unguided)
    costs: dict = field(default_factory=dict)  # the ledger's counts: nfes, candidates, scorer requests, tokens
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)  # the ledger's wall seconds per stage
    search: dict = field(default_factory=dict)  # the picked prompt, rounds, events, stop reason


SearchFn = Callable[[str, int], Outcome]  # (prompt, first seed) -> Outcome


def ledger_costs(ledger: Any) -> dict:
    """The deterministic part of a CostLedger (counts, not seconds or memory): rows compare on it."""
    return {"nfes": ledger.nfes, "candidates": ledger.candidates, "scorer_requests": ledger.scorer_requests,
            "scorer_cache_hits": ledger.scorer_cache_hits, "generated_tokens": ledger.generated_tokens,
            "saved": dict(ledger.saved), "by_scorer": dict(ledger.by_scorer)}


def make_search(spec: StrategySpec, generator: Any, scorer: Any | None) -> SearchFn:
    """(prompt, first seed) -> Outcome. Guided strategies run through the search package's run builder."""
    if not spec.guided:
        from t2i_guidance.registries import load_preset

        settings = load_preset(spec.preset).generation_settings()

        def unguided(prompt: str, seed: int) -> Outcome:
            start = time.perf_counter()
            (candidate,) = generator.generate(prompt, [seed], settings)
            costs = {"nfes": candidate.nfes, "candidates": 1, "scorer_requests": 0, "scorer_cache_hits": 0,
                     "generated_tokens": 0, "saved": {}, "by_scorer": {}}
            seconds = time.perf_counter() - start
            return Outcome(candidate.image, [seed], 0, None, costs, seconds, {"generate": seconds},
                           {"picked_prompt": prompt})

        return unguided

    from t2i_guidance.search.run_builder import build_run

    run = build_run(spec.plan, generator=generator, scorer=scorer)

    def search(prompt: str, seed: int) -> Outcome:
        # Candidate k of every registered strategy is drawn from seed + k, and each is judged against
        # `prompt`, the user's: a refinement round's rewritten prompt only draws.
        result = run(prompt, seed=seed)
        candidates = sorted(result.candidates, key=lambda c: c.candidate.index)
        seeds = [c.candidate.seed for c in candidates]
        costs, stages = ledger_costs(result.costs), dict(result.costs.seconds)
        best = result.best
        info = {"rounds": [{k: r[k] for k in ("round", "prompt", "guidance_scale", "best_value", "improved")}
                           for r in result.rounds],
                "events": result.events, "stopped": result.config.get("stopped")}
        if best is None:  # nothing could be scored: no pick, recorded as such by the runner
            return Outcome(None, seeds, -1, None, costs, stages.get("total", 0.0), stages, info)
        info["picked_prompt"] = best.candidate.prompt
        pick = next(i for i, c in enumerate(candidates) if c is best)
        return Outcome(best.candidate.image, seeds, pick, best.selection_value(result.selection), costs,
                       stages.get("total", 0.0), stages, info)

    return search

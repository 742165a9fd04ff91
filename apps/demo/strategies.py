"""The strategies the page offers, read from the search registry: their names and words for people,
and the settings each one shows as a slider."""

from __future__ import annotations

import inspect
from functools import cache

from apps.demo.limits import DEMO_MAX_N
from t2i_guidance.search import available_strategies, strategy_class

# Words for the strategies and settings the demo knows; a strategy registered later appears anyway, under
# its own name, with a slider for each whole-number setting it takes (see `strategy_settings`).
STRATEGY_WORDS = {
    "best-of-n": ("Best of N", "Draw N pictures from different seeds and keep the one the judge likes best."),
    "refine": ("Prompt refinement", "Rounds of drawing, judging and rewriting the prompt from the judge's "
               "reasons; every picture is judged against YOUR prompt and the best of all rounds wins."),
    "zero-order": ("Noise search", "Draw a first set, then look for better pictures near the best one's "
                   "starting noise, round after round."),
    "cascade": ("Cascade", "A quick first look (aesthetics only) at every picture; only the best few get "
                "the full judgement. Cheaper, but can drop a picture that matches the prompt better."),
}
SETTINGS = {  # name: (label, lowest, highest, default)
    "n": ("How many candidates", 1, DEMO_MAX_N, 8),
    "per_round": ("Pictures per round", 1, 8, 4),
    "max_rounds": ("Rounds at most", 1, 4, 3),
    "neighbours": ("Neighbours per round", 1, 8, 4),
    "rounds": ("Rounds", 1, 4, 3),
    "keep": ("Judged in full (the best of the quick look)", 1, 16, 2),
}
HIDDEN_SETTINGS = {"patience", "feedback", "batch_size", "score_chunk_size"}  # sensible defaults; CLI only


def strategy_names() -> list[str]:
    """Every registered strategy, the demo's known ones first."""
    names = available_strategies()
    return [n for n in STRATEGY_WORDS if n in names] + [n for n in names if n not in STRATEGY_WORDS]


def strategy_label(name: str) -> str:
    return STRATEGY_WORDS.get(name, (name.replace("-", " ").capitalize(), ""))[0]


def strategy_help(name: str) -> str:
    words = STRATEGY_WORDS.get(name)
    if words:
        return words[1]
    doc = inspect.getdoc(strategy_class(name)) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def strategy_init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Every `__init__` parameter of a strategy class and its bases, the nearest definition first.
    (The demo's copy of the run builder's introspection, until both use one core function.)"""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            for name, parameter in inspect.signature(klass.__init__).parameters.items():
                found.setdefault(name, parameter)
    return found


@cache
def strategy_settings(name: str) -> tuple[str, ...]:
    """The settings the demo shows for a strategy: those of SETTINGS its constructor takes, plus any other
    whole-number setting with a positive default (a newly registered strategy's own knobs)."""
    shown = []
    for key, parameter in strategy_init_parameters(strategy_class(name)).items():
        default = parameter.default
        if key in HIDDEN_SETTINGS:
            continue
        if key in SETTINGS or (isinstance(default, int) and not isinstance(default, bool) and default >= 1):
            shown.append(key)
    return tuple(sorted(shown, key=lambda k: list(SETTINGS).index(k) if k in SETTINGS else len(SETTINGS)))


def setting_spec(key: str) -> tuple[str, int, int, int]:
    """(label, lowest, highest, default) of a setting; unknown ones from the strategy's own default."""
    if key in SETTINGS:
        return SETTINGS[key]
    defaults = [p.default for n in strategy_names() for k, p in strategy_init_parameters(strategy_class(n)).items()
                if k == key and isinstance(p.default, int)]
    default = defaults[0] if defaults else 1
    return key.replace("_", " ").capitalize(), 1, max(8, 2 * default), default


def all_settings() -> list[str]:
    """Every setting of every registered strategy, once, in a stable order (one slider each on the page)."""
    keys: list[str] = []
    for name in strategy_names():
        keys += [k for k in strategy_settings(name) if k not in keys]
    return keys


def candidates_at_most(options: dict[str, int]) -> int:
    """At most how many pictures a run with these settings draws (the demo caps it; seeds seed..seed+k).
    (The demo's copy of the run builder's rule, until both use one core function.)"""
    if "per_round" in options and "max_rounds" in options:
        return options["per_round"] * options["max_rounds"]
    if "neighbours" in options and "rounds" in options:
        return options.get("n", 1) + options["neighbours"] * (options["rounds"] - 1)
    return options.get("n", 1)

"""The strategies the page offers, read from the search registry: their names and words for people,
and the settings each one shows as a slider."""

from __future__ import annotations

import inspect
from functools import cache

from apps.demo.limits import DEMO_MAX_N
from t2i_guidance.search import available_strategies, strategy_class
from t2i_guidance.search.base import candidates_at_most, strategy_parameters

# Words for the strategies and settings the demo knows; a strategy registered later appears anyway, under
# its own name, with a slider for each whole-number setting it takes (see `strategy_settings`).
STRATEGY_WORDS = {
    "best-of-n": ("Keep the best of several", "Draw several pictures from different seeds and keep the one the judge likes best."),
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


@cache
def strategy_settings(name: str) -> tuple[str, ...]:
    """The settings the demo shows for a strategy: those of SETTINGS its constructor takes, plus any other
    whole-number setting with a positive default (a newly registered strategy's own knobs)."""
    shown = []
    for key, parameter in strategy_parameters(strategy_class(name)).items():
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
    defaults = [p.default for n in strategy_names() for k, p in strategy_parameters(strategy_class(n)).items()
                if k == key and isinstance(p.default, int)]
    default = defaults[0] if defaults else 1
    return key.replace("_", " ").capitalize(), 1, max(8, 2 * default), default


def all_settings() -> list[str]:
    """Every setting of every registered strategy, once, in a stable order (one slider each on the page)."""
    keys: list[str] = []
    for name in strategy_names():
        keys += [k for k in strategy_settings(name) if k not in keys]
    return keys


def pictures_at_most(name: str, options: dict[str, int]) -> int:
    """At most how many pictures a run of strategy `name` with these settings draws (the core's rule; a run
    whose budget decides counts as the demo's cap)."""
    return candidates_at_most(strategy_class(name), options) or DEMO_MAX_N

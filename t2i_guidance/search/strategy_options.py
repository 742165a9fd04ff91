"""What a strategy class takes as options, and at most how many candidates it draws with them: read from
its constructors, so a newly registered strategy needs no entry anywhere else."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

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

"""Alignment: does the picture show what the prompt asks for?

The prompt is parsed by the world's grammar and split into elements — per object: its colour is
present, its shape, its size when the prompt names one; then the position or relation, the background
when named, and "nothing else" (no extra object; an empty picture does not earn it). Score = 5 x the
fraction of elements met; the unmet ones are returned as sentences. Prompts of the extended grammar
(counts, objects without colour, "and"; see captions.parse_extended_prompt) are judged by
`judge_extended_alignment`: per object group, exactly the count (or at least one for "a"), then the same
position / relation / background / nothing-else elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from t2i_guidance.world.captions import POSITION_WORDS, RELATION_WORDS, PromptSpec, parse_prompt
from t2i_guidance.world.oracles.perception import Observation, SeenObject, observe, position_phrase


@dataclass
class AlignmentResult:
    score: float
    met: list[str]
    unmet: list[str]
    seen: list[str]


POSITION_CHECKS = {
    "left": lambda x, y: x < 0.4 and abs(y - 0.5) < 0.25,
    "right": lambda x, y: x > 0.6 and abs(y - 0.5) < 0.25,
    "top": lambda x, y: y < 0.4 and abs(x - 0.5) < 0.25,
    "bottom": lambda x, y: y > 0.6 and abs(x - 0.5) < 0.25,
    "center": lambda x, y: abs(x - 0.5) < 0.12 and abs(y - 0.5) < 0.12,
}


def relation_holds(relation: str, first: SeenObject, second: SeenObject) -> bool:
    """`first <relation> second`, read from centroids: the main axis must dominate the other one."""
    dx, dy = second.cx - first.cx, second.cy - first.cy
    main, cross = {"left_of": (dx, dy), "right_of": (-dx, dy), "above": (dy, dx), "below": (-dy, dx)}[relation]
    return main > 0.08 and main > abs(cross)


def pick_requested(request, objects: Sequence[SeenObject]) -> SeenObject | None:
    """The seen object that best answers a request: its colour, then its shape, then its size."""
    same_colour = [o for o in objects if o.colour == request.colour]
    if not same_colour:
        return None
    return max(same_colour, key=lambda o: (o.shape == request.shape, request.size in (None, o.size), o.area))


def judge_placement(spec: PromptSpec, picked: Sequence[SeenObject | None]) -> tuple[bool, str] | None:
    """Whether the prompt's relation (or single object's position) holds for the objects picked for its
    requests, with the sentence that says so; None when the prompt asks for neither."""
    if spec.relation is not None:
        first, second = picked[0], picked[1]
        words = RELATION_WORDS[spec.relation][0]
        a, b = spec.objects[0].phrase(), spec.objects[1].phrase()
        if first is None or second is None:
            return False, f"the {a} cannot be {words} the {b}: an object is missing"
        if relation_holds(spec.relation, first, second):
            return True, f"the {a} is {words} the {b}"
        return False, f"the prompt asks for the {a} {words} the {b} but it is not"
    if spec.position is not None:
        found, words, a = picked[0], POSITION_WORDS[spec.position][0], spec.objects[0].phrase()
        if found is None:
            return False, f"the {a} cannot be {words}: it is missing"
        if POSITION_CHECKS[spec.position](found.cx, found.cy):
            return True, f"the {a} is {words}"
        return False, f"the prompt asks for the {a} {words} but it is {position_phrase(found.cx, found.cy)}"
    return None


def judge_alignment(spec: PromptSpec, seen: Observation) -> tuple[list[str], list[str]]:
    """(met, unmet) elements of the prompt against what is seen, as sentences."""
    checks = alignment_checks(spec, seen)
    return [s for ok, s in checks if ok], [s for ok, s in checks if not ok]


def alignment_checks(spec: PromptSpec, seen: Observation) -> list[tuple[bool, str]]:
    """Every element of the prompt checked in the prompt's own order: (met, the sentence that says so)."""
    if spec.is_extended:
        return _extended_checks(spec, seen)
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, yes: str, no: str) -> None:
        checks.append((ok, yes if ok else no))

    picked = []
    for request in spec.objects:
        found = pick_requested(request, seen.objects)
        picked.append(found)
        wanted = request.phrase()
        if found is None:
            others = [o.describe() for o in seen.objects if o.shape == request.shape]
            hint = f" (seen instead: {others[0]})" if others else ""
            checks.append((False, f"the prompt asks for a {wanted} but no {request.colour} object is visible{hint}"))
            checks.append((False, f"no {request.colour} {request.shape} is visible"))
            if request.size:
                checks.append((False, f"no {request.size} {request.colour} object is visible"))
            continue
        checks.append((True, f"a {request.colour} object is visible"))
        check(found.shape == request.shape, f"the {request.colour} object is a {request.shape}",
              f"the prompt asks for a {request.colour} {request.shape} but the {request.colour} object is a "
              f"{found.shape}")
        if request.size:
            check(found.size == request.size, f"the {request.colour} {found.shape} is {request.size}",
                  f"the prompt asks for a {request.size} {request.colour} {request.shape} but it is {found.size}")
    _placement_and_rest(spec, seen, picked, picked, checks)
    return checks


def requested_pairs(spec: PromptSpec, seen: Observation) -> list[tuple[str, str | None, int]] | None:
    """Each requested object in the prompt's order beside what answers it: (the asked phrase, the seen
    object's description or None, how many of `alignment_checks`' checks are its own). None for the
    extended grammar, whose checks count groups instead of comparing one object with one request."""
    if spec.is_extended:
        return None
    pairs = []
    for request in spec.objects:
        found = pick_requested(request, seen.objects)
        pairs.append((request.phrase(), found.describe() if found else None, 3 if request.size else 2))
    return pairs


def compared_checks(spec: PromptSpec, seen: Observation) -> list[tuple[str, str, str, bool]] | None:
    """`alignment_checks` as comparisons, in the same order and with the same verdicts: (the element, what
    the prompt asks, what is seen, met), e.g. ("size", "large", "small", False). The asked and the seen
    value come before the verdict, so a rationale written this way states both before it decides. None
    for the extended grammar (its checks count groups)."""
    if spec.is_extended:
        return None
    checks = alignment_checks(spec, seen)
    rows: list[tuple[str, str, str]] = []
    picked = [pick_requested(request, seen.objects) for request in spec.objects]
    for request, found in zip(spec.objects, picked, strict=True):
        rows.append(("colour", request.colour, found.colour if found else "none"))
        rows.append(("shape", request.shape, found.shape if found else "none"))
        if request.size:
            rows.append(("size", request.size, found.size if found else "none"))
    if spec.relation is not None:
        (a, b), words = (o.phrase() for o in spec.objects), RELATION_WORDS[spec.relation][0]
        where = "an object is missing" if None in picked else ", ".join(
            f"the {o.colour} {o.shape} {position_phrase(o.cx, o.cy)}" for o in picked[:2])
        rows.append(("placement", f"the {a} {words} the {b}", where))
    elif spec.position is not None:
        found = picked[0]
        rows.append(("position", POSITION_WORDS[spec.position][0],
                     position_phrase(found.cx, found.cy) if found else "nothing"))
    if spec.background is not None:
        rows.append(("background", spec.background, seen.background))
    extra = [o for o in seen.objects if o not in picked]
    if extra or any(found is not None for found in picked):
        rows.append(("other objects", "none", ", ".join(o.describe() for o in extra) or "none"))
    else:
        rows.append(("requested objects", "some", "none"))
    if len(rows) != len(checks):
        raise AssertionError(f"{len(rows)} comparisons for {len(checks)} checks")  # the two orders drifted
    return [(*row, ok) for row, (ok, _) in zip(rows, checks, strict=True)]


def _placement_and_rest(spec: PromptSpec, seen: Observation, firsts: Sequence[SeenObject | None],
                        picked: Sequence[SeenObject | None], checks: list[tuple[bool, str]]) -> None:
    """The elements both grammars share: position or relation, background, nothing else."""
    placement = judge_placement(spec, firsts)
    if placement is not None:
        checks.append(placement)
    if spec.background is not None:
        ok = seen.background == spec.background
        checks.append((ok, f"the background is {spec.background}" if ok else
                       f"the prompt asks for a {spec.background} background but it is {seen.background}"))
    extra = [o for o in seen.objects if o not in picked]
    if extra:
        checks.append((False, "there is an object the prompt does not ask for: "
                       + ", ".join(o.describe() for o in extra)))
    elif all(found is None for found in picked):  # an empty picture earns nothing for being empty
        checks.append((False, "the picture shows none of the requested objects"))
    else:
        checks.append((True, "nothing else is in the picture"))


def request_matches(request, seen: SeenObject) -> bool:
    """The seen object is of the requested kind: its shape, and its colour and size where named."""
    return seen.shape == request.shape and request.colour in (None, seen.colour) and request.size in (None, seen.size)


def judge_extended_alignment(spec: PromptSpec, seen: Observation) -> tuple[list[str], list[str]]:
    """(met, unmet) for the extended grammar: per object group, the number of objects of its kind (exactly
    the count for "two red circles", at least one for "a circle"); then the position or relation, the
    background when named, and nothing else in the picture."""
    checks = _extended_checks(spec, seen)
    return [s for ok, s in checks if ok], [s for ok, s in checks if not ok]


def _extended_checks(spec: PromptSpec, seen: Observation) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []
    picked: list[SeenObject] = []  # every seen object that answers some group
    firsts: list[SeenObject | None] = []
    for request in spec.objects:
        found = [o for o in seen.objects if request_matches(request, o) and o not in picked]
        wanted = request.counted_phrase()
        if request.count > 1:
            ok = len(found) == request.count
            checks.append((ok, f"{wanted} are visible" if ok else
                           f"the prompt asks for {wanted} but {len(found)} are visible"))
            picked.extend(found)
        elif found:
            checks.append((True, f"{wanted} is visible"))
            picked.append(found[0])  # objects are sorted by area: the largest answers
        else:
            others = [o.describe() for o in seen.objects if o.shape == request.shape]
            hint = f" (seen instead: {others[0]})" if others else ""
            checks.append((False, f"the prompt asks for {wanted} but none is visible{hint}"))
        firsts.append(found[0] if found else None)
    _placement_and_rest(spec, seen, firsts, picked, checks)
    return checks


def alignment_score(image: Image.Image | np.ndarray, prompt: str) -> AlignmentResult:
    """5 x the fraction of the prompt's elements met; raises PromptParseError outside the grammar."""
    spec = parse_prompt(prompt)
    seen = observe(image)
    met, unmet = judge_alignment(spec, seen)
    return AlignmentResult(5.0 * len(met) / (len(met) + len(unmet)), met, unmet, seen.describe())


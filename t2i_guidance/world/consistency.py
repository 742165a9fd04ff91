"""Does a verdict follow from its own reasons? An alignment rationale checked against itself.

The claims a rationale makes ("The prompt asks for ...", "I see a small red circle at the top.") imply a
count of met prompt elements: the oracles' own alignment rules (`oracles.judge_alignment`) applied to the
picture the claims describe instead of the real one. The rationale is consistent when its stated verdict
("N of M elements are met.", "Every element matches.") is that count, and when its score lies in the band
of its stated N of M. Truth is not asked here (`claims.py` checks that); a rationale can be consistent
and wrong, or true and inconsistent, and the two are measured apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from t2i_guidance.world.captions import SIZE_SYNONYMS, PromptParseError, PromptSpec, parse_prompt
from t2i_guidance.world.claims import (
    _ASKED,
    _BACKGROUND,
    _OBJECT,
    _POSITION_KEY,
    _RESTATEMENT,
    _normal,
    sentences,
)
from t2i_guidance.world.oracles.alignment import judge_alignment, judge_placement, pick_requested
from t2i_guidance.world.oracles.perception import Observation, SeenObject

# Where a claimed position puts an object, so that the oracles' relation rules can read the claims.
_CLAIMED_CENTRE = {"top": (0.5, 0.25), "bottom": (0.5, 0.75), "left": (0.25, 0.5), "right": (0.75, 0.5),
                   "center": (0.5, 0.5), None: (0.5, 0.5)}
_CLAIMED_KEY = {centre: key for key, centre in _CLAIMED_CENTRE.items() if key}
_OPPOSITES = ({"left", "right"}, {"top", "bottom"})
_STATED = re.compile(r"^(?P<met>\d+) of (?P<total>\d+) elements are met$")
_EVERY = re.compile(r"^every element matches$")
BAND_TOLERANCE = 0.5  # a score within half a point of 5 x N / M agrees with the stated count


@dataclass(frozen=True)
class Consistency:
    implied: tuple[int, int] | None  # (met, total) that the rationale's own claims imply
    placement_open: int  # 0: the claims settle the prompt's placement; +1 / -1: too coarse to, and the
    # count could be one higher (the claims' reading fails it) or one lower (it passes)
    stated: tuple[int, int] | None  # "N of M elements are met."
    says_every: bool  # "Every element matches."
    score: float | None

    @property
    def verdict_agrees(self) -> bool | None:
        """The stated verdict is what the claims imply; None when there is no verdict or nothing to imply."""
        if self.implied is None or (self.stated is None and not self.says_every):
            return None
        if self.stated is not None:
            met, total = self.implied
            # an open placement may go either way: one more met if the claims' reading fails it, one fewer if not
            allowed = {met, met + self.placement_open} if self.placement_open else {met}
            if self.stated[1] != total or self.stated[0] not in allowed:
                return False
        short = self.implied[1] - self.implied[0]
        return not self.says_every or short == 0 or (short == 1 and self.placement_open == 1)

    @property
    def band_agrees(self) -> bool | None:
        """The score lies within BAND_TOLERANCE of 5 x N / M for the stated N of M."""
        if self.stated is None or self.score is None or self.stated[1] == 0:
            return None
        return abs(self.score - 5.0 * self.stated[0] / self.stated[1]) <= BAND_TOLERANCE

    @property
    def consistent(self) -> bool:
        return bool(self.verdict_agrees) and bool(self.band_agrees)


def claimed_observation(rationale: str) -> Observation | None:
    """The picture the rationale says it sees (None when it names neither object nor background)."""
    objects, background = [], None
    for sentence in sentences(rationale):
        text = _normal(sentence)
        if match := _OBJECT.match(text):
            cx, cy = _CLAIMED_CENTRE[_POSITION_KEY.get(match["position"]) if match["position"] else None]
            size = SIZE_SYNONYMS[match["size"]] if match["size"] else "small"  # our forms always name the size
            objects.append(SeenObject(match["colour"], match["shape"], size, cx, cy, 0.05, (cx, cy, cx, cy)))
        elif match := _BACKGROUND.match(text):
            background = match["background"]
    if not objects and background is None:
        return None
    return Observation(background or "", (0.0, 0.0, 0.0), tuple(objects), 0)


def claimed_request(rationale: str, prompt: str | None) -> PromptSpec | None:
    """What the rationale says the prompt asks for; the prompt itself when it restates nothing."""
    for sentence in sentences(rationale):
        text = _normal(sentence)
        if _ASKED.search(text):  # "the prompt asks for X but ...": one element's check, not a restatement
            continue
        if match := _RESTATEMENT.match(text):
            try:
                return parse_prompt(match["phrase"])
            except PromptParseError:
                break
    try:
        return parse_prompt(prompt) if prompt else None
    except PromptParseError:
        return None


def check_consistency(rationale: str, score: float | None, prompt: str | None = None) -> Consistency:
    stated, every = None, False
    for sentence in sentences(rationale):
        text = _normal(sentence)
        if match := _STATED.match(text):
            stated = (int(match["met"]), int(match["total"]))
        every = every or bool(_EVERY.match(text))
    seen, wanted = claimed_observation(rationale), claimed_request(rationale, prompt)
    implied, open_ = None, False
    if seen is not None and wanted is not None and wanted.objects:
        met, unmet = judge_alignment(wanted, seen)
        implied, open_ = (len(met), len(met) + len(unmet)), _open_placement(wanted, seen)
    return Consistency(implied, open_, stated, every, score)


def _open_placement(wanted: PromptSpec, seen: Observation) -> int:
    """0 when the claimed position words settle the prompt's relation or position ("on the left" and "on
    the right" settle "to the left of"); otherwise +1 or -1, the way the count could move if the objects
    stood elsewhere within their words ("on the left" and "at the bottom" may still be side by side)."""
    picked = [pick_requested(request, seen.objects) for request in wanted.objects]
    placement = judge_placement(wanted, picked)
    if placement is None or any(found is None for found in picked):
        return 0
    keys = [_CLAIMED_KEY.get((found.cx, found.cy), "center") for found in picked]
    if wanted.relation is not None:
        axis = _OPPOSITES[0] if wanted.relation in ("left_of", "right_of") else _OPPOSITES[1]
        settled = set(keys) == axis
    else:
        settled = keys[0] == wanted.position or {keys[0], wanted.position} in _OPPOSITES
    return 0 if settled else (-1 if placement[0] else 1)

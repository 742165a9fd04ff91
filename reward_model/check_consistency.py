"""A reward for verdicts that follow, check by check, from the values a rationale writes.

Compared checks name two values before their verdict and end on the running count:

    Shape: seen circle, asked square, not met (4 of 5).      (or "asked square, seen circle, ...")

A check agrees with itself when its verdict is "met" exactly if its two values are the same word (only
checked for one-word values: a placement's phrases are not compared word for word) and its running count
adds its own verdict to the count before it. The closing "N of M elements are met." must repeat the last
count. In the look-first form each asked object is answered by "Seen: <claim>.", which must repeat one
of the rationale's own "I see <claim>." sentences (judges copied the asked object there instead).
Nothing here reads the picture: it rewards reading one's own words, the step the judge skipped (a
check-level form of Q-Ponder's reasoning consistency).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reward_model.interface import parse_answer
from reward_model.rewards import completion_text

_CHECK = re.compile(
    r"(?P<element>[A-Z][a-z]+(?: [a-z]+)?): (?:seen (?P<seen>[^,()]+(?:, [^,()]+)*?), asked (?P<asked>[^()]+?)"
    r"|asked (?P<asked2>[^()]+?), seen (?P<seen2>[^()]+?)), (?P<verdict>met|not met) \((?P<met>\d+) of (?P<done>\d+)\)"
)
_STATED = re.compile(r"(\d+) of (\d+) elements are met")
_SEEN_LINE = re.compile(r"(?<![A-Za-z])Seen: (?P<claim>[^.]+)\.")
_DESCRIBED = re.compile(r"(?<![A-Za-z])I see (?P<claim>[^.]+)\.")


def check_agreement(rationale: str) -> float | None:
    """The share of the rationale's compared checks (and its closing count) that agree with their own
    written values and with the running count; None when it writes no compared check."""
    checks = list(_CHECK.finditer(rationale))
    if not checks:
        return None
    agree, met = 0, 0
    for done, check in enumerate(checks, start=1):
        seen = (check["seen"] or check["seen2"]).strip()
        asked = (check["asked"] or check["asked2"]).strip()
        says_met = check["verdict"] == "met"
        one_word = " " not in seen and " " not in asked
        verdict_ok = not one_word or says_met == (seen == asked)
        met += says_met
        agree += verdict_ok and (int(check["met"]), int(check["done"])) == (met, done)
    stated = _STATED.findall(rationale[checks[-1].end():])
    agree += bool(stated) and (int(stated[-1][0]), int(stated[-1][1])) == (met, len(checks))
    described = {m["claim"] for m in _DESCRIBED.finditer(rationale)}
    restated = [m["claim"] for m in _SEEN_LINE.finditer(rationale)]
    agree += sum(claim in described for claim in restated)
    return agree / (len(checks) + 1 + len(restated))


def check_consistency_reward(completions: Sequence[object], task: Sequence[str] | None = None,
                             **_: object) -> list[float | None]:
    """GRPO reward (TRL's signature): `check_agreement` of each alignment completion, 0 for one that
    writes no compared check; None (not scored) for the other tasks."""
    rewards: list[float | None] = []
    for index, completion in enumerate(completions):
        if task is not None and task[index] != "alignment":
            rewards.append(None)
            continue
        share = check_agreement(parse_answer(completion_text(completion)).rationale)
        rewards.append(0.0 if share is None else share)
    return rewards

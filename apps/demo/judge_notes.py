"""How sure the judge is, said on the page: the spread of sampled scores, a warning where its verdict
contradicts its own reasoning, and the judge's shorthand in plain words."""

from __future__ import annotations

import re
from typing import Any

from reward_model.interface import DimensionScore

UNSURE_SPREAD = 0.5  # a spread this wide over samples: the judge is unsure, not just a little noisy
LEVEL_WORDS = ("none", "slight", "clear", "strong")
_LEVELS = re.compile(
    r"Blur level (?P<blur>\d+(?:\.\d+)?), noise level (?P<noise>\d+(?:\.\d+)?), "
    r"compression level (?P<jpeg>\d+(?:\.\d+)?)\.?"
)


def spread_text(result: DimensionScore) -> str:
    """"± 0.42 over 4 samples" where the score is the mean of several sampled answers; "" otherwise."""
    if not result.ok or result.std is None or len(result.samples) < 2:
        return ""
    text = f"± {result.std:.2f} over {len(result.samples)} samples"
    return text + (" – the judge is unsure" if result.std >= UNSURE_SPREAD else "")


def _level_word(value: str) -> str:
    return LEVEL_WORDS[min(int(float(value) + 0.5), len(LEVEL_WORDS) - 1)]


def plain_rationale(text: str) -> str:
    """The judge's reasoning with its shorthand in words ("Blur level 0, noise level 2, compression level
    0" -> "Blur: none, noise: clear, blockiness: none")."""
    return _LEVELS.sub(lambda m: f"Blur: {_level_word(m['blur'])}, noise: {_level_word(m['noise'])}, "
                                 f"blockiness: {_level_word(m['jpeg'])}.", text)


def _checker() -> Any | None:
    """The world's rationale checker when this install has it; the page works without it."""
    try:
        from t2i_guidance.world.consistency import check_consistency
    except ImportError:
        return None
    return check_consistency


def contradiction(result: DimensionScore, prompt: str | None) -> str:
    """A sentence when the judge's alignment score contradicts its own reasoning (its verdict, or the
    share of elements it says are met); "" when it agrees, cannot be checked, or the checker is absent."""
    check = _checker()
    if check is None or not prompt or not result.ok or result.dimension != "alignment" or not result.rationale:
        return ""
    try:
        verdict = check(result.rationale, result.score, prompt)
    except Exception:  # noqa: BLE001 - a checker's failure must not hide the judgement; it just goes unchecked
        return ""
    if verdict.consistent:
        return ""
    reasons = []
    if not verdict.verdict_agrees:
        reasons.append("its own verdict says otherwise")
    if not verdict.band_agrees:
        reasons.append("it does not fit how many of the prompt's parts the judge says it found")
    because = " and ".join(reasons) or "its reasoning does not back it"
    return f"Doubtful: this score contradicts the judge's own reasoning ({because}). Look for yourself."

"""Reading a score out of a model's answer, and checking the answer's format.

A completion without a readable number in 0..5 is a parse failure: the number is never clamped,
defaulted or guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reward_model.prompts import SCORE_MAX, SCORE_MIN

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_BARE_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FORMAT = re.compile(r"^\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*$", re.DOTALL)


@dataclass(frozen=True)
class ParsedAnswer:
    score: float | None
    rationale: str
    error: str | None  # why no score could be read; None when score is set


def parse_answer(text: str) -> ParsedAnswer:
    """Take the float inside the last <answer> block; the <think> text is the rationale."""
    thinks = _THINK.findall(text)
    rationale = thinks[-1].strip() if thinks else ""
    answers = _ANSWER.findall(text)
    if not answers:
        return ParsedAnswer(None, rationale, "no <answer> block")
    content = answers[-1].strip()
    if not _BARE_NUMBER.fullmatch(content):
        return ParsedAnswer(None, rationale, f"answer is not a number: {content[:40]!r}")
    value = float(content)
    if not SCORE_MIN <= value <= SCORE_MAX:
        return ParsedAnswer(None, rationale, f"answer {value} is outside {SCORE_MIN:g}..{SCORE_MAX:g}")
    return ParsedAnswer(value, rationale, None)


def has_strict_format(text: str) -> bool:
    """Exactly one <think> block followed by exactly one <answer> block, nothing around them."""
    return _FORMAT.match(text) is not None

"""The probability-weighted score: the expectation of the answer under the model's digit distributions.

At each digit of the number inside the last <answer> block, the model gave a distribution over the ten
digit tokens. The score is sum over digit places of 10^place * E[digit], conditioned on the digits the
model actually wrote before it (one decoding pass, no sampling noise). The spread is the matching
standard deviation, treating places as independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reward_model.backends import Completion


@dataclass(frozen=True)
class DigitReading:
    expectation: float | None
    std: float | None
    error: str | None
    digit_mass: float | None = None  # least probability any digit place gave to digits at all


def read_expected_score(completion: Completion, prefix: str = "") -> DigitReading:
    """Expectation of the number in the last <answer> block, from the recorded digit distributions."""
    tokens = completion.token_texts
    if len(completion.digit_probs) < len(tokens):
        return DigitReading(None, None, "digit distributions were not recorded for every token")
    starts, offset = [], len(prefix)
    for token in tokens:
        starts.append(offset)
        offset += len(token)
    text = prefix + "".join(tokens)
    open_at = text.rfind("<answer>")
    if open_at < 0:
        return DigitReading(None, None, "no <answer> block")
    close_at = text.find("</answer>", open_at)
    if close_at < 0:
        return DigitReading(None, None, "unclosed <answer> block")
    body_start = open_at + len("<answer>")
    body = text[body_start:close_at]
    number = body.strip()
    number_start = body_start + body.index(number) if number else body_start
    integer_digits = len(number.split(".")[0].lstrip("+"))
    token_at = {start: index for index, start in enumerate(starts)}
    expectation, variance, mass_floor, place = 0.0, 0.0, 1.0, integer_digits - 1
    for position, char in enumerate(number, start=number_start):
        if not char.isdigit():
            continue
        index = token_at.get(position)
        if index is None or tokens[index] != char:
            return DigitReading(None, None, "answer digits are not single generated tokens")
        probs = completion.digit_probs[index]
        mass = sum(probs)
        if mass <= 0:
            return DigitReading(None, None, "no probability on any digit at the answer")
        mean = sum(d * p for d, p in enumerate(probs)) / mass
        spread = sum((d - mean) ** 2 * p for d, p in enumerate(probs)) / mass
        expectation += 10.0**place * mean
        variance += 100.0**place * spread
        mass_floor = min(mass_floor, mass)
        place -= 1
    if place == integer_digits - 1:
        return DigitReading(None, None, "answer has no digits")
    return DigitReading(expectation, math.sqrt(variance), None, mass_floor)

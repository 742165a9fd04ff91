"""Reading the expected score from per-step digit distributions."""

from __future__ import annotations

import math

import pytest

from reward_model.backends import Completion
from reward_model.backends.digits import read_expected_score


def one_hot(digit: int) -> list[float]:
    return [1.0 if d == digit else 0.0 for d in range(10)]


def completion(tokens: list[str], probs: dict[int, list[float]]) -> Completion:
    rows = [probs.get(i, [0.0] * 10) for i in range(len(tokens))]
    return Completion(
        text="".join(tokens), generated_tokens=len(tokens), token_texts=tokens, digit_probs=rows
    )


TOKENS = ["<think>", " ok", " ", "</think>", "<answer>", " ", "3", ".", "4", "7", " ", "</answer>"]


def test_expectation_over_places():
    half = [0.0] * 10
    half[2], half[3] = 0.25, 0.25  # half the mass elsewhere (non-digits): renormalised over digits
    reading = read_expected_score(completion(TOKENS, {6: half, 8: one_hot(4), 9: one_hot(7)}))
    assert reading.expectation == pytest.approx(2.5 + 0.47)
    assert reading.std == pytest.approx(0.5)
    assert reading.digit_mass == pytest.approx(0.5)


def test_uses_the_last_answer_block():
    tokens = ["<answer>", "1", "</answer>", "<answer>", "4", "</answer>"]
    reading = read_expected_score(completion(tokens, {1: one_hot(1), 4: one_hot(4)}))
    assert reading.expectation == pytest.approx(4.0) and reading.std == 0


def test_answer_only_prefix_counts_towards_offsets():
    tokens = [" ", "2", ".", "5", " ", "</answer>"]
    reading = read_expected_score(completion(tokens, {1: one_hot(2), 3: one_hot(5)}), prefix="<answer>")
    assert reading.expectation == pytest.approx(2.5)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["<think>", " x", "</think>"], "no <answer>"),
        (["<answer>", "3"], "unclosed"),
        (["<answer>", "34", "</answer>"], "not single generated tokens"),
        (["<answer>", " ", "</answer>"], "no digits"),
    ],
)
def test_failures_are_reported(tokens, message):
    reading = read_expected_score(completion(tokens, {i: one_hot(3) for i in range(len(tokens))}))
    assert reading.expectation is None and message in reading.error


def test_spread_of_a_uniform_digit():
    uniform = [0.1] * 10
    reading = read_expected_score(completion(["<answer>", "4", "</answer>"], {1: uniform}))
    assert reading.expectation == pytest.approx(4.5) and reading.std == pytest.approx(math.sqrt(8.25))

"""Reading the score out of an answer: the last answer block counts, nothing is clamped or guessed, and the
strict format is exactly one think block then one answer block."""

from __future__ import annotations

import pytest

from reward_model.interface import has_strict_format, parse_answer


def test_the_last_answer_block_is_the_score():
    text = "<think>first look</think><answer>1.5</answer> on reflection <think>sharper</think><answer>4.25</answer>"
    parsed = parse_answer(text)
    assert parsed.score == 4.25 and parsed.error is None
    assert parsed.rationale == "sharper"  # the last think block, stripped


def test_a_readable_answer_after_an_unreadable_one_counts_and_not_the_other_way_round():
    assert parse_answer("<answer>x</answer><answer>3</answer>").score == 3.0
    late_garbage = parse_answer("<answer>3</answer><answer>x</answer>")
    assert late_garbage.score is None and late_garbage.error == "answer is not a number: 'x'"


@pytest.mark.parametrize("content, score", [("0", 0.0), ("5", 5.0), (" 3.5 ", 3.5), ("\n2.\n", 2.0),
                                            (".75", 0.75), ("+4", 4.0), ("-0", 0.0)])
def test_numbers_in_range_are_read_exactly(content, score):
    parsed = parse_answer(f"<think>ok</think><answer>{content}</answer>")
    assert parsed.score == score and parsed.error is None and parsed.rationale == "ok"


@pytest.mark.parametrize("content", ["5.01", "-0.5", "6", "100"])
def test_numbers_outside_the_scale_are_failures_not_clamped(content):
    parsed = parse_answer(f"<think>ok</think><answer>{content}</answer>")
    assert parsed.score is None
    assert parsed.error == f"answer {float(content)} is outside 0..5"
    assert parsed.rationale == "ok"  # the reasoning is kept for the record


@pytest.mark.parametrize("content", ["", "four", "3/5", "3 or 4", "3.5.1", "1e0", "3 points", "."])
def test_anything_but_a_bare_number_is_a_failure(content):
    parsed = parse_answer(f"<think>ok</think><answer>{content}</answer>")
    assert parsed.score is None and parsed.error.startswith("answer is not a number")
    assert parsed.rationale == "ok"


def test_the_not_a_number_message_shows_at_most_forty_characters():
    parsed = parse_answer(f"<answer>{'y' * 60}</answer>")
    assert parsed.error == f"answer is not a number: {'y' * 40!r}"


def test_no_answer_block_is_a_failure_with_the_reasoning_kept():
    parsed = parse_answer("<think> blurred edges </think> so about 2")
    assert parsed == type(parsed)(None, "blurred edges", "no <answer> block")
    assert parse_answer("<answer>3").error == "no <answer> block"  # unclosed
    assert parse_answer("3.0").rationale == ""  # no think block: empty rationale


def test_blocks_span_lines():
    parsed = parse_answer("<think>line one\nline two</think>\n<answer>\n3\n</answer>")
    assert parsed.score == 3.0 and parsed.rationale == "line one\nline two"


@pytest.mark.parametrize("text", [
    "<think>a</think><answer>3</answer>",
    "  \n<think>a\nb</think>\n\n<answer> 3 </answer>\n ",
    "<think></think><answer></answer>",
])
def test_strict_format_accepts_one_think_then_one_answer(text):
    assert has_strict_format(text)


@pytest.mark.parametrize("text", [
    "<answer>3</answer>",
    "<think>a</think>",
    "<answer>3</answer><think>a</think>",
    "preamble <think>a</think><answer>3</answer>",
    "<think>a</think><answer>3</answer> trailing",
    "<think>a</think><answer>3</answer><answer>4</answer>",
    "<think>a</think><think>b</think><answer>3</answer>",
    "<think>a <think> b</think><answer>3</answer>",
    "<think>a</think><answer>3 </think></answer>",
    "<think>a <answer>2</answer></think><answer>3</answer>",
])
def test_strict_format_refuses_anything_else(text):
    assert not has_strict_format(text)

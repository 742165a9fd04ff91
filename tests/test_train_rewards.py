import math

import pytest

from reward_model.rewards import (
    PAPER_TASK_SIGMA_SCALE,
    REWARDS,
    accuracy_reward,
    build_reward_funcs,
    format_reward,
    gaussian_accuracy,
    rank_reward,
    register_reward,
)

GOOD = "<think> I see a red circle. </think><answer> 3.00 </answer>"


def as_chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_gaussian_accuracy_arithmetic():
    assert gaussian_accuracy(3.0, 3.0) == 1.0
    assert gaussian_accuracy(3.8, 3.0) == pytest.approx(math.exp(-0.5))  # one sigma (0.8) away
    assert gaussian_accuracy(1.4, 3.0) == pytest.approx(math.exp(-2.0))  # two sigmas away
    assert gaussian_accuracy(None, 3.0) == 0.0


def test_accuracy_reward_reads_the_answer_and_zeroes_unreadable_ones():
    completions = [GOOD, "<think> x </think><answer> about 3 </answer>", "no tags 3.0", as_chat(GOOD)]
    rewards = accuracy_reward(completions, label=[3.8, 3.0, 3.0, 3.0])
    assert rewards == pytest.approx([math.exp(-0.5), 0.0, 0.0, 1.0])


def test_per_task_sigma_multipliers():
    completions = [GOOD.replace("3.00", "3.80")] * 3
    tasks = ["technical", "aesthetic", "alignment"]
    rewards = accuracy_reward(completions, label=[3.0] * 3, task=tasks, task_sigma_scale=PAPER_TASK_SIGMA_SCALE)
    for reward, task in zip(rewards, tasks, strict=True):
        sigma = 0.8 * PAPER_TASK_SIGMA_SCALE[task]
        assert reward == pytest.approx(math.exp(-(0.8**2) / (2 * sigma**2)))
    assert rewards[0] < rewards[1] == rewards[2]


def test_format_reward_is_half_for_exactly_one_think_then_one_answer():
    completions = [
        GOOD,
        as_chat(GOOD),
        "<answer> 3 </answer>",
        "<think> a </think><think> b </think><answer> 3 </answer>",
        "<think> a </think><answer> 3 </answer><answer> 4 </answer>",
        "<think> a </think><answer> 3 </answer> trailing",
    ]
    assert format_reward(completions) == [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]


def test_total_reward_is_format_plus_accuracy_through_the_registry():
    fmt, acc = build_reward_funcs(["format", "accuracy"], {"accuracy": {"sigma": 0.4}})
    assert (fmt.__name__, acc.__name__) == ("format", "accuracy")
    completion = [GOOD.replace("3.00", "3.40")]
    total = fmt(completion, label=[3.0])[0] + acc(completion, label=[3.0], task=["technical"])[0]
    assert total == pytest.approx(0.5 + math.exp(-0.5))


def test_rank_reward_counts_correctly_ordered_pairs():
    answers = [GOOD.replace("3.00", v) for v in ("1.00", "2.00", "4.00")] + ["broken"]
    labels = [1.0, 3.0, 2.0, 4.0]
    # 0 vs 1, 0 vs 2: both right -> 1; 1 vs 0 right, 1 vs 2 wrong -> 0.5; 2 vs 0 right, 2 vs 1 wrong -> 0.5
    assert rank_reward(answers, label=labels) == pytest.approx([1.0, 0.5, 0.5, 0.0])


def test_unknown_and_duplicate_rewards_are_refused():
    with pytest.raises(ValueError, match="unknown reward"):
        build_reward_funcs(["nope"])
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format", format_reward)


def test_extra_reward_plugs_in_by_name():
    def length_penalty(completions, **_):
        return [-len(str(c)) / 100 for c in completions]

    register_reward("test_length_penalty", length_penalty)
    try:
        (func,) = build_reward_funcs(["test_length_penalty"])
        assert func(["abcd"]) == [-0.04]
    finally:
        del REWARDS["test_length_penalty"]

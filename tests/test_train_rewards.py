import json
import math
from pathlib import Path

import pytest

from reward_model.reward_registry import build_reward_funcs, register_reward
from reward_model.rewards import (
    PAPER_TASK_SIGMA_SCALE,
    accuracy_reward,
    consistency_reward,
    format_reward,
    gaussian_accuracy,
    rank_reward,
    stated_verdict,
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

    register_reward("test_length_penalty", length_penalty)  # a name of its own: registrations are permanent
    (func,) = build_reward_funcs(["test_length_penalty"])
    assert func(["abcd"]) == [-0.04]


def answer(value: float, reasoning: str = "I see it.") -> str:
    return f"<think> {reasoning} </think><answer> {value:.2f} </answer>"


def test_rank_reward_ranks_against_the_gathered_batch_not_the_local_slice():
    # Rank 1 holds one record's 2 rollouts (label 3): alone it has nothing to compare with.
    local = [answer(3.5), answer(1.0)]
    alone = rank_reward(local, label=[3.0, 3.0], record_id=["b", "b"])
    assert alone == [0.0, 0.0]
    # Gathered: rank 0 held record "a" (label 1, rollouts 2.0 and 4.0), rank 2 record "c" (label 4, 4.5)
    others_before = [(2.0, 1.0, "a"), (4.0, 1.0, "a")]
    others_after = [(4.5, 4.0, "c")]

    def gather(entries):
        return others_before + entries + others_after, len(others_before)

    rewards = rank_reward(local, label=[3.0, 3.0], record_id=["b", "b"], gather=gather)
    # 3.5 vs a's (2.0, 4.0): right, wrong; vs c's 4.5: right -> 2/3. 1.0: wrong, wrong, right -> 1/3
    assert rewards == pytest.approx([2 / 3, 1 / 3])


def test_rank_fidelity_rewards_the_right_order_smoothly():
    def gather(entries):
        return entries + [(2.0, 2.0, "low"), (2.2, 2.0, "low")], 0

    right, wrong, far = rank_reward([answer(3.0), answer(1.9), answer(4.5)], label=[4.0] * 3,
                                    record_id=["me"] * 3, mode="fidelity", gather=gather)
    assert 0.0 <= wrong < right < far <= 1.0  # further above the lower-labelled record: closer to 1


def test_rank_reward_is_gathered_across_real_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_two_rank_worker, args=(str(tmp_path),), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # rank 0: record a (label 1, answers 1.0, 4.0); rank 1: record b (label 3, answer 2.0)
    assert results[0] == pytest.approx([1.0, 0.0]) and results[1] == pytest.approx([0.5])


def _two_rank_worker(rank: int, folder: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("TEST_RANK_PORT", "29533"))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        if rank == 0:
            rewards = rank_reward([answer(1.0), answer(4.0)], label=[1.0, 1.0], record_id=["a", "a"])
        else:
            rewards = rank_reward([answer(2.0)], label=[3.0], record_id=["b"])
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(rewards))
    finally:
        dist.destroy_process_group()


def test_reasoning_consistency_reward():
    completions = [
        answer(4.2, "Sharp edges. Overall the technical quality is good."),
        answer(1.0, "Sharp edges. Overall the technical quality is good."),
        answer(0.8, "Heavily blurred. Overall it is very poor."),
        answer(3.0, "I see a red circle."),  # no verdict stated
        "<think> it is excellent </think><answer> great </answer>",  # no number
    ]
    rewards = consistency_reward(completions)
    assert rewards[0] == 1.0 and rewards[2] == 1.0
    assert rewards[1] == pytest.approx(math.exp(-(2.75**2) / (2 * 0.5**2)))  # 2.75 below the "good" band
    assert rewards[3] == 0.0 and rewards[4] == 0.0
    assert stated_verdict("at first it looks poor, but in the end excellent") == (4.5, 5.0)  # the last word
    assert stated_verdict("very poor") == (0.0, 1.25)
    (func,) = build_reward_funcs(["consistency"], {"consistency": {"sigma": 1.0}})
    assert func([completions[1]])[0] == pytest.approx(math.exp(-(2.75**2) / 2))


def test_consistency_falls_off_on_both_sides_of_the_stated_band():
    says_good = "Crisp and balanced. Overall it is good."  # the "good" band is 3.75..4.5
    above, below, inside_low, inside_high = consistency_reward(
        [answer(5.0, says_good), answer(3.25, says_good), answer(3.75, says_good), answer(4.5, says_good)]
    )
    assert above == pytest.approx(math.exp(-(0.5**2) / (2 * 0.5**2)))  # 0.5 above the band's top
    assert below == pytest.approx(above)  # 0.5 below its bottom: the same distance, the same reward
    assert inside_low == inside_high == 1.0  # the band's edges are inside it

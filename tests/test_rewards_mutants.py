"""The GRPO rewards at their edges: every shape of completion TRL passes, per-task sigmas for tasks the table
does not name, the ranking reward's pairs (own record, equal labels, unreadable answers) and its fidelity
value, and the verdict words the consistency reward reads."""

from __future__ import annotations

import math

import pytest

from reward_model.rewards import (
    accuracy_reward,
    completion_text,
    consistency_reward,
    format_reward,
    gaussian_accuracy,
    rank_reward,
    stated_verdict,
)


def answer(value: float, reasoning: str = "I see it.") -> str:
    return f"<think> {reasoning} </think><answer> {value:.2f} </answer>"


def local(entries):
    return list(entries), 0


def test_completion_text_reads_strings_and_the_last_chat_message():
    assert completion_text("plain") == "plain"
    chat = [{"role": "user", "content": "question"}, {"role": "assistant", "content": "the answer"}]
    assert completion_text(chat) == "the answer"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "<think> a "}, "stray",
                                               {"type": "image"}, {"type": "text", "text": "</think>"}]}]
    assert completion_text(parts) == "<think> a </think>"
    assert completion_text([{"role": "assistant"}]) == ""
    assert completion_text([{"role": "assistant", "content": 3.5}]) == "3.5"
    assert completion_text([]) == "" and completion_text(None) == "" and completion_text(42) == ""


def test_gaussian_accuracy_takes_its_sigma():
    assert gaussian_accuracy(3.5, 3.0, sigma=0.5) == pytest.approx(math.exp(-0.5))
    assert gaussian_accuracy(2.0, 3.0, sigma=2.0) == pytest.approx(math.exp(-1 / 8))
    assert gaussian_accuracy(None, 0.0, sigma=2.0) == 0.0


def test_accuracy_sigma_scales_only_named_tasks_and_only_when_asked():
    completions = [answer(3.8)] * 3
    plain = math.exp(-(0.8**2) / (2 * 0.8**2))
    assert accuracy_reward(completions, label=[3.0] * 3, task=["technical"] * 3) == pytest.approx([plain] * 3)
    assert accuracy_reward(completions, label=[3.0] * 3, task_sigma_scale={"technical": 2.0}) == pytest.approx(
        [plain] * 3)  # no task column: nothing to scale by
    scaled = accuracy_reward(completions, label=[3.0] * 3, task=["technical", "other", "technical"],
                             task_sigma_scale={"technical": 2.0}, sigma=0.4)
    assert scaled == pytest.approx([plain, math.exp(-(0.8**2) / (2 * 0.4**2)), plain])
    assert accuracy_reward([answer(3.0)], label=["3.8"]) == pytest.approx([plain])  # labels may arrive as text


def test_format_reward_pays_the_value_asked_for():
    good = answer(3.0)
    assert format_reward([good, "no tags"], value=1.0) == [1.0, 0.0]


def test_rank_reward_refuses_unknown_modes():
    with pytest.raises(ValueError) as info:
        rank_reward([answer(1.0)], label=[1.0], mode="pairs", gather=local)
    assert str(info.value) == "rank mode must be 'sign' or 'fidelity'"


def test_rank_reward_never_compares_a_record_with_itself_or_with_an_equal_label():
    completions = [answer(4.0), answer(1.0), answer(2.0), answer(5.0)]
    rewards = rank_reward(completions, label=[4.0, 4.0, 2.0, 2.0], record_id=["a", "a", "b", "c"], gather=local)
    # a's rollouts meet b (2.0) and c (5.0): 4.0 orders b right, c wrong; 1.0 orders both wrong.
    # b meets a's two rollouts only (c has its label): 2.0 < 4.0 right, 2.0 > 1.0 wrong; c's 5.0 is above both.
    assert rewards == pytest.approx([0.5, 0.0, 0.5, 0.0])
    assert rank_reward([answer(3.0), answer(1.0)], label=[2.0, 2.0], gather=local) == [0.0, 0.0]  # equal labels


def test_rank_reward_skips_unreadable_answers_of_the_other_records():
    completions = [answer(3.0), "no answer", answer(1.0)]
    rewards = rank_reward(completions, label=[3.0, 1.0, 1.0], record_id=["a", "b", "b"], gather=local)
    assert rewards == pytest.approx([1.0, 0.0, 1.0])


def test_a_gathered_batch_is_ranked_from_this_process_own_offset():
    def gather(entries):
        return [(5.0, 5.0, "x")] + entries + [(0.5, 0.0, "y")], 1

    rewards = rank_reward([answer(2.0), answer(4.0)], label=[2.0, 2.0], record_id=["m", "m"], gather=gather)
    assert rewards == pytest.approx([1.0, 1.0])  # below x's 5.0, above y's 0.5: both right
    # without record ids each completion is its own record, even across processes
    unnamed = rank_reward([answer(2.0), answer(1.0)], label=[2.0, 3.0], gather=gather)
    # 2.0 (label 2): x right, 1.0 (label 3) wrong, y right; 1.0 (label 3): x right, 2.0 wrong, y right
    assert unnamed == pytest.approx([2 / 3, 2 / 3])


def thurstone(mine, mean, variance, order):
    p = 0.5 * (1 + math.erf((mine - mean) / math.sqrt(2 * variance)))
    return math.sqrt(p * order) + math.sqrt((1 - p) * (1 - order))


def test_rank_fidelity_is_the_thurstone_fidelity_averaged_over_the_other_records():
    def gather(entries):
        return entries + [(2.0, 2.0, "low"), (3.0, 2.0, "low"), (5.0, 5.0, "high")], 0

    mine = rank_reward([answer(3.5), answer(2.5)], label=[4.0, 4.0], record_id=["me", "me"], mode="fidelity",
                       min_variance=0.05, gather=gather)
    # variances: low (2.0, 3.0) 0.25; high (5.0) 0; mine (3.5, 2.5) 0.25; plus min_variance 0.05
    for value, reward in zip((3.5, 2.5), mine, strict=True):
        expected = (thurstone(value, 2.5, 0.25 + 0.25 + 0.05, 1.0) + thurstone(value, 5.0, 0.0 + 0.25 + 0.05, 0.0)) / 2
        assert reward == pytest.approx(expected, rel=1e-9)
    # a single rollout of mine has no spread of its own; at the other record's mean the fidelity is sqrt(1/2)
    (alone,) = rank_reward([answer(2.0)], label=[4.0], record_id=["me"], mode="fidelity",
                           gather=lambda entries: (entries + [(2.0, 1.0, "o")], 0))
    assert alone == pytest.approx(math.sqrt(0.5))
    (sure,) = rank_reward([answer(3.0)], label=[4.0], record_id=["me"], mode="fidelity", min_variance=0.01,
                          gather=lambda entries: (entries + [(2.0, 1.0, "o")], 0))
    assert sure == pytest.approx(thurstone(3.0, 2.0, 0.01, 1.0)) and sure > 0.99
    (near,) = rank_reward([answer(2.1)], label=[4.0], record_id=["me"], mode="fidelity",
                          gather=lambda entries: (entries + [(2.0, 1.0, "o")], 0))
    assert near == pytest.approx(thurstone(2.1, 2.0, 0.01, 1.0))  # the variance floor is 0.01 by default


def test_verdict_words_are_whole_words_in_any_case_and_the_last_one_counts():
    assert stated_verdict("Overall it is GOOD.") == (3.75, 4.5)
    assert stated_verdict("fair, then poor") == (1.25, 2.5)
    assert stated_verdict("poor at first, then fair") == (2.5, 3.75)
    assert stated_verdict("poor") == (1.25, 2.5)  # "poor" at the very start, no "very " before it
    assert stated_verdict("a poor") == (1.25, 2.5)
    assert stated_verdict("it is very poor") == (0.0, 1.25)
    assert stated_verdict("Very Poor overall") == (0.0, 1.25)
    assert stated_verdict("very poor, later just poor") == (1.25, 2.5)
    assert stated_verdict("goodness knows, unfair") is None
    assert stated_verdict("") is None


def test_consistency_uses_the_judge_and_sigma_it_is_given():
    completions = [answer(2.0, "anything"), answer(4.0, "anything"), answer(3.0, "")]
    band = lambda rationale: (2.5, 3.5) if rationale else None  # noqa: E731
    rewards = consistency_reward(completions, sigma=1.0, judge=band)
    assert rewards == pytest.approx([math.exp(-0.125), math.exp(-0.125), 0.0])
    seen = []
    consistency_reward([answer(3.0, "it is fair"), "<think> good </think><answer> n/a </answer>"],
                       judge=lambda r: seen.append(r) or (0.0, 5.0))
    assert seen == ["it is fair"]  # no readable answer: the reasoning is not even judged


def test_the_batch_is_gathered_in_rank_order_with_this_process_offset(monkeypatch):
    import torch.distributed as dist

    from reward_model.rewards import gather_across_processes

    assert gather_across_processes([1, 2]) == ([1, 2], 0)  # not distributed: the local list
    parts = [["a0", "a1"], ["b0"], ["c0", "c1", "c2"]]
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    monkeypatch.setattr(dist, "get_rank", lambda: 2)

    def all_gather_object(out, payload):
        assert payload == ["c0", "c1", "c2"] and len(out) == 3
        out[:] = parts

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    assert gather_across_processes(["c0", "c1", "c2"]) == (["a0", "a1", "b0", "c0", "c1", "c2"], 3)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "all_gather_object", lambda out, payload: out.__setitem__(slice(None), parts))
    assert gather_across_processes(["b0"]) == (["a0", "a1", "b0", "c0", "c1", "c2"], 2)
    monkeypatch.setattr(dist, "get_world_size", lambda: 1)  # one process: no collective
    monkeypatch.setattr(dist, "all_gather_object", lambda out, payload: pytest.fail("gathered"))
    assert gather_across_processes(("x",)) == (["x"], 0)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)  # not started: the local list
    assert gather_across_processes(["x"]) == (["x"], 0)


def test_rank_reward_refuses_columns_of_different_lengths_and_counts_no_tie_as_ordered():
    with pytest.raises(ValueError):
        rank_reward([answer(1.0), answer(2.0)], label=[1.0], gather=local)
    # the same answer for different labels orders nothing
    assert rank_reward([answer(3.0), answer(3.0)], label=[1.0, 2.0], gather=local) == [0.0, 0.0]


def test_poor_after_every_is_poor_not_very_poor():
    from reward_model.rewards import stated_verdict

    assert stated_verdict("I checked every poor detail. Overall it is poor.") == (1.25, 2.5)
    assert stated_verdict("every poor") == (1.25, 2.5)
    assert stated_verdict("Overall it is very poor.") == (0.0, 1.25)
    assert stated_verdict("very poor") == (0.0, 1.25)

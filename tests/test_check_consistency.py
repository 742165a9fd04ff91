"""The check-level consistency reward: each verdict against its own two written values and the count."""

import pytest

from reward_model.check_consistency import check_agreement, check_consistency_reward
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord

FACTS = {
    "seen": ["a small yellow circle at the top", "a large red circle at the bottom", "a white background"],
    "asks": "a large red circle below a small yellow square on a white background",
    "pairs": [["large red circle", "a large red circle at the bottom", 3],
              ["small yellow square", "a small yellow circle at the top", 3]],
    "checks": [[True, "x"]] * 4 + [[False, "x"]] + [[True, "x"]] * 4,
    "compared": [["colour", "red", "red", True], ["shape", "circle", "circle", True], ["size", "large", "large", True],
                 ["colour", "yellow", "yellow", True], ["shape", "square", "circle", False],
                 ["size", "small", "small", True],
                 ["placement", "the large red circle below the small yellow square",
                  "the red circle at the bottom, the yellow circle at the top", True],
                 ["background", "white", "white", True], ["other objects", "none", "none", True]],
    "unmet": [], "issues": [], "met": [], "elements": 9,
}


def rationale(seen_first: bool) -> str:
    teacher = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=seen_first,
                               look_first=seen_first)
    record = IQARecord(image="x.png", task="alignment", label=4.44, prompt=FACTS["asks"], facts=FACTS)
    return teacher.write_one(record, 0)


@pytest.mark.parametrize("seen_first", [False, True])
def test_the_teachers_rationales_agree_with_themselves(seen_first):
    assert check_agreement(rationale(seen_first)) == 1.0


def test_a_verdict_that_ignores_its_values_or_a_wrong_count_loses_reward():
    text = rationale(True)
    copied = text.replace("Shape: seen circle, asked square, not met (4 of 5)", "Shape: seen circle, asked square, met (5 of 5)")
    assert copied != text and check_agreement(copied) < 1.0
    miscounted = text.replace("(4 of 5)", "(5 of 5)")
    assert check_agreement(miscounted) == pytest.approx(11 / 12)
    wrong_total = text.replace("8 of 9 elements are met", "9 of 9 elements are met")
    assert check_agreement(wrong_total) == pytest.approx(11 / 12)
    # 12 units: 9 checks, the closing count and two "Seen:" lines that must repeat an "I see" claim
    copied_asked = text.replace("Seen: a small yellow circle at the top.", "Seen: a small yellow square at the top.")
    assert copied_asked != text and check_agreement(copied_asked) == pytest.approx(11 / 12)
    # a placement's two phrases differ in words and may still be met: it is not compared word for word
    assert "Placement: seen the red circle at the bottom, the yellow circle at the top, asked" in text


def test_the_reward_scores_alignment_only_and_nothing_written_earns_nothing():
    text = rationale(True)
    rewards = check_consistency_reward([text, "<think> I see a red circle. </think><answer> 3.00 </answer>", text],
                                       task=["alignment", "alignment", "technical"])
    assert rewards == [1.0, 0.0, None]

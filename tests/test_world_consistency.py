"""A verdict checked against the rationale's own claims, and a teacher whose verdicts always pass."""

import itertools
import random
import re

from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord
from reward_model.interface import parse_answer
from t2i_guidance.world.captions import parse_prompt
from t2i_guidance.world.consistency import check_consistency
from t2i_guidance.world.training import iqa_export

PROMPT = "a red circle above a small blue square on a white background"


def _rationale(*sentences: str) -> str:
    return f"<think> {' '.join(sentences)} </think><answer> 5.00 </answer>"


def test_a_verdict_that_contradicts_the_claims_is_caught():
    # the shipped model's quickstart rationale: it sees the colours swapped and still says 8 of 8
    text = _rationale("The prompt asks for a red circle above a small blue square on a white background.",
                      "I see a small blue circle at the top.", "I see a small red square at the bottom.",
                      "I see a white background.", "Every element matches.", "8 of 8 elements are met.")
    check = check_consistency(text, 5.0)
    assert check.implied == (5, 8) and check.stated == (8, 8)
    assert check.verdict_agrees is False and check.band_agrees is True and not check.consistent


def test_claims_that_meet_everything_agree_with_every_element_matching():
    text = _rationale("The prompt asks for a red circle above a small blue square on a white background.",
                      "I see a large red circle at the top.", "I see a small blue square at the bottom.",
                      "I see a white background.", "Every element matches.", "8 of 8 elements are met.")
    assert check_consistency(text, 5.0).consistent
    assert not check_consistency(text, 3.0).consistent  # the score is not in the band of 8 of 8
    assert check_consistency(text.replace("8 of 8", "7 of 8"), 4.4).verdict_agrees is False


def test_the_prompt_stands_in_when_the_rationale_restates_nothing_and_no_verdict_is_none():
    text = _rationale("I see a large red circle at the top.", "I see a small blue square at the bottom.",
                      "I see a white background.", "8 of 8 elements are met.")
    assert check_consistency(text, 5.0, PROMPT).consistent
    assert check_consistency(_rationale("I see a white background."), 5.0, PROMPT).verdict_agrees is None


def test_coarse_position_words_leave_the_placement_open_but_nothing_else():
    text = _rationale("The prompt asks for a red circle to the left of a blue square on a white background.",
                      "I see a small red circle on the left.", "I see a small blue square at the bottom.",
                      "I see a white background.")
    assert check_consistency(text + " 7 of 7 elements are met.", 5.0).verdict_agrees
    assert check_consistency(text + " 6 of 7 elements are met.", 4.3).verdict_agrees
    assert check_consistency(text + " 5 of 7 elements are met.", 3.6).verdict_agrees is False
    opposite = text.replace("at the bottom", "on the right")  # left and right settle "to the left of"
    assert check_consistency(opposite + " 6 of 7 elements are met.", 4.3).verdict_agrees is False


def test_the_teacher_derives_its_verdict_from_the_checks_it_states():
    teacher, inconsistent = RuleBasedTeacher(element_checks=True), 0
    for index in range(120):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        record = IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                           source="world", split="train", facts=fields["facts"])
        text = teacher.write_one(record, 0)
        assert parse_answer(text).score == round(fields["label"], 2)  # 5 x N / M, no noise, nothing overlooked
        assert text == teacher.write_one(record, 1)
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert inconsistent <= 2  # the coarse position words of "I see" leave a rare case open


def test_the_tallied_checks_follow_the_prompt_and_end_on_the_count_they_ran():
    teacher, inconsistent = RuleBasedTeacher(element_checks=True, tally=True), 0
    for index in range(120):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        facts = fields["facts"]
        record = IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                           source="world", split="train", facts=facts)
        text = teacher.write_one(record, 0)
        tallies = re.findall(r"\((\d+) of (\d+)\)\.", text)
        checks = facts["checks"]
        # one tally per check, in order: the count rises exactly on the met ones
        assert [int(done) for _, done in tallies] == list(range(1, len(checks) + 1))
        assert [int(met) for met, _ in tallies] == list(itertools.accumulate(int(ok) for ok, _ in checks))
        assert f"{tallies[-1][0]} of {tallies[-1][1]} elements are met." in text
        assert parse_answer(text).score == round(fields["label"], 2)
        # the same checks as the met / unmet lists, in the prompt's order: the first object comes first
        assert sorted(s for ok, s in checks if ok) == sorted(facts["met"])
        assert sorted(s for ok, s in checks if not ok) == sorted(facts["unmet"])
        first_colour = parse_prompt(fields["prompt"]).objects[0].colour
        assert first_colour in checks[0][1]
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert inconsistent <= 2


def test_a_record_without_ordered_checks_keeps_the_untallied_form():
    image, fields = iqa_export.alignment_example(random.Random(3), "train", 32)
    facts = {key: value for key, value in fields["facts"].items() if key != "checks"}
    record = IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                       source="world", split="train", facts=facts)
    tallied = RuleBasedTeacher(element_checks=True, tally=True).write_one(record, 0)
    assert tallied == RuleBasedTeacher(element_checks=True).write_one(record, 0)
    assert not re.search(r"\(\d+ of \d+\)", tallied)


def _record(fields: dict, facts: dict | None = None) -> IQARecord:
    return IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                     source="world", split="train", facts=facts if facts is not None else fields["facts"])


def test_paired_checks_sit_beside_the_asked_object_and_the_claim_that_answers_it():
    teacher, inconsistent, missing_seen = RuleBasedTeacher(element_checks=True, tally=True, paired=True), 0, 0
    for index in range(150):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        facts, spec = fields["facts"], parse_prompt(fields["prompt"])
        text = teacher.write_one(_record(fields), 0)
        tallied = RuleBasedTeacher(element_checks=True, tally=True).write_one(_record(fields), 0)
        # the same checks with the same running counts as the tallied form, only regrouped
        assert re.findall(r"\(\d+ of \d+\)\.", text) == re.findall(r"\(\d+ of \d+\)\.", tallied)
        assert parse_answer(text).score == round(fields["label"], 2)
        blocks = text.split("Asked: ")[1:]
        assert len(blocks) == len(spec.objects) == len(facts["pairs"])
        checks = iter(sentence for _, sentence in facts["checks"])
        for block, request, (asked, seen, count) in zip(blocks, spec.objects, facts["pairs"], strict=True):
            assert block.startswith(f"{'an' if asked[0] in 'aeiou' else 'a'} {request.phrase()}.")
            if seen is None:
                missing_seen += 1
                assert f"no {request.colour} object is visible" in block
            else:  # the claim comes right after the asked object, before that object's checks
                assert block.split(". ")[1] == f"I see {seen}" and request.colour in seen
            for _ in range(count):  # this object's own checks, in the prompt's order
                sentence = next(checks)
                assert f"{sentence[0].upper()}{sentence[1:]} (" in block
        # every "I see" of the tallied form is said once in the paired form too
        assert sorted(re.findall(r"I see [^.(]+\.", text)) == sorted(re.findall(r"I see [^.(]+\.", tallied))
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert inconsistent <= 2 and missing_seen > 0


def test_without_pairs_the_paired_teacher_keeps_the_tallied_form():
    image, fields = iqa_export.alignment_example(random.Random(5), "train", 32)
    facts = {key: value for key, value in fields["facts"].items() if key != "pairs"}
    paired = RuleBasedTeacher(element_checks=True, tally=True, paired=True).write_one(_record(fields, facts), 0)
    assert paired == RuleBasedTeacher(element_checks=True, tally=True).write_one(_record(fields, facts), 0)
    assert "Asked:" not in paired


def test_compared_checks_name_both_values_before_the_verdict_and_keep_the_count():
    teacher = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True)
    paired = RuleBasedTeacher(element_checks=True, tally=True, paired=True)
    kinds, inconsistent = set(), 0
    for index in range(150):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        facts = fields["facts"]
        text = teacher.write_one(_record(fields), 0)
        # the same running counts as the paired form: only the wording of each check changed
        assert re.findall(r"\(\d+ of \d+\)\.", text) == re.findall(r"\(\d+ of \d+\)\.", paired.write_one(_record(fields), 0))
        assert parse_answer(text).score == round(fields["label"], 2)
        stated = re.findall(r"(\w[\w ]*): asked ([^,]+), seen (.+?), (met|not met) \(\d+ of \d+\)\.", text)
        assert len(stated) == len(facts["checks"])
        for (element, asked, seen, verdict), (ok, _) in zip(stated, facts["checks"], strict=True):
            assert (verdict == "met") == bool(ok)
            kinds.add(element)
            if element in ("Colour", "Shape", "Size", "Background"):
                assert (asked == seen) == bool(ok)  # one word against one word
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert {"Colour", "Shape", "Size", "Background", "Other objects"} <= kinds
    assert kinds & {"Placement", "Position"} and inconsistent <= 2


def test_seen_first_checks_swap_only_the_order_of_the_two_values():
    compared = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True)
    seen_first = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True)
    inconsistent = 0
    for index in range(60):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        text, reference = seen_first.write_one(_record(fields), 0), compared.write_one(_record(fields), 0)
        swapped = re.sub(r"asked ([^,]+), seen (.+?), (met|not met) \(", r"seen \2, asked \1, \3 (", reference)
        assert text == swapped and text != reference
        stated = re.findall(r"(\w[\w ]*): seen (.+?), asked ([^,]+), (met|not met) \(\d+ of \d+\)\.", text)
        assert [verdict == "met" for *_, verdict in stated] == [bool(ok) for ok, _ in fields["facts"]["checks"]]
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert inconsistent <= 1


def test_look_first_describes_the_picture_before_the_prompt_and_keeps_the_checks():
    look = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True, look_first=True)
    paired = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True)
    inconsistent = 0
    for index in range(60):
        image, fields = iqa_export.alignment_example(random.Random(index), "train", 32)
        facts = fields["facts"]
        text, reference = look.write_one(_record(fields), 0), paired.write_one(_record(fields), 0)
        body = text.split("\n\n", 1)[1]
        described = body.split(" The prompt asks for ")[0]
        # every seen object is claimed once, all before the prompt's words
        assert re.findall(r"I see ([^.]+)\.", body) == facts["seen"] and described.count("I see") == len(facts["seen"])
        assert "Asked:" not in described
        answered = [seen for _, seen, _ in facts["pairs"] if seen is not None]
        assert re.findall(r"Seen: ([^.]+)\.", body) == answered  # each asked object answered by its claim
        # the same checks, counts, verdict and score as the paired form
        assert re.findall(r"\w+: seen [^()]+\(\d+ of \d+\)\.", text) == re.findall(r"\w+: seen [^()]+\(\d+ of \d+\)\.", reference)
        assert parse_answer(text).score == parse_answer(reference).score
        inconsistent += not check_consistency(text, parse_answer(text).score, fields["prompt"]).consistent
    assert inconsistent <= 1

import random

from benchmarks.verdict_probe import WORD_ELEMENTS, held_out_records, probe_items
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord


def _reasoning(fields: dict, seen_first: bool) -> str:
    record = IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                       source="world-render", split="test", facts=fields["facts"])
    teacher = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=seen_first)
    return teacher.write_one(record, 0).split("\n\n", 1)[1]


def test_each_word_check_is_cut_before_its_verdict_and_swapped_once():
    for seen_first in (False, True):
        unequal = 0
        for _, fields in held_out_records(12):
            reasoning = _reasoning(fields, seen_first)
            items = probe_items(reasoning, seen_first, random.Random(0))
            words = [c for c in fields["facts"]["compared"] if c[0].capitalize() in WORD_ELEMENTS]
            assert len(items) == 2 * len(words)
            pairs = zip(items[::2], items[1::2], strict=True)
            for (written, swapped), (_, asked, seen, ok) in zip(pairs, words, strict=True):
                assert written.condition == "as written" and swapped.condition == "swapped"
                # as written: the prefix is the teacher's own text, the verdict is the truth
                assert reasoning.startswith(written.prefix) and written.prefix.endswith(",")
                assert written.equal == (asked == seen) == written.truly_met == bool(ok)
                # swapped: only that check's seen value changed, which flips whether the two values are equal
                assert swapped.equal != written.equal and swapped.truly_met == written.truly_met
                head = written.prefix.rsplit(": ", 1)[0]
                assert swapped.prefix.startswith(head) and f"asked {asked}" in swapped.prefix.rsplit(": ", 1)[1]
                unequal += not written.equal
        assert unequal > 0  # the held-out records hold unmet checks too


def test_held_out_records_are_alignment_records_of_the_test_split():
    records = held_out_records(4)
    assert len(records) == 4 and all("compared" in fields["facts"] for _, fields in records)
    assert records[0][1]["prompt"] == held_out_records(1)[0][1]["prompt"]


def test_own_rationale_checks_are_read_back_and_scored_against_the_truth():
    from benchmarks.verdict_probe import check_truth, written_checks

    copied = 0
    for seen_first in (False, True):
        for _, fields in held_out_records(12):
            reasoning = _reasoning(fields, seen_first)
            truth = fields["facts"]["compared"]
            words = [row for row in truth if row[0].capitalize() in WORD_ELEMENTS]
            checks = written_checks(reasoning, seen_first)
            assert [(e.lower(), a, s, met) for e, a, s, met in checks] == [(e, a, s, bool(ok)) for e, a, s, ok in words]
            counts = check_truth(checks, truth)  # the teacher's own rationale is true and consistent
            assert counts["checks"] == counts["seen true"] == len(words)
            assert counts["unequal written called met"] == counts["truly unmet called met"] == 0
            unmet = [i for i, (_, a, s, _) in enumerate(checks) if a != s]
            if unmet:  # a judge that copies the asked value and calls it met
                i = unmet[0]
                element, asked, _, _ = checks[i]
                lied = checks[:i] + [(element, asked, asked, True)] + checks[i + 1:]
                wrong = check_truth(lied, truth)
                assert wrong["wrong seen copies asked"] == wrong["seen wrong"] == 1
                assert wrong["truly unmet called met"] == 1 and wrong["unequal written"] == counts["unequal written"] - 1
                copied += 1
    assert copied > 0


def test_the_stated_count_is_the_last_one_written():
    from benchmarks.verdict_probe import stated_count

    assert stated_count("Size: seen small, asked large, not met (4 of 5). 8 of 9 elements are met. Good.") == (8, 9)
    assert stated_count("1 of 2 elements are met. 2 of 2 elements are met.") == (2, 2)
    assert stated_count("Every element matches.") is None


def test_a_misread_description_changes_the_checks_that_follow_it():
    from reward_model.cot.rejection import sft_target
    from t2i_guidance.world.training.misread_drills import drill_for_picture

    teacher = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True,
                               look_first=True)
    changed = 0
    for image, fields in held_out_records(12):
        drill = drill_for_picture(image, fields["prompt"], teacher, random.Random(1))
        if drill is None:
            continue
        record = IQARecord(image="x.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                           source="world-render", split="test", facts=fields["facts"])
        truthful = probe_items(sft_target(teacher.write_one(record, 0)), True, random.Random(0))[::2]
        misread = probe_items(drill["target"], True, random.Random(0))[::2]
        assert len(truthful) == len(misread) and drill["target"].startswith("<think> I see")
        changed += sum(a.truly_met != b.truly_met for a, b in zip(truthful, misread, strict=True))
    assert changed >= 6  # most misreadings flip one verdict (a few land on an element already unmet)

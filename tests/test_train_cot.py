import json
from pathlib import Path

import pytest

from reward_model.cot.rejection import RejectionConfig, build_cot_dataset, judge
from reward_model.cot.teachers import RuleBasedTeacher, split_plan
from reward_model.data.schema import IQARecord, write_records
from reward_model.interface import has_strict_format, parse_answer

RECORD = IQARecord(image="a.png", task="alignment", label=3.0, prompt="a red circle",
                   facts={"seen": ["a red circle on the left"], "issues": [], "unmet": ["no blue square is visible"]})


def test_teacher_writes_perception_first_plan_then_reason_trajectories():
    texts = RuleBasedTeacher(seed=1).write(RECORD, Path("a.png"), k=6)
    assert len(texts) == 6 and len(set(texts)) > 1  # sampled, not copies
    for text in texts:
        assert has_strict_format(text) and parse_answer(text).score is not None
        plan, target = split_plan(text)
        assert plan.startswith("Plan:") and "Plan:" not in target and has_strict_format(target)
        reasoning = parse_answer(target).rationale
        assert reasoning.startswith("I see a red circle on the left.")  # perception first
        assert parse_answer(target).score == parse_answer(text).score


def test_teacher_noise_is_controlled():
    exact = RuleBasedTeacher(noise_std=0.0, p_overlook=0.0).write(RECORD, Path("a.png"), k=3)
    assert all(parse_answer(t).score == 3.0 for t in exact)
    assert all("No blue square is visible." in t for t in exact)
    noisy = RuleBasedTeacher(noise_std=1.0, seed=0).write(RECORD, Path("a.png"), k=32)
    assert len({parse_answer(t).score for t in noisy}) > 10


def test_teacher_refuses_records_without_facts():
    bare = IQARecord(image="a.png", task="technical", label=2.0)
    with pytest.raises(ValueError, match="facts"):
        RuleBasedTeacher().write(bare, Path("a.png"), k=1)


def test_acceptance_rule():
    good = "<think> I see x. </think><answer> 3.40 </answer>"
    assert judge(good, 3.0, 0.5) == pytest.approx(0.4)
    assert judge(good, 3.0, 0.3) is None
    assert judge("<answer> 3.0 </answer>", 3.0, 0.5) is None  # malformed trajectories are rejected


class CountingTeacher(RuleBasedTeacher):
    calls: int = 0

    def write(self, record, image_path, k):
        self.calls += 1
        return super().write(record, image_path, k)


def make_records(tmp_path, n=6):
    records = [
        IQARecord(image=f"{i}.png", task=("technical", "aesthetic")[i % 2], label=1.0 + 0.5 * i, source="syn",
                  facts={"seen": [f"a shape number {i}"], "issues": ["the edges are blurred"] if i % 3 else []})
        for i in range(n)
    ]
    path = tmp_path / "train.jsonl"
    write_records(path, records)
    return path


def read_lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_rejection_keeps_the_best_accepted_and_tags_difficulty(tmp_path):
    source = make_records(tmp_path)
    out = tmp_path / "cot" / "train.jsonl"
    config = RejectionConfig(k=8, tolerance=0.4, keep="best")
    summary = build_cot_dataset(source, out, RuleBasedTeacher(noise_std=0.4, seed=3), config, progress=False)
    lines = read_lines(out)
    assert len({line["key"] for line in lines}) == len(lines)  # one per record at most
    for line in lines:
        assert abs(line["prediction"] - line["label"]) <= 0.4
        assert "Plan:" not in line["target"] and "Plan:" in line["trajectory"]
        assert line["difficulty"] == ("easy" if line["accepted"] / 8 >= 0.5 else "hard")
        assert Path(line["image"]).is_absolute()
    written = sum(s["written"] for s in summary.values())
    accepted = sum(s["accepted"] for s in summary.values())
    assert written == 6 * 8 and 0 < accepted < written
    assert set(summary) == {"technical", "aesthetic"}
    assert json.loads((tmp_path / "cot" / "train.jsonl.summary.json").read_text()) == summary


def test_keep_all_keeps_every_accepted_trajectory(tmp_path):
    source = make_records(tmp_path)
    out = tmp_path / "all.jsonl"
    summary = build_cot_dataset(source, out, RuleBasedTeacher(seed=3), RejectionConfig(k=8, keep="all"),
                                progress=False)
    assert len(read_lines(out)) == sum(s["accepted"] for s in summary.values())


def test_rejection_resumes_without_redoing_records(tmp_path):
    source = make_records(tmp_path)
    out = tmp_path / "cot.jsonl"
    config = RejectionConfig(k=4, tolerance=1.0)
    first = CountingTeacher(seed=5)
    build_cot_dataset(source, out, first, config, progress=False)
    complete = read_lines(out)
    # Simulate a crash: the last record's output was written but its state line was not.
    state = out.with_name(out.name + ".state.jsonl")
    state_lines = state.read_text().splitlines()
    state.write_text("\n".join(state_lines[:-1]) + "\n")
    again = CountingTeacher(seed=5)
    summary = build_cot_dataset(source, out, again, config, progress=False)
    assert again.calls == 1  # only the unfinished record is redone
    assert read_lines(out) == complete
    assert sum(s["records"] for s in summary.values()) == 6


def test_a_vlm_teacher_runs_through_rejection_sampling(tmp_path):
    from reward_model.cot.teachers import TransformersTeacher
    from tests.train_support import make_data, make_tiny_model

    model_dir = make_tiny_model(tmp_path / "model")
    data = make_data(tmp_path / "data", n=4)
    teacher = TransformersTeacher(model_path=str(model_dir), max_new_tokens=6)
    out = tmp_path / "cot.jsonl"
    summary = build_cot_dataset(data["train"], out, teacher, RejectionConfig(k=2), progress=False)
    # An untrained model writes no valid trajectory: everything is rejected, nothing is invented.
    assert summary["technical"]["written"] == 2 * summary["technical"]["records"]
    assert summary["technical"]["accepted"] == 0 and summary["technical"]["unsolved"] > 0
    assert read_lines(out) == []


def test_only_the_training_split_is_distilled(tmp_path):
    train = IQARecord(image="a.png", task="technical", label=2.0, split="train", facts={"seen": ["a square"]})
    test = IQARecord(image="b.png", task="technical", label=2.0, split="test", facts={"seen": ["a circle"]})
    source = tmp_path / "mixed.jsonl"
    write_records(source, [train, test])
    out = tmp_path / "cot.jsonl"
    summary = build_cot_dataset(source, out, RuleBasedTeacher(), RejectionConfig(k=2, tolerance=5.0), progress=False)
    assert summary["technical"]["records"] == 1
    assert {Path(line["image"]).name for line in read_lines(out)} == {"a.png"}


@pytest.mark.parametrize("header", ["Plan:", "**Plan:**", "**Plan**:", "plan -", "__Plan__:"])
def test_plan_headers_are_recognised_and_a_single_newline_ends_the_plan(header):
    for gap in ("\n\n", "\n", "\n  \n"):
        text = f"<think> {header} look, then judge.{gap}I see a red circle. </think><answer> 3.00 </answer>"
        plan, target = split_plan(text)
        assert plan == f"{header} look, then judge."
        assert target == "<think> I see a red circle. </think><answer> 3.00 </answer>"


def test_a_plan_with_nothing_after_it_is_never_a_target():
    text = "<think> Plan: look, then judge. </think><answer> 3.00 </answer>"
    plan, target = split_plan(text)
    assert plan == "Plan: look, then judge." and target == "<think></think><answer> 3.00 </answer>"
    assert judge(text, 3.0, 0.5) is None  # the format check runs on the stripped target
    assert judge("<think> Plan: look.\nI see it. </think><answer> 3.00 </answer>", 3.0, 0.5) == 0.0
    # a text without a plan is its own target
    assert split_plan("<think> I see it. </think><answer> 3 </answer>")[1] == "<think> I see it. </think><answer> 3 </answer>"


def test_the_vlm_teacher_generates_through_the_scorer_backend(tmp_path):
    from reward_model.backends.transformers_backend import TransformersBackend
    from reward_model.cot.teacher_prompt import TEACHER_INSTRUCTION
    from reward_model.cot.teachers import TransformersTeacher
    from tests.train_support import make_data, make_tiny_model

    model_dir = make_tiny_model(tmp_path / "model")
    data = make_data(tmp_path / "data", n=4)
    teacher = TransformersTeacher(model_path=str(model_dir), max_new_tokens=5, seed=0)
    assert isinstance(teacher.backend, TransformersBackend)
    from reward_model.backends import Request
    from reward_model.data.schema import read_records
    from reward_model.interface import load_image

    record = next(read_records(data["train"]))

    image_path = data["train"].parent / record.image
    rendered = teacher.backend.render(Request(load_image(image_path), record.task, record.prompt))
    assert TEACHER_INSTRUCTION.strip() in rendered and rendered.rstrip().endswith("assistant")
    texts = teacher.write(record, image_path, k=3)
    assert len(texts) == 3 and texts == teacher.write(record, image_path, k=3)  # seeded

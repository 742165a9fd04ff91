"""The scorer refresh after a new generator: one command, resumable, ships only what is not worse."""

from __future__ import annotations

import json

import pytest

import reward_model.train
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from t2i_guidance.world.training import refresh_scorer
from tests.train_support import make_tiny_model


def _rows(task: str, labels: list[float], scores: list[float | None]) -> list[dict]:
    return [{"source": "world-render", "task": task, "label": label, "score": score, "image": f"{task}_{i}.png"}
            for i, (label, score) in enumerate(zip(labels, scores, strict=True))]


LABELS = [float(i % 5) + 0.1 * i for i in range(40)]
ROUNDS = 200  # bootstrap rounds: enough to tell these cases apart


def test_verdict_keeps_a_scorer_that_got_worse_and_ships_one_that_did_not():
    good = _rows("technical", LABELS, LABELS)
    noisy = _rows("technical", LABELS, [v if i % 4 else 10 - v for i, v in enumerate(LABELS)])
    reversed_ = _rows("technical", LABELS, [-v for v in LABELS])
    assert refresh_scorer.ship_verdict(noisy, good, ROUNDS) == (True, [])
    assert refresh_scorer.ship_verdict(good, good, ROUNDS) == (True, [])  # no change is not worse
    ship, reasons = refresh_scorer.ship_verdict(good, reversed_, ROUNDS)
    assert not ship and "SRCC fell" in reasons[0]
    unreadable = _rows("technical", LABELS, [None] * len(LABELS))
    ship, reasons = refresh_scorer.ship_verdict(good, unreadable, ROUNDS)
    assert not ship and "no SRCC" in reasons[0]
    some_failures = _rows("technical", LABELS, [None if i < 5 else v for i, v in enumerate(LABELS)])
    ship, reasons = refresh_scorer.ship_verdict(good, some_failures, ROUNDS)
    assert not ship and "parse failures grew from 0 to 5" in reasons[0]


def test_bad_input_exits_before_any_model_loads(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        refresh_scorer.parse_args(["--generator", str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and "error: --generator" in capsys.readouterr().err


def test_refresh_resumes_after_an_interrupted_stage_and_ships_with_provenance(tmp_path, monkeypatch):
    generator = tmp_path / "generator"
    WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=(8, 16, 16)).save_pretrained(generator)
    scorer = make_tiny_model(tmp_path / "scorer")
    (scorer / "provenance.json").write_text(json.dumps({"base_vlm": "reward_model/weights/world-base-vlm"}))
    out, target = tmp_path / "refresh", tmp_path / "shipped"
    argv = ["--generator", str(generator), "--scorer", str(scorer), "--target", str(target), "--out", str(out),
            "--pool", "2", "--test-pool", "4", "--renders", "10", "--sft-steps", "2", "--grpo1-steps", "1",
            "--grpo2-steps", "1", "--batch-size", "8", "--max-new-tokens", "12", "--ship"]
    real_grpo = reward_model.train.run_grpo_stage
    calls = []

    def interrupted_grpo(config, stage):
        calls.append(stage["out"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during GRPO stage 2
        return real_grpo(config, stage)

    monkeypatch.setattr(reward_model.train, "run_grpo_stage", interrupted_grpo)
    with pytest.raises(KeyboardInterrupt):
        refresh_scorer.main(argv)
    kept = {path: path.stat().st_mtime_ns for path in (out / "pool_train" / "chunk_0000.npz",
                                                        out / "data" / "train.jsonl", out / "sft" / "config.json",
                                                        out / "grpo_stage1" / "config.json",
                                                        out / "eval" / "before_renders" / "predictions.jsonl")}
    assert not (out / "grpo_stage2").exists() and not target.exists()

    # A random tiny scorer answers nothing readable: it has no SRCC, so it would never ship; let it pass the
    # verdict here to exercise the export.
    monkeypatch.setattr(refresh_scorer, "ship_verdict", lambda before, after, rounds=0: (True, []))
    monkeypatch.setattr(refresh_scorer, "no_gain_reason", lambda changes: None)
    assert refresh_scorer.main(argv) == 0
    assert calls[2:] == [str(out / "grpo_stage2")]  # only the interrupted stage ran again
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())
    report = json.loads((out / "refresh_report.json").read_text())
    assert report["final_stage"] == "grpo_stage2" and report["shipped"] == str(target)
    assert report["train_records"] == {"generator": 6, "render_replay": len(
        [line for line in (out / "data" / "train.jsonl").read_text().splitlines() if "world-render" in line])}
    for stage in ("before", "sft", "grpo_stage1", "grpo_stage2"):
        assert set(report["evaluations"][stage]) == {"renders", "generator"}
    generator_test = report["evaluations"]["before"]["generator"]
    assert {row["task"] for row in generator_test} == {"aesthetic", "alignment", "technical"}
    assert sum(row["n"] for row in generator_test) == 12  # 4 held-out pictures x 3 dimensions
    provenance = json.loads((target / "provenance.json").read_text())
    assert provenance["refreshed_for_generator"]["path"] == "generator"  # no machine path: outside the repo, its name
    assert provenance["base_vlm"].endswith("world-base-vlm")
    assert provenance["refresh"]["settings"]["sft_steps"] == 2
    assert (target / "config.json").is_file() and "Verdict" in (out / "refresh_report.md").read_text()


def test_a_refresh_without_gain_on_the_generators_pictures_is_not_shipped():
    change = lambda task, value: {"task": task, "change": value, "ci95": None}  # noqa: E731
    assert refresh_scorer.no_gain_reason([change("alignment", 0.10), change("aesthetic", -0.02)]) is None
    reason = refresh_scorer.no_gain_reason([change("alignment", -0.035), change("aesthetic", -0.062)])
    assert reason == "no gain on the new generator's pictures (mean SRCC change -0.049)"
    assert "n/a" in refresh_scorer.no_gain_reason([change("alignment", None)])  # unreadable is no gain


def test_a_refresh_teaches_the_form_the_shipped_scorer_writes(tmp_path):
    """The embedded preset reads its alignment verdicts from a look-first description: a refresh that
    taught another form would leave the rule nothing to read."""
    from pathlib import Path

    from t2i_guidance.world.training.refresh_scorer import parse_args, training_config

    (tmp_path / "model_index.json").write_text("{}")  # a pipeline folder, as far as the checks look
    args = parse_args(["--generator", str(tmp_path), "--out", str(tmp_path / "out")])
    files = {"train": Path("train.jsonl"), "renders": Path("test.jsonl")}
    options = training_config(tmp_path / "out", args, files)["cot"]["teacher_options"]
    assert options["look_first"] and options["compare"] and options["seen_first"] and options["paired"]
    assert args.max_new_tokens >= 400  # the look-first rationale's room

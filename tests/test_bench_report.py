"""World GenEval judging on rendered scenes, statistics, the report rebuilt from rows, and the IQA command."""

import json

import numpy as np
import pytest

from benchmarks.rows import RowWriter
from benchmarks.run_report import compute_table, paired_differences, write_run_report
from benchmarks.stats import bootstrap_interval, mean_of_group_means, per_prompt, win_rate
from t2i_guidance.world.oracles import observe
from t2i_guidance.world.prompt_sets import build_suite, judge
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import Scene, SceneObject, sample_count_scene


def seen(*objects, background="white"):
    return observe(render_scene(Scene(tuple(objects), background, position="left"), 32))


def test_counting_is_exact_and_says_why():
    scene = sample_count_scene(3, 3, shape="square", colour="red", size="small", background="white")
    observation = observe(render_scene(scene, 32))
    assert judge({"include": [{"shape": "square", "count": 3}], "exclude": [{"shape": "square", "count": 4}]},
                 observation).correct
    two = judge({"include": [{"shape": "square", "count": 2}], "exclude": [{"shape": "square", "count": 3}]},
                observation)
    assert not two.correct and "expected square < 3, found 3" in two.reason
    four = judge({"include": [{"shape": "square", "count": 4}]}, observation)
    assert not four.correct and "expected square >= 4, found 3" in four.reason


def test_colour_and_position_rules():
    left = SceneObject("circle", "red", "large", 0.25, 0.5)
    right = SceneObject("square", "blue", "large", 0.75, 0.5)
    observation = seen(left, right)
    assert judge({"include": [{"shape": "circle", "count": 1, "colour": "red"}]}, observation).correct
    wrong = judge({"include": [{"shape": "circle", "count": 1, "colour": "green"}]}, observation)
    assert not wrong.correct and "expected green circle" in wrong.reason
    # "a circle left of a square": the square is the reference (group 0), the circle relates to it.
    assert judge({"include": [{"shape": "square", "count": 1},
                              {"shape": "circle", "count": 1, "position": ["left_of", 0]}]}, observation).correct
    flipped = judge({"include": [{"shape": "square", "count": 1},
                                 {"shape": "circle", "count": 1, "position": ["right_of", 0]}]}, observation)
    assert not flipped.correct and "right of" in flipped.reason
    missing = judge({"include": [{"shape": "triangle", "count": 1},
                                 {"shape": "circle", "count": 1, "position": ["left_of", 0]}]}, observation)
    assert not missing.correct and "no target" in missing.reason


def test_suite_has_six_tasks_of_distinct_parseable_prompts():
    from t2i_guidance.world.captions import parse_prompt

    suite = build_suite()
    assert [t for t in dict.fromkeys(r["task"] for r in suite)] == [
        "single_object", "two_object", "counting", "colors", "position", "color_attr"]
    assert len({r["prompt"] for r in suite}) == len(suite) and build_suite() == suite
    for record in suite:
        parse_prompt(record["prompt"])  # the oracles can judge alignment on every prompt


def test_bootstrap_and_win_rate():
    groups = {"a": [1.0, 1.0, 0.0, 0.0], "b": [1.0, 1.0, 1.0, 1.0]}
    point, low, high = bootstrap_interval(groups, mean_of_group_means)
    assert point == pytest.approx(0.75) and low < point < high <= 1.0
    assert bootstrap_interval({"a": [0.5] * 5}, mean_of_group_means) == (0.5, 0.5, 0.5)
    assert win_rate([1.0, 0.0, -2.0, 3.0]) == {"wins": 0.5, "ties": 0.25, "losses": 0.25, "pairs": 4}
    assert per_prompt([("t", "p1", 1.0), ("t", "p1", 0.0), ("t", "p2", 1.0)]) == {"t": [0.5, 1.0]}


def row(strategy, kind, guide, prompt_id, task, k, correct, alignment):
    independent = {"oracle": guide != "oracle", "correctness:oracle": guide != "oracle"}
    return {"strategy": strategy, "prompt_set": "world-geneval", "prompt_id": prompt_id, "image_index": k,
            "task": task, "prompt": prompt_id, "kind": kind, "n": 1 if kind == "unguided" else 4, "preset": "p",
            "guide": guide, "generator": "g", "seeds": [1000 * k], "pick": 0, "guide_score": None,
            "costs": {"nfes": 40.0 if kind == "unguided" else 160.0, "scorer_requests": 0, "generated_tokens": 0},
            "image": None, "judges": {"oracle": {"alignment": {"status": "ok", "score": alignment, "reason": ""}}},
            "independent": independent, "correct": correct, "reason": "", "correctness_judge": "oracle",
            "timing": {"strategy_seconds": 0.1}}


def test_report_from_rows_alone_keeps_self_judged_numbers_apart(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for task in ("single_object", "counting"):
        for p in range(4):
            for k in range(4):
                base = bool(rng.random() < (0.5 if task == "single_object" else 0.0))
                rows.append(row("unguided:p", "unguided", None, f"{task}-{p}", task, k, base, 2.0))
                rows.append(row("best-of-4:p", "best-of-n", "tiny", f"{task}-{p}", task, k, True, 3.0))
                rows.append(row("best-of-4:o", "best-of-n", "oracle", f"{task}-{p}", task, k, True, 4.0))
    with RowWriter(tmp_path / "rows.jsonl") as writer:
        for r in rows:
            writer.append(r)
    (tmp_path / "config.json").write_text(json.dumps({"strategies": ["unguided:p", "best-of-4:p", "best-of-4:o"],
                                                      "judges": ["oracle"], "images_per_prompt": 4}))
    table = {e["strategy"]: e for e in compute_table(rows)}
    unguided = table["unguided:p"]
    assert unguided["overall"][0] == pytest.approx(np.mean(list(unguided["tasks"].values())))
    assert unguided["tasks"]["counting"] == 0.0 and table["best-of-4:p"]["overall"][0] == 1.0
    diffs = {(d["strategy"], d["metric"]): d for d in paired_differences(rows)}
    assert diffs[("best-of-4:p", "alignment")]["difference"][0] == pytest.approx(1.0)
    assert diffs[("best-of-4:p", "alignment")]["win_rate"]["wins"] == 1.0
    assert diffs[("best-of-4:p", "alignment")]["independent"]
    assert not diffs[("best-of-4:o", "alignment")]["independent"]

    text = write_run_report(tmp_path).read_text()
    main, _, apart = text.partition("## Not independent")
    assert "best-of-4:p" in main and "best-of-4:o" not in main.split("## Compute")[0]
    assert "oracle-guided, oracle-judged: not independent" in apart
    for name in ("quality_vs_nfes.png", "quality_vs_scorer_tokens.png", "samples.png", "summary.json"):
        assert (tmp_path / name).exists()


def test_one_prompt_per_task_has_no_interval_and_refinement_is_summarised(tmp_path):
    rows = []
    for task in ("single_object", "counting"):
        rows.append(row("unguided:p", "unguided", None, f"{task}-0", task, 0, True, 2.0))
        refined = row("refine:p", "refine", "tiny", f"{task}-0", task, 0, task == "counting", 3.0)
        refined["search"] = {"rounds": [{"round": 0, "prompt": refined["prompt"]}, {"round": 1, "prompt": "new"}],
                             "events": [{"event": "rewrite_rejected"}], "stopped": "max_rounds",
                             "picked_prompt": "new" if task == "counting" else refined["prompt"]}
        rows.append(refined)
    with RowWriter(tmp_path / "rows.jsonl") as writer:
        for r in rows:
            writer.append(r)
    table = {e["strategy"]: e for e in compute_table(rows)}
    assert table["refine:p"]["overall"] is None and table["refine:p"]["overall_point"] == 0.5
    text = write_run_report(tmp_path).read_text()
    assert "| refine:p (guided by tiny) | 0.50 (no interval: 1 prompt in a task) |" in text
    assert "refine:p: 1 of 2 kept images were drawn from a rewritten prompt" in text and "2 rewrites rejected" in text
    assert (tmp_path / "quality_vs_seconds.png").exists()


def test_iqa_command_scores_world_records_and_reports_correlations(tmp_path):
    from benchmarks.iqa import main

    assert main(["--world", "60", "--out", str(tmp_path), "--scorer", "oracle", "--split", "all"]) == 0
    metrics = {(m["source"], m["task"]): m for m in json.loads((tmp_path / "metrics.json").read_text())}
    assert metrics[("world", "technical")]["srcc"] > 0.5  # the oracle tracks the known degradation levels
    predictions = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 60
    assert main(["--world", "60", "--out", str(tmp_path), "--scorer", "oracle", "--split", "all"]) == 0
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 60  # resumed, nothing twice
    assert "Q-Insight" in (tmp_path / "metrics.md").read_text()


def test_iqa_bad_input_is_one_error_line(capsys):
    from benchmarks.iqa import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--records", "/nonexistent.jsonl", "--out", "/tmp/x"])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error:")


def test_prompt_files_in_the_public_sets_layouts(tmp_path):
    from t2i_guidance.registries import load_prompt_set

    (tmp_path / "parti.tsv").write_text("Prompt\tCategory\tChallenge\nA cat\tAnimals\tBasic\nA dog\tAnimals\tBasic\n")
    (tmp_path / "draw.csv").write_text("Prompts,Category\nA red cube,Colors\n")
    (tmp_path / "geneval.jsonl").write_text(json.dumps(
        {"tag": "counting", "include": [{"class": "dog", "count": 2}], "prompt": "a photo of two dogs"}) + "\n")
    (tmp_path / "dup.txt").write_text("a cat\na cat\n")
    parti = load_prompt_set(f"file:{tmp_path / 'parti.tsv'}")
    assert [r["prompt"] for r in parti.records] == ["A cat", "A dog"] and parti.tasks == ["Animals"]
    assert load_prompt_set(f"file:{tmp_path / 'draw.csv'}").records[0]["task"] == "Colors"
    geneval = load_prompt_set(f"file:{tmp_path / 'geneval.jsonl'}")
    assert geneval.records[0]["task"] == "counting" and geneval.correctness is None
    with pytest.raises(ValueError, match="repeats the prompt"):
        load_prompt_set(f"file:{tmp_path / 'dup.txt'}")

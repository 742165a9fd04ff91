"""The staged scorer training's report: paired comparisons only where both stages' predictions exist."""

import json

from t2i_guidance.world.training.train_scorer import write_tables


def _evaluation(srcc: float) -> dict:
    return {"per_task": [{"task": "alignment", "n": 4, "parse_failures": 0, "srcc": srcc, "plcc": srcc}]}


def _predictions(folder, scores):
    folder.mkdir()
    rows = [{"task": "alignment", "label": float(i), "image": f"{i}.png", "score": s} for i, s in enumerate(scores)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_reused_sft_without_its_predictions_is_reported_without_a_comparison(tmp_path):
    results = {"evaluations": {"sft": _evaluation(0.2), "grpo_stage1": _evaluation(0.4)}}
    _predictions(tmp_path / "eval_grpo_stage1", [0.0, 1.0, 3.0, 2.0])
    table = write_tables(tmp_path, results)
    assert "| sft | alignment | 4 | 0 | 0.200 | 0.200 |" in table
    assert "SRCC change" not in table and "srcc_changes" not in results


def test_both_stages_predictions_give_a_paired_change(tmp_path):
    results = {"evaluations": {"sft": _evaluation(0.2), "grpo_stage1": _evaluation(1.0)}}
    _predictions(tmp_path / "eval_sft", [3.0, 1.0, 0.0, 2.0, 4.0])
    _predictions(tmp_path / "eval_grpo_stage1", [0.0, 1.0, 2.0, 3.0, 4.0])
    table = write_tables(tmp_path, results)
    change = results["srcc_changes"]["sft->grpo_stage1"][0]
    assert change["change"] > 0.5  # a perfect ranking against a poor one
    assert "| sft -> grpo_stage1 | alignment | 5 |" in table

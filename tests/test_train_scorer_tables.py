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


def test_paired_checks_need_the_tally_and_sft_only_stops_before_grpo(tmp_path, capsys):
    import pytest

    from t2i_guidance.world.training.train_scorer import main

    with pytest.raises(SystemExit) as refused:
        main(["--out", str(tmp_path / "x"), "--world", "--element-checks", "--paired"])
    assert refused.value.code == 2 and "--paired" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["--out", str(tmp_path / "x"), "--world", "--element-checks", "--tally", "--compare"])
    assert refused.value.code == 2 and "--compare" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["--out", str(tmp_path / "x"), "--world", "--element-checks", "--tally", "--paired", "--seen-first"])
    assert refused.value.code == 2 and "--seen-first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["--out", str(tmp_path / "x"), "--world", "--element-checks", "--tally", "--look-first"])
    assert refused.value.code == 2 and "--look-first" in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["--out", str(out), "--world", "--n", "24", "--element-checks", "--tally", "--paired",
                 "--sft-steps", "1", "--sft-limit", "8", "--eval-limit", "3", "--max-new-tokens", "8",
                 "--skip-untrained", "--sft-only"]) == 0
    results = json.loads((out / "learning_proof.json").read_text())
    assert list(results["evaluations"]) == ["sft"] and not (out / "grpo_stage1").exists()
    assert results["settings"]["paired"] and results["settings"]["device"] == "cpu"
    taught = [json.loads(line) for line in (out / "cot" / "train.jsonl").read_text().splitlines()]
    assert any("Asked: " in row["trajectory"] for row in taught if row["task"] == "alignment")

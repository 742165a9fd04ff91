import json

import numpy as np
import pytest
from scipy import stats

from reward_model.evaluate import correlation_table, format_table, logistic4, plcc, plcc_logistic, srcc


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, 40)
    predictions = labels + rng.normal(0, 0.8, 40)
    assert srcc(predictions, labels) == pytest.approx(stats.spearmanr(predictions, labels).statistic)
    assert plcc(predictions, labels) == pytest.approx(stats.pearsonr(predictions, labels).statistic)


def test_logistic_fit_linearises_a_monotone_distortion():
    x = np.linspace(-3, 3, 50)
    labels = logistic4(x, 5.0, 0.0, 0.3, 0.4)
    assert plcc(x, labels) < 0.95
    assert plcc_logistic(x, labels) == pytest.approx(1.0, abs=1e-4)


def test_undefined_metrics_are_none_not_numbers():
    assert srcc([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0]) is None
    assert plcc([1.0, 2.0], [1.0, 2.0]) is None
    assert plcc_logistic([3.0] * 6, [1, 2, 3, 4, 5, 6]) is None


def test_table_per_source_and_task_counts_parse_failures():
    rows = [{"source": "a", "task": "technical", "label": float(i), "score": float(i) + 0.1} for i in range(6)]
    rows += [{"source": "b", "task": "technical", "label": float(i), "score": float(5 - i)} for i in range(6)]
    rows += [{"source": "b", "task": "technical", "label": 1.0, "score": None}]
    table = {(r["source"], r["task"]): r for r in correlation_table(rows)}
    assert table[("a", "technical")]["srcc"] == pytest.approx(1.0)
    assert table[("b", "technical")]["srcc"] == pytest.approx(-1.0)
    assert table[("b", "technical")]["parse_failures"] == 1 and table[("b", "technical")]["n"] == 7
    assert table[("all", "technical")]["n"] == 13
    text = format_table(list(table.values()))
    assert "| a | technical | 6 | 0 | 1.000 |" in text


def test_evaluation_goes_through_the_scorer_and_records_unreadable_images(tmp_path):
    from reward_model.data.schema import IQARecord, read_records, write_records
    from reward_model.evaluate import evaluate_model
    from reward_model.interface import ImageItem, load_image
    from reward_model.scorer import OmniQualityScorer
    from tests.train_support import make_data, make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    data = make_data(tmp_path / "data", n=12)
    records = [r for r in read_records(data["train"])][:4]
    (tmp_path / "data" / "broken.png").write_bytes(b"not a png")
    records.append(IQARecord(image="broken.png", task="technical", label=2.0, source="synthetic"))
    jsonl = tmp_path / "data" / "eval.jsonl"
    write_records(jsonl, records)
    table = evaluate_model(model, jsonl, tmp_path / "eval", split=None, max_new_tokens=8, batch_size=4)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert rows[-1]["status"] == "error" and rows[-1]["score"] is None and "broken.png" in rows[-1]["error"]
    assert next(r for r in table if r["source"] == "all")["n"] == 5
    # The same answers as the scorer gives directly (greedy, same budget): one inference path
    scorer = OmniQualityScorer(model=str(model), decoding="greedy", max_new_tokens=8, batch_size=4)
    items = [ImageItem(str(i), load_image(tmp_path / "data" / r.image)) for i, r in enumerate(records[:4])]
    direct = scorer.score(items, None, ["technical"])
    assert [row["completion"] for row in rows[:4]] == [direct[str(i)]["technical"].raw for i in range(4)]


def test_unknown_eval_settings_are_refused():
    from reward_model.evaluate import scorer_settings

    assert scorer_settings({"do_sample": True, "top_k": 20})["decoding"] == "sampled"
    assert scorer_settings({"max_new_tokens": 8})["decoding"] == "greedy"
    with pytest.raises(ValueError, match="unknown eval generation"):
        scorer_settings({"beam_width": 4})

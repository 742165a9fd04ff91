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

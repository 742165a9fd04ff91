"""The strategy table's report on made-up rows: resume rules, modelled seconds, adaptive stopping
against fixed best-of-N, the Markdown and the two-row plot (no model loads)."""

from __future__ import annotations

import pytest

from benchmarks.search_strategies import STRATEGIES, complete, usable_rows
from benchmarks.strategy_report import markdown, nfes_to_reach, plot, summarise

BUDGETS = [160.0, 320.0]
UNIT = {"seconds_per_nfe": 0.01, "seconds_per_request": 0.5}


def result(total: float, nfes: float, requests: float = 10, stopped=None) -> dict:
    return {"nfes": nfes, "scorer_requests": requests, "saved": {}, "rejected_rewrites": 0, "stopped": stopped,
            "oracle": {"total": total, "alignment": total, "aesthetic": total, "technical": total}}


def row(prompt: str, shift: float = 0.0) -> dict:
    results = {}
    for name in STRATEGIES:
        for b in BUDGETS:
            results[f"{name}@{b:g}"] = result(3.0 + b / 320 + shift, b)
    # fixed best-of-N: 3.5 at 160, 4.0 at 320; adaptive: 3.75 having spent 120 of each budget
    for b in BUDGETS:
        results[f"best-of-n-adaptive@{b:g}"] = result(3.75 + shift, 120, stopped="small_gain")
    return {"preset": "p", "prompt": prompt, "results": results, "generated": 8, "seconds": 2.0,
            "unit_costs": UNIT, "settings": {"num_inference_steps": 20, "guidance_scale": 1.5}}


def test_a_row_without_a_strategy_or_budget_is_not_complete_and_the_last_complete_row_wins():
    old = row("a")
    del old["results"]["refine-fixed-seeds@160"]
    assert not complete(old, BUDGETS) and complete(row("a"), BUDGETS)
    assert not complete(row("a"), [*BUDGETS, 480.0])
    newer = row("a", shift=0.1)
    assert usable_rows([old, row("b"), row("a"), newer], ["a", "b", "c"], BUDGETS) == [newer, row("b")]
    without_costs = row("c")
    del without_costs["unit_costs"]
    assert usable_rows([without_costs], ["c"], BUDGETS) == []


def test_nfes_to_reach_interpolates_between_budgets():
    curve = [(160, 3.5), (320, 4.0), (480, 4.0)]
    assert nfes_to_reach(curve, 3.75) == (pytest.approx(240), "")
    assert nfes_to_reach(curve, 3.0) == (160, "<=")
    assert nfes_to_reach(curve, 4.5) == (None, ">")


def test_summary_models_seconds_and_compares_adaptive_stopping(tmp_path):
    rows = [row("a"), row("b", shift=0.2)]
    summary = summarise(rows, BUDGETS, list(STRATEGIES))["p"]
    entry = summary["table"]["best-of-n@320"]
    assert entry["modelled_seconds"] == pytest.approx(320 * 0.01 + 10 * 0.5)
    adaptive = summary["adaptive"]
    assert [a["adaptive_nfes"] for a in adaptive] == [120, 120]
    # the adaptive mean 3.85 sits between fixed best-of-N's 3.6 (160 NFEs) and 4.1 (320 NFEs)
    assert adaptive[1]["fixed_nfes_for_adaptive_quality"] == pytest.approx(160 + 0.25 / 0.5 * 160)
    assert adaptive[1]["delta"] == pytest.approx(-0.25) and adaptive[0]["stopped"] == {"small_gain": 2}
    report = {"command": "python -m benchmarks.search_strategies", "prompts": 2, "strategies": STRATEGIES,
              "summary": {"p": summary}}
    text = markdown(report)
    assert "Modelled seconds" in text and "Adaptive stopping against fixed best-of-N" in text
    assert "| 320 | 3.85 | 120 (" in text and "| 240 |" in text
    plot(report, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 10_000

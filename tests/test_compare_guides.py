"""Two guides' picks on the same candidates: paired differences, and refusal of unmatched reports."""

import pytest

from benchmarks.compare_guides import compare


def _report(picks, guided, model, ceiling=4.5, n=8):
    rows = [{"prompt": f"p{i}", "seed": i, "pick": pick,
             "total": {"unguided": 3.0, "guided": g, "ceiling": ceiling},
             "alignment": {"unguided": 3.0, "guided": g, "ceiling": ceiling}}
            for i, (pick, g) in enumerate(zip(picks, guided, strict=True))]
    return {"preset": "embedded", "n": n, "prompt_set": "held-out", "weights": {"alignment": 1.0},
            "scorer_kwargs": {"model": model}, "per_prompt": rows}


def test_the_difference_is_challenger_minus_baseline_paired_by_prompt():
    report = compare(_report([0, 1, 2, 3], [3.0, 4.0, 3.0, 4.0], "old"),
                     _report([0, 5, 2, 6], [3.0, 4.5, 3.0, 4.5], "new"))
    total = report["metrics"]["total"]
    assert total["difference"] == pytest.approx(0.25)
    assert total["ci95"][0] >= 0.0 and total["ci95"][1] <= 0.5
    assert report["same_pick"] == pytest.approx(0.5)
    assert report["prompts"] == 4


def test_reports_of_different_runs_are_refused():
    with pytest.raises(ValueError, match="differ in n"):
        compare(_report([0], [3.0], "old"), _report([0], [3.0], "new", n=4))
    with pytest.raises(ValueError, match="different candidates"):
        compare(_report([0], [3.0], "old"), _report([0], [3.0], "new", ceiling=5.0))


def test_runs_with_their_own_candidates_are_compared_whole_when_asked():
    report = compare(_report([0, 1], [3.0, 4.0], "fp32"), _report([0, 1], [3.5, 4.0], "bf16", ceiling=5.0),
                     same_candidates=False)
    assert report["metrics"]["total"]["difference"] == pytest.approx(0.25)
    assert report["same_pick"] is None

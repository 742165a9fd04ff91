"""The GPU smoke script cannot rot: it runs end to end on CPU (fp32) with the smallest settings."""

from __future__ import annotations

import json

from benchmarks.gpu_smoke import SCORER_MODES, main


def test_gpu_smoke_runs_on_cpu(tmp_path):
    out = tmp_path / "smoke.json"
    code = main(["--device", "cpu", "--n", "1", "--steps", "1", "--max-new-tokens", "8", "--records", "4",
                 "--out", str(out)])
    report = json.loads(out.read_text())
    failures = [(row["check"], row["detail"]) for row in report["checks"] if row["status"] == "FAIL"]
    assert code == 0 and not failures, failures
    names = [row["check"] for row in report["checks"]]
    for expected in ("best-of-n through the run builder", "particles through the run builder",
                     "phase: generate", "phase: score", "train: 2 SFT steps", "train: 2 GRPO steps"):
        assert expected in names
    assert all(f"embedded scorer {mode}: batched == alone" in names for mode in SCORER_MODES)
    assert report["memory_plan"]["strategy"] == "cpu" and report["dtype"] == "float32"
    assert all(row["peak_gb"] is None or row["peak_gb"] > 0 for row in report["checks"])

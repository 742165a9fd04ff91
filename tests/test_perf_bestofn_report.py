"""The best-of-N benchmark's line shows both matmul peaks and says when the GPU scorer was not measured."""

from __future__ import annotations

from benchmarks.perf_bestofn import _row_line, matmul_peak_gflops

ROW = {
    "n": 8, "dtype": "bf16", "ours_autocast": "torch.bfloat16", "hand_seconds": 6.0, "ours_seconds": 1.5,
    "speedup": 4.0, "overhead_share": 0.05, "peak_rss_mb": 900.0, "same_pick": False,
    "ours_fraction_of_peak": 0.6, "ours_fraction_of_bf16_peak": 0.09, "hand_fraction_of_peak": 0.14,
    "hand_fraction_of_bf16_peak": 0.02, "matmul_peak_gflops": 335.0, "bf16_matmul_peak_gflops": 2160.0,
    "threads": 2, "matmul_peak_spread": 0.9, "load_average": [1.5, 2.0],
    "gpu_scorer_images_per_second": "not measured: no GPU",
}  # fmt: skip


def test_the_line_reports_both_peaks_the_pick_and_the_gpu_column():
    line = _row_line(ROW)
    assert "60.0% of the fp32 and  9.0% of the bf16 matmul peak" in line
    assert "peaks 335 / 2160 GFLOP/s" in line
    assert "same pick: False" in line
    assert "scorer on GPU: not measured: no GPU" in line
    assert "scorer on GPU: 12.50 images/s" in _row_line({**ROW, "gpu_scorer_images_per_second": 12.5})


def test_the_peak_is_measured_in_the_dtype_asked_for():
    assert matmul_peak_gflops(size=128, repeats=1, dtype="bfloat16") > 0
    assert matmul_peak_gflops(size=128, repeats=1) > 0

"""Best-of-N against the loop a user would write by hand, side by side in one run.

The hand loop calls the pipeline once per seed and the scorer once per image; ours batches both. Both
must pick the same candidate. Each N runs in a fresh process so peak memory is that N's own.

    python -m benchmarks.perf_bestofn                      # embedded preset, N = 1, 4, 8, 16
    python -m benchmarks.perf_bestofn --ns 8 --repeats 3   # one N, more repeats
    python -m benchmarks.perf_bestofn --ns 8 --repeats 1 --threads 1 --out benchmarks/results/perf_bestofn_1thread.json
    python -m benchmarks.perf_bestofn --ns 8 --dtypes fp32,bf16   # ours in fp32 and in bf16, one run

Prints, per N and precision of ours: wall seconds (hand loop, ours), the speed-up, the share of our time
spent outside model calls, and peak RSS; beside them how close the denoiser runs to this CPU's fp32 and
bf16 matmul peaks, all measured in the same process with the same thread count: the peaks from a large
torch matmul, the denoiser's rate from its FLOPs (torch's FlopCounterMode on one call at each batch
shape) over the seconds spent inside its forward calls. The hand loop is always plain fp32; in fp32 ours
must pick the same candidate, in bf16 whether it does is reported. The load average of the machine is
recorded at the start and end of each row. A scorer column for the GPU path (images per second for ours'
candidates on CUDA) reads "not measured: no GPU" where there is none. Writes
benchmarks/results/perf_bestofn.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, RESULTS


def matmul_peak_gflops(size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """This CPU's matmul rate in `dtype` at the current thread count: the best of a few large products."""
    import torch

    a, b = (torch.randn(size, size, dtype=getattr(torch, dtype)) for _ in range(2))
    a @ b  # warm-up: kernels chosen, pages touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


class DenoiserMeter:
    """Seconds spent inside the denoiser's forward, and its FLOPs: calls are counted per input shape while
    timing, and one call of each shape is replayed under FlopCounterMode afterwards (outside any timing)."""

    def __init__(self, denoiser) -> None:
        self.denoiser = denoiser
        self.seconds = 0.0
        self.calls: dict[tuple, int] = {}
        self.examples: dict[tuple, tuple] = {}

    def _pre(self, module, args, kwargs):
        self._start = time.perf_counter()

    def _post(self, module, args, kwargs, output):
        self.seconds += time.perf_counter() - self._start
        sample = args[0] if args else kwargs["sample"]
        key = tuple(sample.shape)
        self.calls[key] = self.calls.get(key, 0) + 1
        self.examples.setdefault(key, (args, kwargs))

    def __enter__(self):
        self.handles = (self.denoiser.register_forward_pre_hook(self._pre, with_kwargs=True),
                        self.denoiser.register_forward_hook(self._post, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def gflops_per_second(self) -> float:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        flops = 0.0
        for key, (args, kwargs) in self.examples.items():
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                self.denoiser(*args, **kwargs)
            flops += counter.get_total_flops() * self.calls[key]
        return flops / self.seconds / 1e9 if self.seconds else float("nan")


def _worker(args: argparse.Namespace) -> dict:
    import torch

    from reward_model.interface import ImageItem
    from t2i_guidance import registries as scorer_registry
    from t2i_guidance.generator import denoiser_of, load_pipeline
    from t2i_guidance.ledger import peak_rss_mb
    from t2i_guidance.registries import load_preset
    from t2i_guidance.result import aggregate
    from t2i_guidance.search.run_builder import RunRequest, build_run, load_generator, plan_run

    torch.set_num_threads(args.threads)
    # Sampled answers depend on what else is in the batch, so one-at-a-time and batched scoring would
    # read different samples and may pick differently; greedy decoding makes the picks comparable.
    greedy = {"decoding": "greedy"} if load_preset(args.preset).scorer == "omniquality-r" else {}
    plan = plan_run(RunRequest(preset=args.preset, strategy="best-of-n", strategy_options={"n": args.n},
                               generator=args.generator, scorer_options=greedy, device="cpu", dtype=args.dtype))
    load_at_start = os.getloadavg()[0]
    weights, settings = plan.weights, plan.settings
    dims = [d for d, w in weights.items() if w > 0]
    generator = load_generator(plan)
    scorers = scorer_registry
    preset, scorer_kwargs = plan.preset, plan.scorer_kwargs

    # Time spent inside model calls, to find the share of ours that is overhead.
    inside = {"seconds": 0.0}

    def timed(fn):
        @functools.wraps(fn)  # keeps the signature, which the adapter inspects
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                inside["seconds"] += time.perf_counter() - start

        return wrapper

    # The hand loop loads the pipeline as a user would, in plain fp32 and untouched by our Generator.
    pipeline = load_pipeline(plan.generator_location, torch.float32)
    pipeline.set_progress_bar_config(disable=True)

    seeds = [args.seed + k for k in range(args.n)]
    hand_times, ours_times, overheads = [], [], []
    hand_rates, ours_rates = [], []
    peaks, bf16_peaks = [matmul_peak_gflops()], [matmul_peak_gflops(dtype="bfloat16")]
    for _ in range(args.repeats):
        # A fresh scorer each time: no cache carries over between the two sides.
        scorer = scorers.build_scorer(preset.scorer, **scorer_kwargs)
        start = time.perf_counter()
        best, best_value = None, None
        meter = DenoiserMeter(denoiser_of(pipeline)).__enter__()
        for k, seed in enumerate(seeds):
            image = pipeline(
                prompt=args.prompt,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_type="pil",
                **settings.pipeline_kwargs(),
            ).images[0]
            row = scorer.score([ImageItem(f"c{k:03d}", image)], args.prompt, dims)[f"c{k:03d}"]
            value = aggregate(row, weights)
            if value is not None and (best_value is None or value > best_value):
                best, best_value = f"c{k:03d}", value
        hand_times.append(time.perf_counter() - start)
        meter.__exit__()
        hand_rates.append(meter.gflops_per_second())  # after the clock stopped

        scorer = scorers.build_scorer(preset.scorer, **scorer_kwargs)
        scorer.score = timed(scorer.score)
        pipeline_class = type(generator.pipeline)
        original_call = pipeline_class.__call__
        pipeline_class.__call__ = timed(original_call)
        inside["seconds"] = 0.0
        start = time.perf_counter()
        with DenoiserMeter(generator.denoiser) as meter:
            result = build_run(plan, generator=generator, scorer=scorer)(args.prompt, seed=args.seed)
        ours_times.append(time.perf_counter() - start)
        ours_rates.append(meter.gflops_per_second())
        pipeline_class.__call__ = original_call
        overheads.append(1 - inside["seconds"] / ours_times[-1])
        ours_best = result.best.id if result.best else None
        if ours_best != best and generator.autocast_dtype is None:
            raise SystemExit(f"N={args.n}: the two loops picked different candidates ({best} vs {ours_best})")
        peaks.append(matmul_peak_gflops())
        bf16_peaks.append(matmul_peak_gflops(dtype="bfloat16"))
    peak, bf16_peak = max(peaks), max(bf16_peaks)
    return {
        "dtype": args.dtype,
        "ours_autocast": str(generator.autocast_dtype) if generator.autocast_dtype else None,
        "load_average": [load_at_start, os.getloadavg()[0]],  # 1-minute, at the start and end of the row
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": peak,
        "matmul_peak_spread": min(peaks) / peak,  # how steady the machine was during the run
        "bf16_matmul_peak_gflops": bf16_peak,
        "hand_denoiser_gflops": max(hand_rates),
        "ours_denoiser_gflops": max(ours_rates),
        "hand_fraction_of_peak": max(hand_rates) / peak,
        "ours_fraction_of_peak": max(ours_rates) / peak,
        "hand_fraction_of_bf16_peak": max(hand_rates) / bf16_peak,
        "ours_fraction_of_bf16_peak": max(ours_rates) / bf16_peak,
        "gpu_scorer_images_per_second": _gpu_scorer_rate(preset, scorer_kwargs, result, args.prompt, dims),
        "n": args.n,
        "hand_seconds": min(hand_times),
        "ours_seconds": min(ours_times),
        "speedup": min(hand_times) / min(ours_times),
        "overhead_share": min(overheads),
        "peak_rss_mb": peak_rss_mb(),
        "same_pick": ours_best == best,
        "best": best,
        "ours_best": ours_best,
    }


def _gpu_scorer_rate(preset, scorer_kwargs: dict, result, prompt: str, dims: list[str]) -> float | str:
    """Images per second for the scorer on CUDA over ours' candidates, or why it was not measured."""
    import torch

    from reward_model.interface import ImageItem
    from t2i_guidance import registries

    if not torch.cuda.is_available():
        return "not measured: no GPU"
    try:
        scorer = registries.build_scorer(preset.scorer, **{**scorer_kwargs, "device": "cuda"})
    except TypeError:
        return f"not measured: scorer {preset.scorer!r} takes no device"
    items = [ImageItem(scored.id, scored.candidate.image) for scored in result.candidates]
    scorer.score(items[:1], prompt, dims)  # warm-up
    scorer.cache = type(scorer.cache)()
    torch.cuda.synchronize()
    start = time.perf_counter()
    scorer.score(items, prompt, dims)
    torch.cuda.synchronize()
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="embedded")
    parser.add_argument("--generator", help="override the preset's generator")
    parser.add_argument("--prompt", default="a red circle above a small blue square on a white background")
    parser.add_argument("--ns", default="1,4,8,16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", default="fp32", help="precisions of ours, comma-separated: fp32, bf16, auto")
    parser.add_argument("--out", default=str(RESULTS / "perf_bestofn.json"), help="where the rows go")
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args)))
        return

    rows = []
    for n in (int(x) for x in args.ns.split(",")):
        for dtype in args.dtypes.split(","):
            rows.append(_run_row(args, n, dtype))
            print(_row_line(rows[-1]), flush=True)
    by_n = {r["n"]: r for r in rows if r["dtype"] == args.dtypes.split(",")[0]}
    if 4 in by_n and 16 in by_n:
        print(f"peak RSS ratio N=16 / N=4: {by_n[16]['peak_rss_mb'] / by_n[4]['peak_rss_mb']:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"preset": args.preset, "threads": args.threads, "repeats": args.repeats, "rows": rows}, indent=2)
    )


def _run_row(args: argparse.Namespace, n: int, dtype: str) -> dict:
    """One (N, precision) row, measured in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.perf_bestofn", "--worker", "--n", str(n), "--preset", args.preset,
               "--prompt", args.prompt, "--repeats", str(args.repeats), "--seed", str(args.seed),
               "--threads", str(args.threads), "--dtype", dtype]
    if args.generator:
        command += ["--generator", args.generator]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"N={n} {dtype} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row_line(row: dict) -> str:
    gpu = row["gpu_scorer_images_per_second"]
    gpu = f"{gpu:.2f} images/s" if isinstance(gpu, float) else gpu
    return (
        f"N={row['n']:3d} ours {row['dtype']:>4} (autocast {row['ours_autocast'] or 'off'})  "
        f"hand {row['hand_seconds']:7.2f}s  ours {row['ours_seconds']:7.2f}s  "
        f"speed-up {row['speedup']:5.2f}x  overhead {100 * row['overhead_share']:4.1f}%  "
        f"peak RSS {row['peak_rss_mb']:7.0f} MB  same pick: {row['same_pick']}  | denoiser at "
        f"{100 * row['ours_fraction_of_peak']:5.1f}% of the fp32 and {100 * row['ours_fraction_of_bf16_peak']:4.1f}% "
        f"of the bf16 matmul peak (hand loop {100 * row['hand_fraction_of_peak']:4.1f}% / "
        f"{100 * row['hand_fraction_of_bf16_peak']:4.1f}%; peaks {row['matmul_peak_gflops']:.0f} / "
        f"{row['bf16_matmul_peak_gflops']:.0f} GFLOP/s at {row['threads']} thread(s), lowest fp32 reading "
        f"{100 * row['matmul_peak_spread']:.0f}% of it; load average {row['load_average'][0]:.1f} -> "
        f"{row['load_average'][1]:.1f})  | scorer on GPU: {gpu}"
    )


if __name__ == "__main__":
    main()

"""Does generating the next batch while scoring the last one pay on this CPU? Measured side by side.

    python -m benchmarks.perf_overlap --n 16 --batch 8 --threads 2 --repeats 3

Best-of-N over N candidates in batches: the sequential way generates a batch, scores it, then the next;
the overlapped way scores batch k in a worker thread while the main thread generates batch k + 1. Both
use the embedded preset's generator and scorer (greedy, so the scores are comparable), on the same
seeds, alternating, in one process. Prints the best wall time of each and their ratio, checks that both
read the same scores, and writes benchmarks/results/perf_overlap.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import RESULTS, command_line


def _run(generator, scorer, prompt: str, seeds: list[int], batch: int, settings, dims, overlap: bool) -> dict:
    from reward_model.interface import ImageItem

    def score(candidates):
        if hasattr(scorer, "cache"):
            scorer.cache = type(scorer.cache)()  # nothing carries over between runs
        return scorer.score([ImageItem(c.id, c.image) for c in candidates], prompt, dims)

    scores: dict = {}
    batches = [seeds[start : start + batch] for start in range(0, len(seeds), batch)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for k, chunk in enumerate(batches):
            candidates = generator.generate(prompt, chunk, settings, first_index=k * batch)
            if not overlap:
                scores.update(score(candidates))
                continue
            if pending is not None:
                scores.update(pending.result())
            pending = pool.submit(score, candidates)
        if pending is not None:
            scores.update(pending.result())
    return scores


def _values(scores: dict) -> dict:
    return {cid: {dim: entry.score for dim, entry in row.items()} for cid, row in sorted(scores.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompt", default="a red circle above a small blue square on a white background")
    parser.add_argument("--out", default=str(RESULTS / "perf_overlap.json"))
    args = parser.parse_args()
    if args.n < 1 or args.batch < 1 or args.threads < 1 or args.repeats < 1:
        raise SystemExit("--n, --batch, --threads and --repeats must be at least 1")

    import torch

    from t2i_guidance.placement import load_generator, load_scorer
    from t2i_guidance.result import active_dimensions
    from t2i_guidance.search.run_builder import RunRequest, plan_run

    torch.set_num_threads(args.threads)
    plan = plan_run(RunRequest(preset="embedded", strategy="best-of-n", strategy_options={"n": args.n},
                               scorer_options={"decoding": "greedy"}, device="cpu", dtype="fp32"))
    generator, scorer = load_generator(plan), load_scorer(plan)
    dims = active_dimensions(plan.weights)
    seeds = list(range(args.n))
    run = lambda overlap: _run(generator, scorer, args.prompt, seeds, args.batch, plan.settings, dims, overlap)  # noqa: E731
    run(False)  # warm-up: kernels chosen, pages touched
    seconds: dict[str, list[float]] = {"sequential": [], "overlapped": []}
    readings = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, overlap in (("sequential", False), ("overlapped", True)):
            start = time.perf_counter()
            readings[name] = _values(run(overlap))
            seconds[name].append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    best = {name: min(values) for name, values in seconds.items()}
    report = {
        "command": command_line("perf_overlap"),
        "n": args.n, "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
        "seconds": seconds, "best_seconds": best,
        "speedup": best["sequential"] / best["overlapped"],
        "same_scores": readings["sequential"] == readings["overlapped"],
        "load_average": load,
    }
    print(f"N={args.n} in batches of {args.batch}, {args.threads} thread(s): sequential {best['sequential']:.2f} s,"
          f" overlapped {best['overlapped']:.2f} s, speed-up {report['speedup']:.2f}x, same scores:"
          f" {report['same_scores']}; load {load[0]:.1f} -> {load[1]:.1f}")
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()

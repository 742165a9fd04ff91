"""Scoring throughput: one batched generate call against one request at a time, transformers vs vLLM.

    python -m benchmarks.perf_scorer                         # default model, batch 1, 8, 32, both backends
    python -m benchmarks.perf_scorer --model PATH --images 32 --max-new-tokens 64 --modes reason,answer-only
    python -m benchmarks.perf_scorer --agreement 16 --model PATH   # prob-weighted vs the mean of 16 samples
    python -m benchmarks.perf_scorer --one-look --images 8          # three dimensions: before vs after

Each (mode, batch size, backend) runs in a fresh process, so its peak RSS is its own. The vLLM side runs
in the vLLM environment (`--vllm-python`, default .venv-vllm made by `bash dev.sh vllm-test`): the images
are scored B at a time (B = the batch size) by both backends, on the same pictures and settings. Greedy
decoding, technical dimension, one request per image, cache off. vLLM's peak RSS is its main process
only (the engine runs in a child process). When the embedded scorer is not trained yet, an untrained
model of the same architecture and image size stands in (speed depends on shapes, not on weights; an
untrained model always writes max-new-tokens, a trained one stops at its answer). Prints a table and
writes benchmarks/results/perf_scorer.json.

--one-look scores the three dimensions of --images pictures (the world generator's pictures of --prompt,
or with --pictures synthetic the smooth shapes above; greedy, transformers, one process) the older
way (batch-size requests per call, each re-encoding its picture) and the current way (batch-size pictures
per call, each encoded once), alternating --repeats times, and checks that the answers are identical;
writes benchmarks/results/perf_scorer_one_look.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import REPO, RESULTS, command_line  # noqa: E402

BACKENDS = ("transformers", "vllm")


def _images(count: int, seed: int = 0):
    """Smooth random pictures (gradients plus shapes), 160x120, like the embedded world's renders."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        base = np.linspace(rng.integers(0, 255, 3), rng.integers(0, 255, 3), 160, dtype=np.float32)
        image = Image.fromarray(np.broadcast_to(base, (120, 160, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        x, y = int(rng.integers(10, 100)), int(rng.integers(10, 60))
        draw.ellipse((x, y, x + 40, y + 40), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        images.append(image)
    return images


def _resolve_default(model: str) -> tuple[str, str]:
    """(model to load, description); builds the untrained stand-in when the embedded weights are missing."""
    from reward_model.backends import ModelNotFoundError, resolve_model

    try:
        return resolve_model(model).source, model
    except ModelNotFoundError:
        if model != "embedded":
            raise
    from reward_model.tiny_vlm import save_tiny_scorer

    directory = Path(tempfile.gettempdir()) / "perf-scorer-standin"
    if not (directory / "config.json").exists():
        save_tiny_scorer(directory, seed=0)
    return str(directory), "embedded architecture, untrained stand-in (weights not trained yet)"


def _worker(args: argparse.Namespace) -> dict:
    import torch

    from reward_model.interface import ImageItem
    from reward_model.scorer import OmniQualityScorer

    torch.set_num_threads(args.threads)
    scorer = OmniQualityScorer(
        args.model,
        backend=args.backend,
        decoding="greedy",
        mode=args.mode,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens if args.mode != "answer-only" else None,
        device=args.device,
    )
    items = [ImageItem(str(i), image) for i, image in enumerate(_images(args.images))]
    scorer.score(items[: min(2, len(items))], None, ["technical"])  # warm-up: first-call allocations
    timings, tokens = [], 0
    for _ in range(args.repeats):
        scorer.cache = type(scorer.cache)()  # measure generation, not the cache
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        table = {}
        for start in range(0, len(items), args.batch_size):  # B requests in flight, for both backends
            table.update(scorer.score(items[start : start + args.batch_size], None, ["technical"]))
        timings.append(time.perf_counter() - started)
        tokens = sum(results["technical"].generated_tokens for results in table.values())
    seconds = statistics.median(timings)
    return {
        "backend": args.backend,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "images": len(items),
        "seconds": seconds,
        "images_per_second": len(items) / seconds,
        "tokens_per_second": tokens / seconds,
        "generated_tokens": tokens,
        "ok": sum(results["technical"].ok for results in table.values()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    }


def _agreement(args: argparse.Namespace) -> dict:
    """Per request: the probability-weighted score, the mean of K sampled scores (authors' settings) and
    the answer-only score, so the three readings of the same model can be compared."""
    import torch

    from reward_model.interface import ImageItem
    from reward_model.scorer import OmniQualityScorer

    torch.set_num_threads(args.threads)
    items = [ImageItem(str(i), image) for i, image in enumerate(_images(args.images, seed=1))]
    scorers = {
        "prob_weighted": OmniQualityScorer(
            args.model, mode="prob-weighted", max_new_tokens=args.max_new_tokens
        ),
        "sample_mean": OmniQualityScorer(
            args.model, samples=args.agreement, max_new_tokens=args.max_new_tokens, seed=0
        ),
        "answer_only": OmniQualityScorer(args.model, mode="answer-only", decoding="greedy"),
    }
    rows = []
    for dimension in args.dimensions.split(","):
        prompt = args.prompt if dimension == "alignment" else None
        tables = {name: scorer.score(items, prompt, [dimension]) for name, scorer in scorers.items()}
        for item in items:
            row = {"dimension": dimension}
            for name, table in tables.items():
                row[name] = table[item.id][dimension].score
                row[f"{name}_tokens"] = table[item.id][dimension].generated_tokens
            row["sample_std"] = tables["sample_mean"][item.id][dimension].std
            rows.append(row)
    summary = {"k": args.agreement, "requests": len(rows)}
    for other in ("sample_mean", "answer_only"):
        summary[f"prob_weighted_vs_{other}"] = _compare(rows, "prob_weighted", other)
    return {"summary": summary, "rows": rows}


def _one_look(args: argparse.Namespace) -> dict:
    """Three dimensions of every picture, before and after one look per picture, alternated in one process."""
    import torch

    from reward_model.backends import Decoding, Request, resolve_model
    from reward_model.backends.transformers_backend import TransformersBackend

    torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    if args.pictures == "generator":  # what a best-of-N scores: the world generator's pictures of the prompt
        from benchmarks.common import generate

        images = generate([args.prompt] * args.images, seed=0)
    else:
        images = _images(args.images)
    requests = [Request(image, dimension, args.prompt) for image in images
                for dimension in ("technical", "aesthetic", "alignment")]
    greedy = Decoding(do_sample=False, max_new_tokens=args.max_new_tokens)
    backends = {
        name: TransformersBackend(model, device=args.device, batch_size=16, one_look_per_picture=name == "after")
        for name in ("before", "after")
    }
    # CPU seconds beside wall seconds: on a loaded machine the wall clock mostly measures the others.
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    cpu_seconds: dict[str, list[float]] = {"before": [], "after": []}
    answers: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, backend in backends.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            results = backend.generate(requests, greedy)
            seconds[name].append(time.perf_counter() - started)
            cpu_seconds[name].append(time.process_time() - cpu_started)
            answers[name] = [result.completions[0].text if result.completions else "" for result in results]
    best = {name: min(times) for name, times in seconds.items()}
    return {
        "pictures": args.images, "pictures_from": args.pictures, "prompt": args.prompt, "requests": len(requests), "threads": args.threads,
        "max_new_tokens": args.max_new_tokens, "seconds": seconds, "speedup": best["before"] / best["after"],
        "cpu_seconds": cpu_seconds,
        "cpu_speedup": min(cpu_seconds["before"]) / min(cpu_seconds["after"]),
        "identical_answers": answers["before"] == answers["after"],
        "load_average": os.getloadavg()[0],
    }  # fmt: skip


def _compare(rows: list[dict], a: str, b: str) -> dict:
    pairs = [(row[a], row[b]) for row in rows if row[a] is not None and row[b] is not None]
    result: dict = {"both_ok": len(pairs)}
    if pairs:
        diffs = [abs(x - y) for x, y in pairs]
        result.update(mean_abs_diff=statistics.fmean(diffs), max_abs_diff=max(diffs))
        if len(pairs) > 2 and len({x for x, _ in pairs}) > 1 and len({y for _, y in pairs}) > 1:
            result["pearson"] = statistics.correlation(*zip(*pairs, strict=True))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument(
        "--modes", default="reason", help="comma-separated: reason, answer-only, prob-weighted"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared CPU")
    parser.add_argument("--device", default=None)
    parser.add_argument("--backends", default="transformers,vllm", help="comma-separated: transformers, vllm")
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--agreement", type=int, default=0, help="K samples; measure agreement instead")
    parser.add_argument("--one-look", action="store_true", help="three dimensions: before vs after one look")
    parser.add_argument("--pictures", default="generator", choices=("generator", "synthetic"),
                        help="for --one-look: the world generator's pictures of --prompt, or synthetic shapes")
    parser.add_argument("--dimensions", default="technical", help="for --agreement")
    parser.add_argument("--prompt", default="a red circle above a blue square", help="for --agreement, --one-look")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="reason", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="transformers", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_worker(args)))
        return
    args.model, description = _resolve_default(args.model)
    if args.one_look:
        result = _one_look(args)
        print(json.dumps(result, indent=2))
        _write("perf_scorer_one_look.json", {"model": description, **result})
        return
    if args.agreement:
        result = _agreement(args)
        print(json.dumps(result["summary"], indent=2))
        _write("perf_scorer_agreement.json", {"model": description, **result})
        return

    runs = []
    for mode in args.modes.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            for backend in args.backends.split(","):
                runs.append(_run_worker(args, mode, batch, backend))
                done = runs[-1]
                speed = f"{done['images_per_second']:.2f} images/s" if "error" not in done else done["error"]
                print(f"{mode} batch {batch} {backend}: {speed}", file=sys.stderr)
    single = {
        (run["mode"], run["backend"]): run["images_per_second"]
        for run in runs
        if run["batch_size"] == 1 and "error" not in run
    }
    for run in runs:
        base = single.get((run["mode"], run["backend"]))
        run["speedup_vs_batch_1"] = run["images_per_second"] / base if base and "error" not in run else None
    report = _markdown(runs, description, args)
    print(report)
    _write("perf_scorer.json", {"model": description, "command": command_line("perf_scorer"), "runs": runs})
    (RESULTS / "perf_scorer.md").write_text(report + "\n")


def _run_worker(args: argparse.Namespace, mode: str, batch: int, backend: str) -> dict:
    """One measurement in a fresh process; vLLM's in the vLLM environment. A run that cannot be made is
    reported with its reason, never with a number."""
    if backend not in BACKENDS:
        raise SystemExit(f"error: unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    python, env = sys.executable, dict(os.environ)
    if backend == "vllm":
        python = args.vllm_python
        if not Path(python).exists():
            return {"backend": backend, "mode": mode, "batch_size": batch,
                    "error": f"not run: no vLLM environment at {python} (bash dev.sh vllm-test makes it)"}
        # vLLM on CPU pins its OpenMP threads to cores; on a shared machine a pinned thread cannot move
        # off a busy core, so leave placement to the OS and give it as many threads as transformers.
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        env["OMP_NUM_THREADS"] = str(args.threads)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [
        python, "-m", "benchmarks.perf_scorer", "--worker", "--backend", backend, "--model", args.model, "--mode", mode,
        "--batch-size", str(batch), "--images", str(args.images), "--threads", str(args.threads),
        "--max-new-tokens", str(args.max_new_tokens), "--repeats", str(args.repeats),
    ]  # fmt: skip
    if args.device:
        command += ["--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"backend": backend, "mode": mode, "batch_size": batch, "error": f"failed: {last}"}
    # vLLM logs to stdout too (also after the result, at shutdown): the result is the JSON line.
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def _markdown(runs: list[dict], description: str, args: argparse.Namespace) -> str:
    backends = args.backends.split(",")
    lines = [
        f"Model: {description}. {args.images} images, technical, greedy, at most {args.max_new_tokens} new "
        f"tokens (answer-only: 16), {args.threads} CPU threads, images scored B at a time. "
        f"Command: `{command_line('perf_scorer')}`",
        "",
        "| mode | batch | backend | images/s | tokens/s | speed-up vs batch 1 | seconds | tokens/image | ok "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['mode']} | {run['batch_size']} | {run['backend']} | {run['error']} "
                         "| | | | | | |")
            continue
        speedup = f"{run['speedup_vs_batch_1']:.2f}x" if run["speedup_vs_batch_1"] else "-"
        lines.append(
            f"| {run['mode']} | {run['batch_size']} | {run['backend']} | {run['images_per_second']:.2f} | "
            f"{run['tokens_per_second']:.0f} | {speedup} | {run['seconds']:.2f} | "
            f"{run['generated_tokens'] / run['images']:.1f} | {run['ok']} | {run['peak_rss_mb']:.0f} |"
        )
    if set(BACKENDS) <= set(backends):
        lines += ["", "| mode | batch | vLLM images/s / transformers images/s |", "|---|---|---|"]
        measured = {(r["mode"], r["batch_size"], r["backend"]): r for r in runs if "error" not in r}
        for mode in args.modes.split(","):
            for batch in [int(b) for b in args.batches.split(",")]:
                pair = measured.get((mode, batch, "vllm")), measured.get((mode, batch, "transformers"))
                ratio = (f"{pair[0]['images_per_second'] / pair[1]['images_per_second']:.2f}x"
                         if all(pair) else "not measured")
                lines.append(f"| {mode} | {batch} | {ratio} |")
    return "\n".join(lines)


def _write(name: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()

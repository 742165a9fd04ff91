"""Does the scorer's judgement move under changes a person cannot see, and how much does sampling move it?

    python -m benchmarks.stability                                  # the shipped tiny scorer, 24 pictures
    python -m benchmarks.stability --model runs/new_scorer --images 48

Pictures: half world-generator outputs of held-out prompts, half clean 32 px renders of other held-out
scenes (--images in all), each scored on the three dimensions (alignment against its prompt). Variants of
every picture, all the same to the eye: the lossless PNG round trip (the reference), a lossy re-save as
WebP quality 90 and as JPEG quality 90, and a one-pixel shift to the right (the left column repeated, the
right one cropped). Per dimension: the mean and largest absolute score change from the PNG.

Decodings:
- sampled, unseeded: the scorer's default (temperature 0.7, top-p 0.8, top-k 20): what a user gets; its
  change mixes the pixel change with sampling noise;
- sampled, fixed seed: the same draws for every variant, so only the pixels differ;
- prob-weighted: greedy, the expected score read from the digit probabilities (deterministic).
Spread: the same PNG scored in 8 runs (8 sampled completions per request for the unseeded sampled
decoding; 8 repeated passes for the fixed seed and prob-weighted, which should not move at all): std and
max-min per picture, averaged over pictures, and the largest max-min.
"""

from __future__ import annotations

import argparse
import io
import statistics

from PIL import Image

from benchmarks.common import (
    add_scorer_model_arguments,
    fmt,
    generate,
    model_name,
    report_prompts,
    report_render_scenes,
    run_scorer_instrument,
)

DIMENSIONS = ("technical", "aesthetic", "alignment")
VARIANTS = ("webp90", "jpeg90", "shift1px")
DECODINGS = {
    "sampled (default, unseeded)": {"decoding": "sampled", "seed": None},
    "sampled (fixed seed)": {"decoding": "sampled", "seed": 0},
    "prob-weighted": {"mode": "prob-weighted"},
}
RUNS = 8


def resave(image: Image.Image, fmt_: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt_, **options)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def shift_right(image: Image.Image, pixels: int = 1) -> Image.Image:
    """The picture moved right by `pixels`: the left edge repeated, the right edge cropped."""
    import numpy as np

    array = np.asarray(image.convert("RGB"))
    padded = np.pad(array, ((0, 0), (pixels, 0), (0, 0)), mode="edge")[:, : array.shape[1]]
    return Image.fromarray(padded)


def variants(image: Image.Image) -> dict[str, Image.Image]:
    return {
        "png": resave(image, "PNG"),
        "webp90": resave(image, "WEBP", quality=90),
        "jpeg90": resave(image, "JPEG", quality=90),
        "shift1px": shift_right(image),
    }


def pictures(count: int, seed: int, fresh: bool = False) -> list[tuple[Image.Image, str]]:
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.render import render_clean

    generated = count // 2
    prompts = report_prompts(generated, fresh)
    items = list(zip(generate(prompts, seed=seed), prompts, strict=True)) if prompts else []
    for scene in report_render_scenes(count - generated, fresh):
        items.append((render_clean(scene, 32), canonical_caption(scene)))
    return items


def score_all(scorer, images: list[Image.Image], prompts: list[str]) -> list[dict]:
    """Per picture and dimension, the result; technical and aesthetic in one batched call."""
    from reward_model.interface import ImageItem
    from reward_model.scorer import ScoreCache

    scorer.cache = ScoreCache()  # every run is a fresh judgement, never a cached one
    items = [ImageItem(str(i), image) for i, image in enumerate(images)]
    table = scorer.score(items, None, ["technical", "aesthetic"])
    results = [dict(table[item.id]) for item in items]
    for index, (item, prompt) in enumerate(zip(items, prompts, strict=True)):
        results[index]["alignment"] = scorer.score([item], prompt, ["alignment"])[item.id]["alignment"]
    return results


def run(args: argparse.Namespace) -> dict:
    import torch
    from tqdm.auto import tqdm

    from reward_model.scorer import OmniQualityScorer

    torch.set_num_threads(args.threads)
    items = pictures(args.images, args.seed, args.fresh)
    prompts = [prompt for _, prompt in items]
    shown = [variants(image) for image, _ in items]
    report: dict = {"command": args.command, "model": model_name(args.model), "verdicts": args.verdicts,
                    "images": args.images, "threads": args.threads, "runs": RUNS, "decodings": {}}
    progress = tqdm(total=len(DECODINGS) * (len(VARIANTS) + 3), desc="passes", unit="pass")
    for name, options in DECODINGS.items():
        scorer = OmniQualityScorer(model=args.model, backend="transformers", batch_size=16, verdicts=args.verdicts,
                                   max_new_tokens=args.max_new_tokens, **options)
        scored = {}
        for variant in ("png", *VARIANTS):
            scored[variant] = score_all(scorer, [v[variant] for v in shown], prompts)
            progress.update()
        changes = {}
        for variant in VARIANTS:
            changes[variant] = {}
            for dimension in DIMENSIONS:
                deltas = [abs(a[dimension].score - b[dimension].score)
                          for a, b in zip(scored["png"], scored[variant], strict=True)
                          if a[dimension].ok and b[dimension].ok]
                changes[variant][dimension] = {
                    "mean_abs": statistics.fmean(deltas) if deltas else None,
                    "max_abs": max(deltas) if deltas else None, "pairs": len(deltas)}
        spread = spread_over_runs(args, options, [v["png"] for v in shown], prompts)
        progress.update(2)
        failures = sum(not r.ok for runs in scored.values() for row in runs for r in row.values())
        report["decodings"][name] = {"options": options, "change": changes, "spread": spread,
                                     "failures": failures, "scores": len(scored) * len(items) * len(DIMENSIONS)}
    progress.close()
    return report


def spread_over_runs(args, options: dict, images: list[Image.Image], prompts: list[str]) -> dict:
    """Std and max-min of the score over RUNS runs of the same picture, averaged over pictures."""
    from reward_model.scorer import OmniQualityScorer

    if options.get("mode") == "prob-weighted" or options.get("seed") is not None:
        scorer = OmniQualityScorer(model=args.model, backend="transformers", batch_size=16, verdicts=args.verdicts,
                                   max_new_tokens=args.max_new_tokens, **options)
        runs = [score_all(scorer, images, prompts) for _ in range(RUNS)]
        values = [[[run[i][d].score for run in runs if run[i][d].ok] for i in range(len(images))]
                  for d in DIMENSIONS]
    else:
        scorer = OmniQualityScorer(model=args.model, backend="transformers", batch_size=16, verdicts=args.verdicts,
                                   samples=RUNS, max_new_tokens=args.max_new_tokens,
                                   **options)  # 8 independent draws per request
        results = score_all(scorer, images, prompts)
        values = [[results[i][d].samples if results[i][d].ok else [] for i in range(len(images))]
                  for d in DIMENSIONS]
    spread = {}
    for dimension, per_image in zip(DIMENSIONS, values, strict=True):
        full = [v for v in per_image if len(v) >= 2]
        spread[dimension] = {
            "std": statistics.fmean(statistics.pstdev(v) for v in full) if full else None,
            "range": statistics.fmean(max(v) - min(v) for v in full) if full else None,
            "largest_range": max((max(v) - min(v) for v in full), default=None),
            "images": len(full),
        }
    return spread


def markdown(report: dict) -> str:
    lines = [
        f"# Stability of the judgement: `{report['model']}`",
        "",
        f"{report['images']} pictures (half world-generator outputs of held-out prompts, half clean 32 px "
        f"renders), three dimensions, {report['threads']} thread(s); alignment verdicts: "
        f"{report.get('verdicts', 'own')}.",
        "",
        f"Command: `{report['command']}`",
        "",
        "Mean absolute score change from the lossless PNG (largest in brackets):",
        "",
        "| decoding | dimension | WebP q90 | JPEG q90 | 1-pixel shift | spread over 8 runs: std | max-min "
        "(mean) | max-min (largest) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, d in report["decodings"].items():
        for dimension in DIMENSIONS:
            cells = [f"{fmt(d['change'][v][dimension]['mean_abs'])} ({fmt(d['change'][v][dimension]['max_abs'])})"
                     for v in VARIANTS]
            s = d["spread"][dimension]
            lines.append(f"| {name} | {dimension} | {' | '.join(cells)} | {fmt(s['std'])} | {fmt(s['range'])} | "
                         f"{fmt(s['largest_range'])} |")
    lines += ["", "Failed scores (excluded from the changes): "
              + ", ".join(f"{name} {d['failures']} of {d['scores']}" for name, d in report["decodings"].items())
              + ". The unseeded sampled change includes sampling noise; the fixed-seed one isolates the pixels."]
    return "\n".join(lines) + "\n"


def input_problem(args: argparse.Namespace) -> str | None:
    return "--images must be at least 2" if args.images < 2 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scorer_model_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, help="room for the reasoning (default: the model's)")
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args(argv)
    return run_scorer_instrument("stability", args, argv, input_problem, run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())

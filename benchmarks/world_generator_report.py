"""The embedded world's generator, judged by the oracles: alignment, best-of-N headroom, novelty, speed.

    python -m benchmarks.world_generator_report                    # shipped weights, 128 + 32 prompts
    python -m benchmarks.world_generator_report --generator DIR --prompts 50 --count-prompts 12 --threads 1

Prompts are the canonical captions of held-out scenes (contents never rendered for training). For each
prompt, --n-best candidates are generated in one batch with per-candidate seeds through the project's
Generator; the first --seeds of them are the single samples, and the oracle's alignment picks the best of
all of them. Counting: --count-prompts prompts of the extended grammar with every attribute named
("three small red squares on a white background"), each a held-out counting content (size, colour,
shape, count and background together never trained on); a count is right when the oracle sees exactly
that many objects of the named size, colour and shape, reported for the single samples and for the
oracle's best-of-N pick (picked by alignment, as above). Novelty: per-pixel L2 distance (RMS over pixels, values in [0, 1]) from each image to its
nearest neighbour in a bank of rendered training scenes, for generated images, held-out renders and
fresh training renders. Speed: median wall seconds for --n-best candidates at the default step count.
Writes benchmarks/results/world_generator.{json,md} and world_generator_samples.png. The default size
takes about 11 minutes with 2 threads on an idle 2-core machine (about 4 s per prompt).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import (
    GENERATOR_DIR,
    RESULTS,
    as_unit_array,
    command_line,
    draw_grid,
    held_out_scenes,
    nearest_distances,
    paired_bootstrap,
)


def held_out_count_scenes(n: int) -> list:
    """n counting scenes of held-out contents, counts cycling 2, 3, 4, distinct contents while they last."""
    from t2i_guidance.world.scene import COUNTS, is_held_out, sample_count_scene

    scenes, seen, probe = [], set(), 0
    while len(scenes) < n:
        count = COUNTS[len(scenes) % len(COUNTS)]
        scene = sample_count_scene(800_000 + probe, count)
        probe += 1
        fresh = scene.content_key() not in seen or probe > 200 * n  # repeats only once contents run out
        if is_held_out(scene) and fresh:
            scenes.append(scene)
            seen.add(scene.content_key())
    return scenes


def count_prompt(scene) -> str:
    from t2i_guidance.world.captions import count_caption

    obj = scene.objects[0]
    return count_caption(obj.shape, len(scene.objects), obj.colour, obj.size, scene.background)


def count_is_right(image: Image.Image, prompt: str) -> bool:
    """Exactly the asked number of objects of the asked kind (the count element of the oracle's judge)."""
    from t2i_guidance.world.captions import parse_prompt
    from t2i_guidance.world.oracles import observe, request_matches

    request = parse_prompt(prompt).objects[0]
    found = [o for o in observe(image).objects if request_matches(request, o)]
    return len(found) == request.count


def time_candidates(generator, prompt: str, settings, n: int, runs: int) -> list[float]:
    from t2i_guidance.generator import candidate_seeds

    generator.generate(prompt, candidate_seeds(0, n), settings, batch_size=n)  # warm-up
    times = []
    for run in range(runs):
        start = time.perf_counter()
        generator.generate(prompt, candidate_seeds(100 * (run + 1), n), settings, batch_size=n)
        times.append(time.perf_counter() - start)
    return times


def run(args: argparse.Namespace) -> dict:
    import torch
    from tqdm.auto import tqdm

    from reward_model.interface import ImageItem
    from t2i_guidance.generator import GenerationSettings, Generator, candidate_seeds
    from t2i_guidance.registries import build_scorer
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
    from t2i_guidance.world.render import render_scene
    from t2i_guidance.world.scene import sample_split_scene

    torch.set_num_threads(args.threads)
    generator_path = Path(args.generator)
    generator = Generator.from_pretrained(str(generator_path), device="cpu")
    steps = args.steps or DEFAULT_STEPS
    settings = GenerationSettings(num_inference_steps=steps, guidance_scale=DEFAULT_GUIDANCE)
    oracle = build_scorer("oracle")
    dims = ["alignment", "technical", "aesthetic"]

    def judged_candidates(prompt: str, first_seed: int) -> tuple[list, dict, int]:
        """Candidates of one prompt, their oracle scores per dimension, and the oracle's alignment pick."""
        candidates = generator.generate(prompt, candidate_seeds(first_seed, args.n_best), settings,
                                        batch_size=args.n_best)
        table = oracle.score([ImageItem(c.id, c.image) for c in candidates], prompt, dims)
        scores = {d: [] for d in dims}
        for c in candidates:
            for d in dims:
                result = table[c.id][d]
                if not result.ok:  # an oracle that cannot judge is a failure of the benchmark, never a number
                    raise RuntimeError(f"oracle failed on {prompt!r} / {c.id} / {d}: {result.error}")
                scores[d].append(result.score)
        alignment, tie_break = np.array(scores["alignment"]), np.array(scores["technical"]) + np.array(scores["aesthetic"])
        pick = int(max(range(len(candidates)), key=lambda k: (alignment[k], tie_break[k], -k)))
        return candidates, scores, pick

    scenes = held_out_scenes(args.prompts)
    per_prompt, grid_rows, generated_singles = [], [], []
    start = time.perf_counter()
    for index, scene in enumerate(tqdm(scenes, desc="prompts", unit="prompt")):
        prompt = canonical_caption(scene)
        candidates, scores, pick = judged_candidates(prompt, 10_000 * index)
        per_prompt.append({"prompt": prompt, "seeds": [c.seed for c in candidates], "pick": pick,
                           **{d: [round(v, 4) for v in scores[d]] for d in dims}})
        generated_singles += [c.image for c in candidates[: args.seeds]]
        if index < args.grid_rows:
            grid_rows.append({"prompt": prompt, "images": [c.image for c in candidates],
                              "alignment": scores["alignment"], "pick": pick})
    generation_seconds = time.perf_counter() - start

    per_count_prompt = []
    for index, scene in enumerate(tqdm(held_out_count_scenes(args.count_prompts), desc="counting prompts",
                                       unit="prompt")):
        prompt = count_prompt(scene)
        truth = render_scene(scene, 32)
        candidates, scores, pick = judged_candidates(prompt, 20_000_000 + 10_000 * index)
        per_count_prompt.append({"prompt": prompt, "count": len(scene.objects), "seeds": [c.seed for c in candidates],
                                 "pick": pick, "count_right": [count_is_right(c.image, prompt) for c in candidates],
                                 "true_render_count_right": count_is_right(truth, prompt),
                                 "alignment": [round(v, 4) for v in scores["alignment"]]})
        if index < args.count_grid_rows:
            grid_rows.append({"prompt": prompt, "images": [c.image for c in candidates],
                              "alignment": scores["alignment"], "pick": pick})

    single_alignment = np.array([p["alignment"][: args.seeds] for p in per_prompt])  # (prompts, seeds)
    best = np.array([p["alignment"][p["pick"]] for p in per_prompt])
    all_alignment = np.array([p["alignment"] for p in per_prompt])
    gain = best - single_alignment.mean(axis=1)
    single_tech = np.array([p["technical"][: args.seeds] for p in per_prompt])
    single_aes = np.array([p["aesthetic"][: args.seeds] for p in per_prompt])
    best_tech = np.array([p["technical"][p["pick"]] for p in per_prompt])
    best_aes = np.array([p["aesthetic"][p["pick"]] for p in per_prompt])

    # Novelty: nearest rendered training scene, for generated images and two reference sets.
    bank = as_unit_array([render_scene(sample_split_scene(i, held_out=False), 32) for i in range(args.bank)])
    held_out_renders = as_unit_array([render_scene(s, 32) for s in scenes])
    fresh_train = as_unit_array(
        [render_scene(sample_split_scene(5_000_000 + i, held_out=False), 32) for i in range(args.prompts)]
    )
    # The oracle's own ceiling: the true renders of the same prompts, judged the same way.
    rendered_table = oracle.score(
        [ImageItem(str(i), render_scene(s, 32)) for i, s in enumerate(scenes)], None, ["technical", "aesthetic"]
    )
    from t2i_guidance.world.oracles import alignment_score

    render_alignment = np.array([alignment_score(render_scene(s, 32), canonical_caption(s)).score for s in scenes])
    nn_generated = nearest_distances(as_unit_array(generated_singles), bank)
    nn_held_out = nearest_distances(held_out_renders, bank)
    nn_train = nearest_distances(fresh_train, bank)

    timing = time_candidates(generator, per_prompt[0]["prompt"], settings, args.n_best, args.timing_runs)
    training = generator_path / "training.json"
    low, high = paired_bootstrap(gain)
    report = {
        "command": command_line("world_generator_report"),
        "generator": str(generator_path),
        "generator_training": json.loads(training.read_text()) if training.is_file() else None,
        "prompts": args.prompts, "seeds": args.seeds, "n_best": args.n_best, "steps": steps,
        "guidance_scale": DEFAULT_GUIDANCE, "threads": args.threads,
        "prompt_source": "canonical captions of held-out scenes (scene.sample_split_scene(900000 + i, held_out=True))",
        "single": {
            "alignment_accuracy": float((single_alignment == 5.0).mean()),
            "alignment_mean": float(single_alignment.mean()),
            "technical_mean": float(single_tech.mean()),
            "aesthetic_mean": float(single_aes.mean()),
        },
        f"best_of_{args.n_best}": {
            "alignment_accuracy": float((best == 5.0).mean()),
            "alignment_mean": float(best.mean()),
            "technical_mean": float(best_tech.mean()),
            "aesthetic_mean": float(best_aes.mean()),
            "alignment_gain_over_single_mean": float(gain.mean()),
            "alignment_gain_95ci": [low, high],
        },
        "true_renders_of_the_prompts": {
            "alignment_accuracy": float((render_alignment == 5.0).mean()),
            "technical_mean": float(np.mean([rendered_table[k]["technical"].score for k in rendered_table])),
            "aesthetic_mean": float(np.mean([rendered_table[k]["aesthetic"].score for k in rendered_table])),
        },
        "variance": {
            "prompts_with_differing_candidates": float((all_alignment.std(axis=1) > 0).mean()),
            "mean_within_prompt_std": float(all_alignment.std(axis=1).mean()),
        },
        "nearest_neighbour_rms_distance": {
            "bank_size": args.bank,
            "generated": {"mean": float(nn_generated.mean()), "median": float(np.median(nn_generated)),
                          "p05": float(np.percentile(nn_generated, 5))},
            "held_out_renders": {"mean": float(nn_held_out.mean()), "median": float(np.median(nn_held_out)),
                                 "p05": float(np.percentile(nn_held_out, 5))},
            "fresh_training_renders": {"mean": float(nn_train.mean()), "median": float(np.median(nn_train)),
                                       "p05": float(np.percentile(nn_train, 5))},
        },
        "speed": {
            "candidates": args.n_best, "steps": steps, "threads": args.threads,
            "seconds_median": statistics.median(timing), "seconds_runs": timing,
            "within_5s": statistics.median(timing) <= 5.0,
        },
        "counting": counting_summary(per_count_prompt, args.seeds),
        "generation_seconds_total": generation_seconds,
        "per_prompt": per_prompt,
        "per_count_prompt": per_count_prompt,
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "world_generator.json").write_text(json.dumps(report, indent=2))
    (out / "world_generator.md").write_text(markdown(report))
    draw_grid(grid_rows, out / "world_generator_samples.png")
    return report


def counting_summary(rows: list[dict], seeds: int) -> dict | None:
    """Count accuracy (and full alignment accuracy) of the single samples and of the oracle's pick, overall
    and per asked count; None when no counting prompt was run."""
    if not rows:
        return None

    def rates(chosen: list[dict]) -> dict:
        single = np.array([r["count_right"][:seeds] for r in chosen], dtype=float)
        best = np.array([r["count_right"][r["pick"]] for r in chosen], dtype=float)
        single_aligned = np.array([r["alignment"][:seeds] for r in chosen]) == 5.0
        best_aligned = np.array([r["alignment"][r["pick"]] for r in chosen]) == 5.0
        return {"prompts": len(chosen), "single_count_accuracy": float(single.mean()),
                "best_count_accuracy": float(best.mean()),
                "single_alignment_accuracy": float(single_aligned.mean()),
                "best_alignment_accuracy": float(best_aligned.mean())}

    counts = sorted({r["count"] for r in rows})
    return {"true_renders_count_accuracy": float(np.mean([r["true_render_count_right"] for r in rows])),
            "prompt_source": "held_out_count_scenes: held-out counting contents, every attribute named",
            "all": rates(rows), "per_count": {str(c): rates([r for r in rows if r["count"] == c]) for c in counts}}


def counting_lines(r: dict) -> list[str]:
    c = r.get("counting")
    if not c:
        return []
    n_best = r["n_best"]
    lines = [
        "",
        f"Counting: {c['all']['prompts']} held-out counting prompts of the extended grammar with every attribute "
        "named (e.g. \"three small red squares on a white background\"); the count is right when the oracle "
        "sees exactly that many objects of the named size, colour and shape.",
        "",
        f"| asked count | prompts | count right, single | count right, best of {n_best} (oracle pick) | "
        f"alignment accuracy, single | alignment accuracy, best of {n_best} |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in [("all", c["all"]), *c["per_count"].items()]:
        lines.append(f"| {name} | {row['prompts']} | {row['single_count_accuracy']:.3f} | "
                     f"{row['best_count_accuracy']:.3f} | {row['single_alignment_accuracy']:.3f} | "
                     f"{row['best_alignment_accuracy']:.3f} |")
    lines.append(f"| reference: the true renders of the prompts | {c['all']['prompts']} | "
                 f"{c['true_renders_count_accuracy']:.3f} | | | |")
    return lines


def markdown(r: dict) -> str:
    best_key = f"best_of_{r['n_best']}"
    s, b, nn, sp = r["single"], r[best_key], r["nearest_neighbour_rms_distance"], r["speed"]
    t = r["true_renders_of_the_prompts"]
    trained = r["generator_training"]
    lines = [
        "# World generator, judged by the oracles",
        "",
        f"Command: `{r['command']}`",
        f"Generator: `{r['generator']}`"
        + (f" ({trained.get('steps')} training steps)" if trained else " (no training.json: untrained or unknown)"),
        f"{r['prompts']} held-out prompts (canonical captions of scenes whose contents were never trained on); "
        f"DDIM {r['steps']} steps, guidance {r['guidance_scale']}; {r['n_best']} candidates per prompt, "
        f"the first {r['seeds']} are the single samples. Oracle alignment score 5 = every element met.",
        "",
        "| | alignment accuracy | alignment mean | technical mean | aesthetic mean |",
        "|---|---|---|---|---|",
        f"| single sample ({r['prompts']} x {r['seeds']}) | {s['alignment_accuracy']:.3f} | "
        f"{s['alignment_mean']:.2f} | {s['technical_mean']:.2f} | {s['aesthetic_mean']:.2f} |",
        f"| best of {r['n_best']} (oracle alignment pick) | {b['alignment_accuracy']:.3f} | "
        f"{b['alignment_mean']:.2f} | {b['technical_mean']:.2f} | {b['aesthetic_mean']:.2f} |",
        f"| reference: the true renders of the prompts | {t['alignment_accuracy']:.3f} | | "
        f"{t['technical_mean']:.2f} | {t['aesthetic_mean']:.2f} |",
        "",
        f"Best-of-{r['n_best']} gain in mean alignment over the single-sample mean: "
        f"{b['alignment_gain_over_single_mean']:+.2f} (95 % paired bootstrap interval "
        f"{b['alignment_gain_95ci'][0]:+.2f} .. {b['alignment_gain_95ci'][1]:+.2f}). "
        f"Candidates of a prompt differ in alignment for {r['variance']['prompts_with_differing_candidates']:.0%} "
        f"of prompts (mean within-prompt std {r['variance']['mean_within_prompt_std']:.2f}).",
        *counting_lines(r),
        "",
        f"Nearest-neighbour RMS pixel distance (values in [0, 1]) to {nn['bank_size']} rendered training scenes:",
        "",
        "| images | mean | median | 5th percentile |",
        "|---|---|---|---|",
    ]
    for name, key in (("generated (single samples)", "generated"), ("held-out renders", "held_out_renders"),
                      ("fresh training renders", "fresh_training_renders")):
        d = nn[key]
        lines.append(f"| {name} | {d['mean']:.4f} | {d['median']:.4f} | {d['p05']:.4f} |")
    lines += [
        "",
        "The bank holds training scenes only; held-out contents never occur in it, so a generated image that "
        "meets its held-out prompt is not a copy of any training scene. Fresh training renders show how near "
        "an unseen render of seen content sits; generated images at or beyond the held-out renders' distance "
        "are not copies (a copy would sit at the fresh-training level or nearer).",
        "",
        f"Speed: {sp['candidates']} candidates at {sp['steps']} steps, {sp['threads']} torch threads: "
        f"median {sp['seconds_median']:.2f} s over {len(sp['seconds_runs'])} runs "
        f"({'within' if sp['within_5s'] else 'OVER'} the 5 s budget).",
        "",
        "![samples](world_generator_samples.png)",
        "",
        "Grid: one prompt per row (the last rows are counting prompts), candidates in columns with their "
        "oracle alignment score; the oracle's pick is framed in green.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default=str(GENERATOR_DIR), help="a saved WorldDiffusionPipeline")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--count-prompts", type=int, default=32, help="held-out counting prompts (0: none)")
    parser.add_argument("--seeds", type=int, default=4, help="single samples per prompt")
    parser.add_argument("--n-best", type=int, default=8, help="candidates per prompt for best-of-N")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the pipeline's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bank", type=int, default=3000, help="rendered training scenes for nearest neighbours")
    parser.add_argument("--grid-rows", type=int, default=8)
    parser.add_argument("--count-grid-rows", type=int, default=3, help="counting prompts shown in the grid")
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    problem = None
    if args.n_best < args.seeds:
        problem = "--n-best must be at least --seeds"
    elif args.prompts < 1 or args.seeds < 1 or args.count_prompts < 0:
        problem = "--prompts and --seeds must be at least 1, --count-prompts at least 0"
    elif not (Path(args.generator) / "model_index.json").is_file():
        problem = f"no pipeline at {args.generator} (model_index.json missing)"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    report = run(args)
    best_key = f"best_of_{report['n_best']}"
    print(json.dumps({k: report[k] for k in ("single", best_key, "variance", "counting", "speed")}, indent=2))


if __name__ == "__main__":
    main()

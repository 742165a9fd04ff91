"""The world generator at several guidance scales, side by side on the same held-out prompts and seeds.

    python -m benchmarks.world_generator_guidance                          # shipped weights, 1.5 2 3 4
    python -m benchmarks.world_generator_guidance --generator DIR --scales 1,2,3 --prompts 48 --threads 1

Each prompt (the canonical caption of a held-out scene, as in world_generator_report.py) gets --seeds
candidates per scale from the same seeds, judged by the oracles. Per scale: full-alignment accuracy, mean
alignment, technical and aesthetic means, the paired change in mean alignment against the first scale
(95 % bootstrap interval over prompts), and the share of images failing in each kind of element (the
oracle's unmet sentences sorted into kinds: an object missing in its colour, a wrong shape, a wrong
size, a wrong relation or position, a wrong background, an object not asked for). Writes benchmarks/results/world_generator_guidance.{json,md}.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import (
    GENERATOR_DIR,
    RESULTS,
    command_line,
    held_out_scenes,
    paired_bootstrap,
    write_json_and_markdown,
)

# The oracle's unmet sentences (world/oracles.py judge_alignment) by kind, first match wins.
UNMET_KINDS = (
    ("object missing", re.compile(r"no \w+ (\w+ )?(object )?is visible|cannot be|it is missing|none of the requested")),
    ("wrong shape", re.compile(r"object is a \w+$")),
    ("wrong size", re.compile(r"but it is (small|large)$")),
    ("wrong background", re.compile(r"background but it is")),
    ("object not asked for", re.compile(r"does not ask for")),
    ("wrong relation or position", re.compile(r"but it is")),
)


def unmet_kind(sentence: str) -> str:
    for name, pattern in UNMET_KINDS:
        if pattern.search(sentence):
            return name
    return "other"


def run(args: argparse.Namespace) -> dict:
    import torch

    from t2i_guidance.generator import GenerationSettings, Generator, candidate_seeds
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.oracles import aesthetic_score, alignment_score, technical_score
    from t2i_guidance.world.pipeline import DEFAULT_STEPS

    torch.set_num_threads(args.threads)
    generator = Generator.from_pretrained(str(args.generator), device="cpu")
    prompts = [canonical_caption(scene) for scene in held_out_scenes(args.prompts)]
    rows = {}
    for scale in args.scales:
        settings = GenerationSettings(num_inference_steps=DEFAULT_STEPS, guidance_scale=scale)
        alignment, technical, aesthetic, kinds = [], [], [], Counter()
        start = time.perf_counter()
        for index, prompt in enumerate(prompts):
            candidates = generator.generate(prompt, candidate_seeds(10_000 * index, args.seeds), settings,
                                            batch_size=args.seeds)
            per_prompt = []
            for candidate in candidates:
                judged = alignment_score(candidate.image, prompt)
                per_prompt.append(judged.score)
                kinds.update({unmet_kind(s) for s in judged.unmet})  # images with such a failure
                technical.append(technical_score(candidate.image).score)
                aesthetic.append(aesthetic_score(candidate.image).score)
            alignment.append(per_prompt)
        scores = np.array(alignment)
        rows[str(scale)] = {
            "guidance_scale": scale,
            "alignment_accuracy": float((scores == 5.0).mean()),
            "alignment_mean": float(scores.mean()),
            "technical_mean": float(np.mean(technical)),
            "aesthetic_mean": float(np.mean(aesthetic)),
            "share_of_images_failing": {k: v / scores.size for k, v in kinds.most_common()},
            "per_prompt_alignment": scores.mean(axis=1).tolist(),
            "seconds": time.perf_counter() - start,
        }
        print(f"guidance {scale}: accuracy {rows[str(scale)]['alignment_accuracy']:.3f}, "
              f"alignment {scores.mean():.2f}", flush=True)
    base = np.array(rows[str(args.scales[0])]["per_prompt_alignment"])
    for row in rows.values():
        change = np.array(row["per_prompt_alignment"]) - base
        row["alignment_change_vs_first"] = float(change.mean())
        row["alignment_change_95ci"] = list(paired_bootstrap(change)) if row is not rows[str(args.scales[0])] else None
    report = {"command": command_line("world_generator_guidance"),
              "generator": str(args.generator), "prompts": args.prompts, "seeds": args.seeds,
              "steps": DEFAULT_STEPS, "threads": args.threads, "rows": rows}
    write_json_and_markdown(report, str(Path(args.out_dir) / "world_generator_guidance"), markdown)
    return report


def markdown(report: dict) -> str:
    rows = list(report["rows"].values())
    kinds = sorted({k for r in rows for k in r["share_of_images_failing"]}, key=lambda k: -rows[0]["share_of_images_failing"].get(k, 0))
    first = rows[0]["guidance_scale"]
    lines = [
        "# World generator by guidance scale, judged by the oracles",
        "",
        f"Command: `{report['command']}`",
        f"Generator: `{report['generator']}`; {report['prompts']} held-out prompts x {report['seeds']} seeds, the same "
        f"seeds at every scale; DDIM {report['steps']} steps.",
        "",
        f"| guidance | full alignment | mean alignment | change vs {first:g} (95 % CI) | technical | aesthetic | "
        + " | ".join(kinds) + " |",
        "|---" * (6 + len(kinds)) + "|",
    ]
    for r in rows:
        ci = r["alignment_change_95ci"]
        change = "" if ci is None else f"{r['alignment_change_vs_first']:+.2f} ({ci[0]:+.2f}..{ci[1]:+.2f})"
        lines.append(
            f"| {r['guidance_scale']:g} | {r['alignment_accuracy']:.3f} | {r['alignment_mean']:.2f} | {change} | "
            f"{r['technical_mean']:.2f} | {r['aesthetic_mean']:.2f} | "
            + " | ".join(f"{r['share_of_images_failing'].get(k, 0):.2f}" for k in kinds) + " |"
        )
    lines += ["", "The last columns are the share of images with at least one unmet element of that kind (an image "
              "can fail in several kinds; a missing object also leaves its relation or position unmet, counted as "
              "missing)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default=str(GENERATOR_DIR))
    parser.add_argument("--scales", default="1.5,2,3,4", help="comma-separated; changes are against the first")
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.scales = [float(s) for s in args.scales.split(",")]
    return run(args)


if __name__ == "__main__":
    main()

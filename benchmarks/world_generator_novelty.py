"""Is the world generator copying? Nearest training render, split by whether the picture meets its prompt.

    python -m benchmarks.world_generator_novelty --threads 2

world_generator_report.py compares the mean nearest-neighbour distance of all single samples with that of
held-out renders. A picture that meets every element of its held-out prompt shows a content that was
never rendered for training, so it cannot be a copy of a training scene; a picture that fails may instead
have drawn a trained content (the asked objects with a swapped colour, say). This splits the single
samples (the same prompts and seeds as the report's first --seeds candidates) into those two groups and
gives each group's distance beside the held-out renders' and fresh training renders'. Writes
benchmarks/results/world_generator_novelty.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import (
    GENERATOR_DIR,
    RESULTS,
    as_unit_array,
    command_line,
    held_out_scenes,
    nearest_distances,
    write_json_and_markdown,
)


def run(args: argparse.Namespace) -> dict:
    import torch

    from t2i_guidance.generator import GenerationSettings, Generator, candidate_seeds
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.oracles import alignment_score
    from t2i_guidance.world.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
    from t2i_guidance.world.render import render_scene
    from t2i_guidance.world.scene import sample_split_scene

    torch.set_num_threads(args.threads)
    generator = Generator.from_pretrained(str(args.generator), device="cpu")
    settings = GenerationSettings(num_inference_steps=DEFAULT_STEPS, guidance_scale=DEFAULT_GUIDANCE)
    scenes = held_out_scenes(args.prompts)
    met, unmet = [], []
    for index, scene in enumerate(scenes):
        prompt = canonical_caption(scene)
        for candidate in generator.generate(prompt, candidate_seeds(10_000 * index, args.seeds), settings,
                                            batch_size=args.seeds):
            (met if alignment_score(candidate.image, prompt).score == 5.0 else unmet).append(candidate.image)
    bank = as_unit_array([render_scene(sample_split_scene(i, held_out=False), 32) for i in range(args.bank)])
    groups = {
        "generated, every element met (held-out content)": met,
        "generated, some element unmet": unmet,
        "held-out renders": [render_scene(s, 32) for s in scenes],
        "fresh training renders": [render_scene(sample_split_scene(5_000_000 + i, held_out=False), 32)
                                   for i in range(args.prompts)],
    }
    rows = {}
    for name, images in groups.items():
        distances = nearest_distances(as_unit_array(images), bank) if images else np.array([])
        rows[name] = {"images": len(images),
                      "mean": float(distances.mean()) if len(distances) else None,
                      "median": float(np.median(distances)) if len(distances) else None}
    report = {"command": command_line("world_generator_novelty"),
              "generator": str(args.generator), "prompts": args.prompts, "seeds": args.seeds,
              "guidance_scale": DEFAULT_GUIDANCE, "bank_size": args.bank, "rows": rows}
    write_json_and_markdown(report, str(Path(args.out_dir) / "world_generator_novelty"), markdown)
    return report


def markdown(report: dict) -> str:
    lines = ["# World generator novelty, split by whether the picture meets its held-out prompt", "",
             f"Command: `{report['command']}`",
             f"Generator: `{report['generator']}`; {report['prompts']} held-out prompts x {report['seeds']} seeds (the "
             f"report's single samples), guidance {report['guidance_scale']:g}; RMS pixel distance (values in [0, 1]) "
             f"to the nearest of {report['bank_size']} rendered training scenes.", "",
             "| images | count | mean | median |", "|---|---|---|---|"]
    for name, row in report["rows"].items():
        mean = "" if row["mean"] is None else f"{row['mean']:.4f}"
        median = "" if row["median"] is None else f"{row['median']:.4f}"
        lines.append(f"| {name} | {row['images']} | {mean} | {median} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default=str(GENERATOR_DIR))
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--bank", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", default=str(RESULTS))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()

"""Rebuild the embedded world's base VLM and the tiny OmniQuality-R on top of it, with one command.

    python -m t2i_guidance.world.training.rebuild_scorer --out runs/world_vlm [--ship]

Stages, each skipped when its output already exists (so an interrupted rebuild continues where it
stopped; the base VLM's own training also resumes from its last checkpoint):
  1. the generator's pictures       t2i_guidance.world.training.generated_pool   -> OUT/generated
  2. the world base VLM, at 112 px, then at 224 px starting from it (an 8 x 8 grid of visual tokens, so a
     token covers 4 x 4 px of the 32 px picture and a small object's shape survives), then grown to a
     256-wide language model and pretrained further (2-D positions throughout)
                                    t2i_guidance.world.training.train_base_vlm   -> OUT/base112, OUT/base, OUT/base_wide
  3. the scorer's labelled records  t2i_guidance.world.training.scorer_data      -> OUT/scorer_data
  4. the look-first scorer: CoT by rejection sampling, then SFT; every "I see" claim comes before the
     prompt is restated, then compared checks (seen value, asked value, verdict, running count)
                                    t2i_guidance.world.training.train_scorer     -> OUT/look
  5. the same trajectories, 600 more SFT steps at a lower rate  train_scorer    -> OUT/scorer
With --ship the wide base VLM is copied to reward_model/weights/world-base-vlm and the scorer to
reward_model/weights/tiny-omniquality-r (the `embedded` preset, which reads its alignment verdicts from its
description: t2i_guidance/world/grounded_verdict.py), each with its provenance, weights stored in bf16.
The defaults are the settings the shipped 2026-12-04 models were built with (the shipped wide base was
pretrained on a GPU; docs/training.md gives each stage's time on this project's 2-core CPU, about five
hours in all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHIPPED_BASE = REPO / "reward_model" / "weights" / "world-base-vlm"


def _run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/world_vlm")
    parser.add_argument("--pool", type=int, default=512, help="generator pictures")
    parser.add_argument("--base-steps", type=int, default=3000, help="base VLM steps at 112 px")
    parser.add_argument("--base224-steps", type=int, default=1800, help="base VLM steps at 224 px, from the 112 px one")
    parser.add_argument("--wide-steps", type=int, default=1400, help="steps of the 256-wide base, grown from the 224 px one")
    parser.add_argument("--renders", type=int, default=9000, help="render records for the scorer")
    parser.add_argument("--sft-steps", type=int, default=1200, help="the look-first scorer's SFT steps")
    parser.add_argument("--more-sft-steps", type=int, default=600, help="the shipped scorer's further SFT steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ship", action="store_true", help="copy the results into reward_model/weights")
    args = parser.parse_args(argv)
    out = (REPO / args.out).resolve() if not Path(args.out).is_absolute() else Path(args.out)
    threads = str(args.threads)

    _run("-m", "t2i_guidance.world.training.generated_pool", "--out", str(out / "generated"), "--n", str(args.pool),
         "--threads", threads)
    base112, base, wide = out / "base112" / "final", out / "base" / "final", out / "base_wide" / "final"
    base_args = ("--pool", str(out / "generated"), "--threads", threads)
    if not (base112 / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_base_vlm", "--out", str(out / "base112"), *base_args,
             "--batch-size", "16", "--steps", str(args.base_steps), "--side", "112")
    if not (base / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_base_vlm", "--out", str(out / "base"), *base_args,
             "--batch-size", "16", "--steps", str(args.base224_steps), "--side", "224", "--lr", "5e-4",
             "--init-from", str(base112))
    if not (wide / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_base_vlm", "--out", str(out / "base_wide"), *base_args,
             "--batch-size", "32", "--steps", str(args.wide_steps), "--side", "224", "--lr", "1e-3",
             "--hidden-size", "256", "--init-from", str(base))
    data = out / "scorer_data"
    if not (data / "train.jsonl").exists():
        _run("-m", "t2i_guidance.world.training.scorer_data", "--out", str(data), "--renders", str(args.renders),
             "--pool", str(out / "generated"))
    look, scorer = out / "look", out / "scorer"
    form = ("--element-checks", "--tally", "--paired", "--compare", "--seen-first", "--look-first", "--keep", "best",
            "--sft-max-length", "640", "--max-new-tokens", "400", "--skip-untrained", "--sft-only", "--threads", threads)
    if not (look / "sft" / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_scorer", "--out", str(look), "--data", str(data),
             "--base", str(wide), "--sft-steps", str(args.sft_steps), "--sft-lr", "5e-4", "--eval-limit", "120", *form)
    if not (scorer / "sft" / "config.json").exists():
        if not (scorer / "cot").exists():  # the same trajectories: no second rejection sampling
            shutil.copytree(look / "cot", scorer / "cot")
        _run("-m", "t2i_guidance.world.training.train_scorer", "--out", str(scorer), "--data", str(data),
             "--base", str(look / "sft"), "--sft-steps", str(args.more_sft_steps), "--sft-lr", "2e-4",
             "--eval-limit", "10", *form)
    if args.ship:
        from reward_model.export_embedded import export_embedded

        command = "python -m t2i_guidance.world.training.rebuild_scorer"
        provenance = json.loads((wide / "provenance.json").read_text())
        export_embedded(wide, SHIPPED_BASE, provenance={"base": provenance, "command": command}, weights_dtype="bf16")
        report = json.loads((scorer / "learning_proof.json").read_text())
        export_embedded(scorer / "sft", weights_dtype="bf16", provenance={
            "base_vlm": str(SHIPPED_BASE.relative_to(REPO)), "training": report.get("settings"),
            "evaluations": report.get("evaluations"), "verdicts": "world-grounded", "command": command})
        print(f"shipped {SHIPPED_BASE} and the embedded scorer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Rebuild the embedded world's base VLM and the tiny OmniQuality-R on top of it, with one command.

    python -m t2i_guidance.world.training.rebuild_scorer --out runs/world_vlm [--ship]

Stages, each skipped when its output already exists (so an interrupted rebuild continues where it
stopped; the base VLM's own training also resumes from its last checkpoint):
  1. the generator's pictures       t2i_guidance.world.training.generated_pool   -> OUT/generated
  2. the world base VLM, at 112 px, then at 224 px starting from it (an 8 x 8 grid of visual tokens, so a
     token covers 4 x 4 px of the 32 px picture and a small object's shape survives)
                                    t2i_guidance.world.training.train_base_vlm   -> OUT/base112, OUT/base/final
  3. the scorer's labelled records  t2i_guidance.world.training.scorer_data      -> OUT/scorer_data
  4. CoT -> SFT -> GRPO stage 1 -> stage 2 with the paper's rewards (format, Gaussian accuracy), evaluated
     after each stage       t2i_guidance.world.training.train_scorer     -> OUT/scorer
With --ship the base VLM is copied to reward_model/weights/world-base-vlm and GRPO stage 1 to
reward_model/weights/tiny-omniquality-r (the `embedded` preset), each with its provenance. Stage 1 ships:
on held-out prompts its best-of-8 picks were at least as good as stage 2's (docs/training.md).
The defaults are the settings the shipped 2026-12-03 models were built with (the shipped 224 px base saw
a 192-picture pool; the rebuild gives it the full one); on a 2-core CPU the whole rebuild takes about
three hours (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--renders", type=int, default=4500, help="render records for the scorer")
    parser.add_argument("--sft-steps", type=int, default=1200)
    parser.add_argument("--grpo1-steps", type=int, default=40)
    parser.add_argument("--grpo2-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ship", action="store_true", help="copy the results into reward_model/weights")
    args = parser.parse_args(argv)
    out = (REPO / args.out).resolve() if not Path(args.out).is_absolute() else Path(args.out)
    threads = str(args.threads)

    _run("-m", "t2i_guidance.world.training.generated_pool", "--out", str(out / "generated"), "--n", str(args.pool),
         "--threads", threads)
    base112, base = out / "base112" / "final", out / "base" / "final"
    base_args = ("--pool", str(out / "generated"), "--batch-size", "16", "--threads", threads)
    if not (base112 / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_base_vlm", "--out", str(out / "base112"), *base_args,
             "--steps", str(args.base_steps), "--side", "112")
    if not (base / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_base_vlm", "--out", str(out / "base"), *base_args,
             "--steps", str(args.base224_steps), "--side", "224", "--lr", "5e-4", "--init-from", str(base112))
    data = out / "scorer_data"
    if not (data / "train.jsonl").exists():
        _run("-m", "t2i_guidance.world.training.scorer_data", "--out", str(data), "--renders", str(args.renders),
             "--pool", str(out / "generated"))
    scorer = out / "scorer"
    if not (scorer / "grpo_stage2" / "config.json").exists():
        _run("-m", "t2i_guidance.world.training.train_scorer", "--out", str(scorer), "--data", str(data), "--base", str(base),
             "--keep", "best", "--sft-steps", str(args.sft_steps), "--sft-lr", "5e-4", "--skip-untrained",
             "--grpo1-steps", str(args.grpo1_steps), "--grpo1-lr", "2e-5", "--grpo2-steps", str(args.grpo2_steps),
             "--grpo2-lr", "1e-5", "--grpo-batch", "16", "--max-new-tokens", "192", "--eval-limit", "120",
             "--threads", threads)
    if args.ship:
        from reward_model.export_embedded import export_embedded

        provenance = json.loads((base / "provenance.json").read_text())
        export_embedded(base, SHIPPED_BASE, provenance={"base": provenance,
                                                         "command": "python -m t2i_guidance.world.training.rebuild_scorer"})
        report = json.loads((scorer / "learning_proof.json").read_text())
        export_embedded(scorer / "grpo_stage1", provenance={
            "base_vlm": str(SHIPPED_BASE.relative_to(REPO)), "training": report.get("settings"),
            "evaluations": report.get("evaluations"), "command": "python -m t2i_guidance.world.training.rebuild_scorer"})
        print(f"shipped {SHIPPED_BASE} and the embedded scorer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ship a trained tiny scorer as the `embedded` preset (reward_model/weights/tiny-omniquality-r).

    python -m reward_model.export_embedded runs/lp/grpo_stage2 --provenance runs/lp/learning_proof.json

The processor is pinned to one pixel budget, the size the scorer was trained at (224 x 224 by default):
the embedded generator draws 32 x 32 pictures, and without the pin the processor would hand them to the
model as 4 visual tokens instead of the 64 it learned from. The copy is written next to the target and
renamed into place, so an interrupted export never leaves half a model where the preset looks.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from reward_model.backends import EMBEDDED_DIR
from reward_model.provenance import portable

TRAINED_SIDE = 224  # the 2026-12 scorer and base VLM see 224 px (an 8 x 8 grid of merged tokens)


def export_embedded(source: str | Path, target: str | Path = EMBEDDED_DIR, side: int = TRAINED_SIDE,
                    provenance: dict | None = None, weights_dtype: str = "fp32") -> Path:
    """Copy model + processor from `source` to `target` with the processor pinned to side x side pixels.
    weights_dtype "bf16" stores the weights at half the size; the backends load them in their own dtype
    (fp32 on a CPU), so only the stored precision changes."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if weights_dtype not in ("fp32", "bf16"):
        raise ValueError(f"weights_dtype must be fp32 or bf16, got {weights_dtype!r}")

    source, target = Path(source), Path(target)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a saved model directory (no config.json)")
    processor = AutoProcessor.from_pretrained(source)
    processor.image_processor.size = {"shortest_edge": side * side, "longest_edge": side * side}
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    if weights_dtype == "bf16":
        model = model.to(torch.bfloat16)
    getattr(model.config, "text_config", model.config).use_cache = True  # training turns it off; generation wants it
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    (staging / "provenance.json").write_text(
        json.dumps(portable({"source": str(source), "pixels": [side, side], **(provenance or {})}), indent=2) + "\n"
    )
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a trained model directory (e.g. a learning-proof stage)")
    parser.add_argument("--target", default=str(EMBEDDED_DIR))
    parser.add_argument("--side", type=int, default=TRAINED_SIDE, help="image side the scorer was trained at")
    parser.add_argument("--provenance", help="a learning_proof.json whose settings and scores travel along")
    parser.add_argument("--weights-dtype", default="fp32", choices=("fp32", "bf16"), help="stored precision")
    args = parser.parse_args(argv)
    provenance = None
    if args.provenance:
        report = json.loads(Path(args.provenance).read_text())
        provenance = {"training": report.get("settings"), "evaluations": report.get("evaluations")}
    path = export_embedded(args.source, args.target, args.side, provenance, args.weights_dtype)
    size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
    print(f"exported {args.source} -> {path} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

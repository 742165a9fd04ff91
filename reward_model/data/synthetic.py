"""A tiny synthetic IQA set for tests and smoke runs: one coloured shape, blurred by a known amount.

The technical label falls with the blur, and `facts` say what is seen and what is wrong, so the
rule-based teacher can write trajectories. The embedded world's exporter
(`python -m t2i_guidance.world.training.iqa_export`) is the richer source; this one keeps reward_model
self-contained.

    python -m reward_model.data.synthetic --out data/synthetic --n 64 --seed 0
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from reward_model.data.schema import IQARecord, write_records

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square")
BLUR_WORDS = {0: None, 1: "the edges are slightly blurred", 2: "the edges are blurred",
              3: "the whole image is heavily blurred"}


def render(colour: str, shape: str, blur: int, size: int = 112) -> Image.Image:
    image = Image.new("RGB", (size, size), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    box = (size // 4, size // 4, 3 * size // 4, 3 * size // 4)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=COLOURS[colour])
    return image.filter(ImageFilter.GaussianBlur(radius=blur * 2.5)) if blur else image


def make_records(out_dir: str | Path, n: int, seed: int = 0, test_fraction: float = 0.25) -> list[IQARecord]:
    """Render `n` images into out_dir/images and return their technical-quality records."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    records = []
    for index in range(n):
        colour, shape, blur = rng.choice(list(COLOURS)), rng.choice(SHAPES), index % 4
        name = f"images/{index:05d}.png"
        render(colour, shape, blur).save(out_dir / name)
        issue = BLUR_WORDS[blur]
        records.append(IQARecord(
            image=name,
            task="technical",
            label=round(4.6 - 1.3 * blur + rng.uniform(-0.2, 0.2), 2),
            source="synthetic",
            split="test" if rng.random() < test_fraction else "train",
            facts={"seen": [f"a {colour} {shape} in the centre"], "issues": [issue] if issue else []},
        ))
    return records


def write_dataset(out_dir: str | Path, n: int, seed: int = 0) -> dict[str, Path]:
    """out_dir/{train,test}.jsonl (image paths relative to out_dir) plus all.jsonl."""
    out_dir = Path(out_dir)
    records = make_records(out_dir, n, seed)
    paths = {}
    for split in ("train", "test"):
        paths[split] = out_dir / f"{split}.jsonl"
        write_records(paths[split], [r for r in records if r.split == split])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = write_dataset(args.out, args.n, args.seed)
    print(" ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

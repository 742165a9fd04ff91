"""What does a base VLM say it sees? Its own greedy description of held-out renders, claim by claim.

    python -m benchmarks.base_descriptions --model reward_model/weights/world-base-vlm --pictures 96

The probes ask whether a fact is in the model's features; this asks whether the model *says* it. Each
picture (32 px renders of held-out scenes, every other one damaged at level 1..4) is described by the
model ("Describe the picture.", greedy, through `generate` as the scorer runs), and every "I see" object
claim is checked against the oracles' reading (`world/claims.py`): fully true, and per attribute (colour,
shape, size, position). The same pictures are also scored teacher-forced on the reference description,
where the next-token accuracy on the place and shape words says what the model would say if it were
handed the right words so far.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from t2i_guidance.world.claims import check_rationale
from t2i_guidance.world.oracles import degradation_levels, observe
from t2i_guidance.world.render import DEGRADATIONS, degrade, render_clean
from t2i_guidance.world.scene import sample_split_scene

INSTRUCTION = "Describe the picture."
ATTRIBUTES = ("object", "colour", "shape", "size", "position")


def held_out_pictures(count: int, seed: int = 4242) -> list[Image.Image]:
    rng = random.Random(seed)
    pictures = []
    for index in range(count):
        picture = render_clean(sample_split_scene(rng.randrange(2**31), held_out=True), 32)
        if index % 2:
            picture = degrade(picture, rng.choice(DEGRADATIONS), rng.randint(1, 4), seed=index)
        pictures.append(picture)
    return pictures


def tally(descriptions: list[str], pictures: list[Image.Image]) -> dict[str, dict[str, int]]:
    """Per attribute: how many "I see" object claims were checked and how many were true."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"true": 0, "claims": 0})
    for text, picture in zip(descriptions, pictures, strict=True):
        pixels = np.asarray(picture.convert("RGB"))
        for claim in check_rationale(text, observe(pixels), degradation_levels(pixels)).of_kind("object"):
            for name, true in (("object", claim.true), *claim.attributes.items()):
                counts[name]["claims"] += 1
                counts[name]["true"] += bool(true)
    return dict(counts)


def describe(model_path: str, pictures: list[Image.Image], batch_size: int = 16) -> list[str]:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_path)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32).eval()  # stored bf16
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": INSTRUCTION}]}],
        add_generation_prompt=True, tokenize=False)
    texts = []
    for start in range(0, len(pictures), batch_size):
        batch = pictures[start:start + batch_size]
        inputs = processor(text=[prompt] * len(batch), images=batch, return_tensors="pt", padding=True)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=96, do_sample=False)
        new = output[:, inputs["input_ids"].shape[1]:]
        texts += processor.tokenizer.batch_decode(new, skip_special_tokens=True)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="reward_model/weights/world-base-vlm")
    parser.add_argument("--pictures", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write OUT.json with the counts and every description")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    pictures = held_out_pictures(args.pictures)
    descriptions = describe(args.model, pictures)
    counts = tally(descriptions, pictures)
    print(f"{args.model}: 'I see' claims true, {args.pictures} held-out renders, greedy")
    for name in ATTRIBUTES:
        if name in counts:
            c = counts[name]
            print(f"  {name:9s} {c['true'] / c['claims']:.2f} of {c['claims']}")
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(
            {"model": args.model, "pictures": args.pictures, "counts": counts, "descriptions": descriptions},
            indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The tiny OmniQuality-R's training set: world pictures labelled and described by the oracles.

    python -m t2i_guidance.world.training.scorer_data --out runs/world_vlm/scorer_data --pool runs/world_vlm/generated

Unlike `iqa_export` (labels from what was rendered), every label and fact here is the oracles' reading of
the pixels, because the oracles are what the scorer is judged by: on the generator's pictures there is no
other truth. Two sources, at the generator's 32 px:
  - renders from the IQA exporter's scene makers (damage at every level, good and poor compositions,
    right and partly wrong captions); held-out scene contents go to test only;
  - the world generator's own pictures (a `generated_pool` folder), each as an aesthetic record, an
    alignment record with the prompt it was drawn from, and a technical record (half of them with
    added blur, noise or compression). All of them go to train (the held-out test of the generator's
    pictures is the guided benchmark, on prompts this set never uses), unless `pool_split="test"` says
    the pool is a held-out one (`generated_pool --held-out`), as the scorer refresh uses it.
Record facts carry the sentences of `describe.py` (seen, asks, levels, issues, unmet, elements) for the
rule-based CoT teacher.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from reward_model.data.schema import IQARecord, write_records
from t2i_guidance.world.describe import picture_facts
from t2i_guidance.world.render import DEGRADATIONS, degrade
from t2i_guidance.world.training import iqa_export

SIZE = 32


def _record(image: Image.Image, task: str, prompt: str | None, name: str, source: str, split: str,
            out: Path) -> IQARecord:
    facts = picture_facts(image, prompt if task == "alignment" else None)
    image.save(out / name)
    return IQARecord(image=name, task=task, label=facts.label(task), prompt=prompt if task == "alignment" else None,
                     source=source, split=split, facts=facts.teacher_facts(task))


def export(out: str | Path, renders: int, pool: str | Path | None = None, seed: int = 0,
           progress: bool = True, pool_split: str = "train") -> dict[str, int]:
    """Write OUT/images/*.png and OUT/{train,test}.jsonl; returns records per split."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    records: dict[str, list[IQARecord]] = {"train": [], "test": []}
    for index in tqdm(range(renders), desc="render records", unit="img", disable=not progress):
        rng = random.Random(f"scorer:{seed}:{index}")
        task = iqa_export.TASKS[index % len(iqa_export.TASKS)]
        split = "test" if rng.random() < iqa_export.TEST_FRACTION else "train"
        image, fields = iqa_export.MAKERS[task](rng, split, SIZE)
        records[split].append(_record(image, task, fields["prompt"], f"images/render_{task}_{index:06d}.png",
                                      "world-render", split, out))
    if pool is not None:
        from t2i_guidance.world.training.generated_pool import load_pool

        images, prompts, _ = load_pool(pool)
        for index in tqdm(range(len(images)), desc="generator records", unit="img", disable=not progress):
            rng = random.Random(f"scorer-gen:{seed}:{index}")
            picture = Image.fromarray(images[index])
            for task in iqa_export.TASKS:
                shown = picture
                if task == "technical" and rng.random() < 0.5:
                    shown = degrade(picture, rng.choice(DEGRADATIONS), rng.randint(1, 5), seed=rng.randrange(2**31))
                records[pool_split].append(_record(shown, task, prompts[index], f"images/gen_{task}_{index:06d}.png",
                                                   "world-generator", pool_split, out))
    for rows in records.values():
        random.Random(seed).shuffle(rows)  # sources and tasks interleaved for SFT's sequential limit
    return {split: write_records(out / f"{split}.jsonl", rows) for split, rows in records.items()}


def label_summary(path: str | Path) -> dict[str, dict[str, float]]:
    """Per source and task: count, mean and std of the labels (a quick look at what the set holds)."""
    from reward_model.data.schema import read_records

    groups: dict[str, list[float]] = {}
    for record in read_records(path):
        groups.setdefault(f"{record.source}/{record.task}", []).append(record.label)
    return {key: {"n": len(v), "mean": round(float(np.mean(v)), 3), "std": round(float(np.std(v)), 3)}
            for key, v in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--renders", type=int, default=4500, help="render records (a third per task)")
    parser.add_argument("--pool", help="generator pool folder (three records per picture)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = export(args.out, args.renders, args.pool, args.seed)
    print(f"wrote {counts['train']} train and {counts['test']} test records to {args.out}")
    for key, stats in label_summary(Path(args.out) / "train.jsonl").items():
        print(f"  {key}: {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

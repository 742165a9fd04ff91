"""Export a labelled IQA set from the embedded world, for training and evaluating the reward model.

    python -m t2i_guidance.world.training.iqa_export --out data/world_iqa --n 3000 --seed 0 [--size 112]

Writes OUT/images/*.png and OUT/{train,test}.jsonl (reward_model.data.schema.IQARecord), a third of the
records per task, labels from the world's ground truth of what was rendered (never from an oracle's
reading of pixels):
  - technical: a clean scene degraded by blur, noise or JPEG at a known level 0..5; label = 5 - level.
  - aesthetic: scenes laid out well or poorly (off-centre, cramped at the border, clashing colours,
    clutter dots); label = the composition rules of `oracles.composition_score` on the true layout.
  - alignment: a scene with its own caption or a partly wrong one (colour, shape, size, position,
    relation, swapped colours, background, a missing or extra object); label = 5 x the fraction of prompt
    elements met.
`facts` hold plain sentences a rule-based teacher can use, perception first: seen, issues, unmet.
Records of held-out scene contents (scene.is_held_out) go to test only; the rest go to train.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from reward_model.data.schema import IQARecord, write_records
from t2i_guidance.world.captions import canonical_caption, caption, parse_prompt
from t2i_guidance.world.describe import restate
from t2i_guidance.world.oracles import (
    ISSUE_WORDS,
    POSITION_CHECKS,
    alignment_checks,
    compared_checks,
    composition_score,
    observation_of_scene,
    requested_pairs,
)
from t2i_guidance.world.render import DEGRADATIONS, degrade, render_clean
from t2i_guidance.world.scene import (
    BACKGROUNDS,
    COLOURS,
    INVERSE_RELATION,
    POSITIONS,
    SHAPES,
    Scene,
    sample_split_scene,
)

TASKS = ("technical", "aesthetic", "alignment")
TEST_FRACTION = 0.2
Stray = tuple[str, float, float, float]


def _scene(rng: random.Random, split: str) -> Scene:
    return sample_split_scene(rng.randrange(2**31), held_out=split == "test")


def _seen(scene: Scene, strays: int = 0) -> list[str]:
    return observation_of_scene(scene, strays).describe()


# ---------------------------------------------------------------- technical


def technical_example(rng: random.Random, split: str, size: int) -> tuple[Image.Image, dict]:
    scene = _scene(rng, split)
    kind, level = rng.choice(DEGRADATIONS), rng.randint(0, 5)
    image = degrade(render_clean(scene, size), kind, level, seed=rng.randrange(2**31))
    issues = []
    if level:
        words = ISSUE_WORDS[kind]
        issues.append(words[0] if level <= 1 else words[1] if level <= 3 else words[2])
    facts = {"seen": _seen(scene), "issues": issues, "unmet": []}
    return image, {"label": 5.0 - level, "facts": facts, "prompt": None}


# ---------------------------------------------------------------- aesthetic


def _shift(scene: Scene, dx: float, dy: float) -> Scene:
    return replace(scene, objects=tuple(replace(o, cx=o.cx + dx, cy=o.cy + dy) for o in scene.objects))


def _centre(scene: Scene) -> Scene:
    """Move the objects so their centre of mass sits at the canvas centre (a balanced layout)."""
    seen = observation_of_scene(scene)
    total = sum(o.area for o in seen.objects)
    mx = sum(o.cx * o.area for o in seen.objects) / total
    my = sum(o.cy * o.area for o in seen.objects) / total
    return _shift(scene, 0.5 - mx, 0.5 - my)


def _stray_dots(rng: random.Random, scene: Scene, count: int) -> tuple[Stray, ...]:
    """Small dots away from the objects and the border."""
    dots: list[Stray] = []
    while len(dots) < count:
        cx, cy, r = rng.uniform(0.08, 0.92), rng.uniform(0.08, 0.92), rng.uniform(0.035, 0.045)
        clear = all((cx - o.cx) ** 2 + (cy - o.cy) ** 2 > (o.radius + r + 0.06) ** 2 for o in scene.objects)
        apart = all((cx - x) ** 2 + (cy - y) ** 2 > (2 * r + 0.06) ** 2 for _, x, y, _ in dots)
        if clear and apart:
            dots.append((rng.choice(list(COLOURS)), cx, cy, r))
    return tuple(dots)


CLASHES = {"blue": "purple", "purple": "blue", "red": "orange", "orange": "yellow", "yellow": "orange"}
FLAWS = ("off_centre", "cramped", "clash", "clutter")


def aesthetic_example(rng: random.Random, split: str, size: int) -> tuple[Image.Image, dict]:
    scene = _centre(_scene(rng, split))
    flaws = rng.sample(FLAWS, rng.choice((0, 0, 1, 1, 2, 3)))
    strays: tuple[Stray, ...] = ()
    if "off_centre" in flaws:  # push the whole group towards a corner
        scene = _shift(scene, rng.choice((-1, 1)) * rng.uniform(0.12, 0.25), rng.choice((-1, 1)) * rng.uniform(0.12, 0.25))
    if "cramped" in flaws:  # one object against (or cut by) the nearest border
        index = rng.randrange(len(scene.objects))
        obj = scene.objects[index]
        gap = rng.uniform(-0.05, 0.02) + obj.radius
        if rng.random() < 0.5:
            obj = replace(obj, cx=gap if obj.cx < 0.5 else 1 - gap)
        else:
            obj = replace(obj, cy=gap if obj.cy < 0.5 else 1 - gap)
        scene = replace(scene, objects=scene.objects[:index] + (obj,) + scene.objects[index + 1:])
    if "clash" in flaws:
        if len(scene.objects) == 2 and scene.objects[0].colour in CLASHES:
            second = replace(scene.objects[1], colour=CLASHES[scene.objects[0].colour])
            scene = replace(scene, objects=(scene.objects[0], second))
        else:  # a colour that barely stands out from gray
            first = replace(scene.objects[0], colour=rng.choice(("green", "orange")))
            others = tuple(o for o in scene.objects[1:] if o.colour != first.colour)
            scene = replace(scene, background="gray", objects=(first, *others))
    if "clutter" in flaws:
        strays = _stray_dots(rng, scene, rng.randint(1, 4))
    image = render_clean(scene, size, strays)
    result = composition_score(observation_of_scene(scene, len(strays)))
    facts = {"seen": _seen(scene, len(strays)), "issues": result.issues, "unmet": []}
    return image, {"label": round(result.score, 3), "facts": facts, "prompt": None}


# ---------------------------------------------------------------- alignment


def _other(rng: random.Random, options, *avoid: str) -> str:
    return rng.choice([o for o in options if o not in avoid])


def _alter_prompt_scene(rng: random.Random, scene: Scene, change: str) -> Scene:
    """The scene the wrong caption describes (the picture shows `scene`)."""
    objects = list(scene.objects)
    i = rng.randrange(len(objects))
    if change == "colour":
        objects[i] = replace(objects[i], colour=_other(rng, COLOURS, *(o.colour for o in objects)))
    elif change == "shape":
        objects[i] = replace(objects[i], shape=_other(rng, SHAPES, objects[i].shape))
    elif change == "size":
        objects[i] = replace(objects[i], size="small" if objects[i].size == "large" else "large")
    elif change == "background":
        return replace(scene, background=_other(rng, BACKGROUNDS, scene.background))
    elif change == "position":
        return replace(scene, position=_other(rng, POSITIONS, scene.position))
    elif change == "relation":
        return replace(scene, relation=INVERSE_RELATION[scene.relation])
    elif change == "swap":  # the generator's commonest failure: both colours drawn, on each other's shapes
        first, second = objects
        objects = [replace(first, colour=second.colour), replace(second, colour=first.colour)]
    return replace(scene, objects=tuple(objects))


def alignment_example(rng: random.Random, split: str, size: int) -> tuple[Image.Image, dict]:
    scene = _scene(rng, split)
    shown, prompt_scene = scene, scene
    if rng.random() >= 0.3:  # a partly wrong caption: one or two changes
        pair = len(scene.objects) == 2
        changes = ["colour", "shape", "size", "background", "relation" if pair else "position"]
        changes += ["missing", "swap"] if pair else []
        for change in rng.sample(changes, rng.choice((1, 1, 2))):
            if change == "missing":  # the caption names two objects, the picture shows one
                shown = replace(scene, objects=scene.objects[:1], relation=None, position="center")
            else:
                prompt_scene = _alter_prompt_scene(rng, prompt_scene, change)
    if rng.random() < 0.1 and len(scene.objects) == 2 and shown is scene:  # an extra, unasked object
        first = prompt_scene.objects[0]
        position = next((p for p in POSITIONS if POSITION_CHECKS[p](first.cx, first.cy)), "center")
        prompt_scene = replace(prompt_scene, objects=(first,), relation=None, position=position)
    # Name sizes always when a size was changed, so the change is visible in the words.
    text = canonical_caption(prompt_scene) if rng.random() < 0.5 else caption(prompt_scene, rng, 0.0)
    truth = observation_of_scene(shown)
    checks = alignment_checks(parse_prompt(text), truth)
    met, unmet = [s for ok, s in checks if ok], [s for ok, s in checks if not ok]
    image = render_clean(shown, size)
    facts = {"seen": truth.describe(), "issues": [], "unmet": unmet, "met": met, "elements": len(checks),
             "asks": restate(parse_prompt(text)), "checks": [[ok, s] for ok, s in checks]}
    if (pairs := requested_pairs(parse_prompt(text), truth)) is not None:
        facts["pairs"] = [list(pair) for pair in pairs]
        facts["compared"] = [list(row) for row in compared_checks(parse_prompt(text), truth)]
    return image, {"label": round(5.0 * len(met) / (len(met) + len(unmet)), 3), "facts": facts, "prompt": text}


MAKERS = {"technical": technical_example, "aesthetic": aesthetic_example, "alignment": alignment_example}


def export(out: str | Path, n: int, seed: int = 0, size: int = 112, progress: bool = True) -> dict[str, int]:
    """Write the set; returns how many records each split got."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    records: dict[str, list[IQARecord]] = {"train": [], "test": []}
    for index in tqdm(range(n), desc="world IQA export", unit="img", disable=not progress):
        rng = random.Random(f"{seed}:{index}")  # one stream per record: any record can be remade alone
        task = TASKS[index % len(TASKS)]
        split = "test" if rng.random() < TEST_FRACTION else "train"
        image, fields = MAKERS[task](rng, split, size)
        name = f"images/{task}_{index:06d}.png"
        image.save(out / name)
        records[split].append(IQARecord(image=name, task=task, label=fields["label"], prompt=fields["prompt"],
                                        source="world", split=split, facts=fields["facts"]))
    return {split: write_records(out / f"{split}.jsonl", rows) for split, rows in records.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=3000, help="records in all (a third per task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=112, help="image side in pixels")
    args = parser.parse_args()
    counts = export(args.out, args.n, args.seed, args.size)
    print(f"wrote {counts['train']} train and {counts['test']} test records to {args.out}")


if __name__ == "__main__":
    main()

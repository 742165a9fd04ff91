"""Which facts of a picture does the scorer carry? Linear probes on its vision tower and its language model.

    python -m benchmarks.probes                                      # the shipped tiny scorer
    python -m benchmarks.probes --model runs/new_base --single 2000 --pairs 1200 --generated 300

Features, per picture, from the model as it scores (the picture through its own processor):
- tower: the vision tower's merged outputs (the visual tokens x hidden, as the language model receives them),
  flattened;
- LM@<dimension>: the language model's last hidden state at the answer position (the last token of the
  scoring prompt, where the reasoning starts) for each dimension's instruction. Alignment is asked about one
  fixed prompt for every picture (FIXED_PROMPT), so what the probe reads came from the picture, not the text.
Baselines in the same table: the tower of a randomly initialised model of the same config, raw pixels
(16x16 RGB), and the majority class of the test split.

Datasets (32 px, one random damage each: blur, noise or JPEG at level 0..5):
- single: one-object renders: colour, shape, size, position, background, damage kind (none when level 0),
  damage level; blur / noise / JPEG level among the pictures damaged by that kind (level 0 included);
- pairs: two-object renders, per object by place (the left or top one first, along the relation's axis):
  colour, shape, size of each, and the relation's axis;
- generated: the world generator's pictures of in-grammar prompts, labelled by the oracle's perception
  (`observe`: the largest object's colour, shape, size, position; background; number of objects) and
  `degradation_levels` (rounded).
Logistic regression (scikit-learn, standardised features) fit on 70 % and tested on 30 % of each dataset.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from PIL import Image

from benchmarks.common import (
    add_scorer_model_arguments,
    fmt,
    generate,
    model_name,
    run_scorer_instrument,
)

DIMENSIONS = ("technical", "aesthetic", "alignment")
FIXED_PROMPT = "a red circle in the center on a white background"
FEATURES = ("tower", *(f"LM@{d}" for d in DIMENSIONS), "random tower", "pixels")
TEST_FRACTION = 0.3


# ---------------------------------------------------------------- pictures and their facts


def _damage(image: Image.Image, rng: random.Random) -> tuple[Image.Image, str, int]:
    from t2i_guidance.world.render import DEGRADATIONS, degrade

    kind, level = rng.choice(DEGRADATIONS), rng.randint(0, 5)
    return degrade(image, kind, level, seed=rng.randrange(2**31)), kind, level


def _scenes(objects: int, count: int, rng: random.Random):
    from t2i_guidance.world.scene import sample_scene

    found = []
    while len(found) < count:
        scene = sample_scene(rng.randrange(2**31))
        if len(scene.objects) == objects:
            found.append(scene)
    return found


def single_dataset(count: int, rng: random.Random) -> tuple[list[Image.Image], dict[str, list]]:
    from t2i_guidance.world.render import render_clean

    images, facts = [], {name: [] for name in ("colour", "shape", "size", "position", "background",
                                                 "damage kind", "damage level", "blur level", "noise level",
                                                 "JPEG level")}
    for scene in _scenes(1, count, rng):
        image, kind, level = _damage(render_clean(scene, 32), rng)
        obj = scene.objects[0]
        images.append(image)
        for name, value in (("colour", obj.colour), ("shape", obj.shape), ("size", obj.size),
                            ("position", scene.position), ("background", scene.background),
                            ("damage kind", kind if level else "none"), ("damage level", level),
                            ("blur level", level if kind == "blur" else None),
                            ("noise level", level if kind == "noise" else None),
                            ("JPEG level", level if kind == "jpeg" else None)):
            facts[name].append(value)
    return images, facts


def pair_dataset(count: int, rng: random.Random) -> tuple[list[Image.Image], dict[str, list]]:
    from t2i_guidance.world.render import render_clean

    images, facts = [], {}
    for scene in _scenes(2, count, rng):
        image, _, _ = _damage(render_clean(scene, 32), rng)
        horizontal = scene.relation in ("left_of", "right_of")
        first, second = sorted(scene.objects, key=lambda o: o.cx if horizontal else o.cy)
        images.append(image)
        values = {"axis": "horizontal" if horizontal else "vertical"}
        for label, obj in (("left/top", first), ("right/bottom", second)):
            values.update({f"{label} colour": obj.colour, f"{label} shape": obj.shape, f"{label} size": obj.size})
        for name, value in values.items():
            facts.setdefault(name, []).append(value)
    return images, facts


def generated_dataset(count: int, rng: random.Random, steps: int) -> tuple[list[Image.Image], dict[str, list]]:
    from t2i_guidance.world.captions import caption
    from t2i_guidance.world.oracles import degradation_levels, observe, position_phrase
    from t2i_guidance.world.scene import sample_scene

    prompts = [caption(sample_scene(rng.randrange(2**31)), rng) for _ in range(count)]
    images = generate(prompts, seed=rng.randrange(2**31), steps=steps) if prompts else []
    facts: dict[str, list] = {name: [] for name in ("largest colour", "largest shape", "largest size",
                                                     "largest position", "background", "objects", "blur level",
                                                     "noise level", "JPEG level")}
    for image in images:
        seen, levels = observe(image), degradation_levels(image)
        largest = seen.objects[0] if seen.objects else None
        facts["largest colour"].append(largest.colour if largest else None)
        facts["largest shape"].append(largest.shape if largest else None)
        facts["largest size"].append(largest.size if largest else None)
        facts["largest position"].append(position_phrase(largest.cx, largest.cy) if largest else None)
        facts["background"].append(seen.background)
        facts["objects"].append(min(len(seen.objects), 3))
        for kind, name in (("blur", "blur level"), ("noise", "noise level"), ("jpeg", "JPEG level")):
            facts[name].append(int(round(levels[kind])))
    return images, facts


# ---------------------------------------------------------------- features


class FeatureReader:
    """Reads tower and answer-position features from a saved Qwen2.5-VL folder (or its random twin)."""

    def __init__(self, model_dir: str, random_init: bool = False, seed: int = 0) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.processor.tokenizer.padding_side = "left"  # the answer position is the last column
        if random_init:
            torch.manual_seed(seed)
            self.model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_dir), dtype=torch.float32)
        else:
            self.model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
        self.model.eval()

    def tower(self, images: list[Image.Image]):
        import torch

        inputs = self.processor.image_processor(images=images, return_tensors="pt")
        with torch.inference_mode():
            merged = self.model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        tokens = merged.pooler_output
        if len({t.shape for t in tokens}) != 1:
            raise ValueError("pictures gave different numbers of visual tokens; probes need one size")
        return torch.stack([t.flatten() for t in tokens]).numpy()

    def answer_state(self, images: list[Image.Image], dimension: str):
        import torch

        from reward_model.backends import chat_messages

        prompt = FIXED_PROMPT if dimension == "alignment" else None
        text = self.processor.apply_chat_template(chat_messages(dimension, prompt), tokenize=False,
                                                  add_generation_prompt=True)
        inputs = self.processor(text=[text] * len(images), images=images, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.model(**inputs)
        return out.last_hidden_state[:, -1].numpy()


def features(args: argparse.Namespace, images: list[Image.Image], progress) -> dict[str, np.ndarray]:
    trained = FeatureReader(args.model)
    untrained = FeatureReader(args.model, random_init=True, seed=args.seed)
    parts: dict[str, list] = {name: [] for name in FEATURES}
    for start in range(0, len(images), args.batch):
        chunk = images[start : start + args.batch]
        parts["tower"].append(trained.tower(chunk))
        for dimension in DIMENSIONS:
            parts[f"LM@{dimension}"].append(trained.answer_state(chunk, dimension))
        parts["random tower"].append(untrained.tower(chunk))
        parts["pixels"].append(np.stack([np.asarray(im.convert("RGB").resize((16, 16), Image.Resampling.BOX),
                                                     dtype=np.float32).ravel() / 255.0 for im in chunk]))
        progress.update(len(chunk))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


# ---------------------------------------------------------------- probes


def probe(x: np.ndarray, labels: list, seed: int) -> dict:
    """Test accuracy of a logistic-regression probe, and of the majority class; None labels are skipped."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keep = [i for i, label in enumerate(labels) if label is not None]
    y = np.array([str(labels[i]) for i in keep])
    order = np.random.default_rng(seed).permutation(len(keep))
    cut = int(round(len(keep) * (1 - TEST_FRACTION)))
    fit, test = order[:cut], order[cut:]
    classes = set(y[fit])
    if len(test) == 0 or len(classes) < 2:
        return {"accuracy": None, "majority": None, "fit": len(fit), "test": len(test), "classes": len(set(y))}
    values, counts = np.unique(y[fit], return_counts=True)
    majority = values[counts.argmax()]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.1))
    model.fit(x[keep][fit], y[fit])
    return {"accuracy": float((model.predict(x[keep][test]) == y[test]).mean()),
            "majority": float((y[test] == majority).mean()), "fit": len(fit), "test": len(test),
            "classes": len(set(y))}


def run(args: argparse.Namespace) -> dict:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    datasets = {
        "single": single_dataset(args.single, rng),
        "pairs": pair_dataset(args.pairs, rng),
        "generated": generated_dataset(args.generated, rng, args.generator_steps),
    }
    total = sum(len(images) for images, _ in datasets.values())
    progress = tqdm(total=total, desc="features", unit="picture")
    table = {}
    for name, (images, facts) in datasets.items():
        if not images:
            continue
        feats = features(args, images, progress)
        table[name] = {}
        for fact, labels in facts.items():
            results = {feature: probe(feats[feature], labels, args.seed) for feature in FEATURES}
            first = next(iter(results.values()))
            table[name][fact] = {"probes": {k: v["accuracy"] for k, v in results.items()},
                                 "majority": first["majority"], "fit": first["fit"], "test": first["test"],
                                 "classes": first["classes"]}
    progress.close()
    return {"command": args.command, "model": model_name(args.model),
            "pictures": {"single": args.single, "pairs": args.pairs, "generated": args.generated},
            "fixed_alignment_prompt": FIXED_PROMPT, "test_fraction": TEST_FRACTION, "seed": args.seed,
            "threads": args.threads, "table": table}


def markdown(report: dict) -> str:
    pictures = report["pictures"]
    lines = [
        f"# Linear probes: `{report['model']}`",
        "",
        f"{pictures['single']} one-object renders, {pictures['pairs']} two-object renders (32 px, random damage), "
        f"{pictures['generated']} world-generator pictures labelled by the oracles; logistic regression fit on "
        f"{100 * (1 - report['test_fraction']):.0f} %, test accuracy on the rest; {report['threads']} thread(s).",
        "",
        f"Command: `{report['command']}`",
        "",
        "| dataset | fact | classes | test | " + " | ".join(FEATURES) + " | majority |",
        "|---|---|---|---|" + "---|" * (len(FEATURES) + 1),
    ]
    for dataset, facts in report["table"].items():
        for fact, row in facts.items():
            cells = " | ".join(fmt(row["probes"][f]) for f in FEATURES)
            lines.append(f"| {dataset} | {fact} | {row['classes']} | {row['test']} | {cells} | {fmt(row['majority'])} |")
    lines += ["", f"tower: the vision tower's merged visual tokens; LM@d: the language model's last hidden state at "
              f"the answer position of dimension d's prompt (alignment asked about \"{report['fixed_alignment_prompt']}\" "
              "for every picture); random tower: the same config, randomly initialised; pixels: 16x16 RGB. "
              "Per-kind damage levels are probed among the pictures damaged by that kind; in two-object pictures "
              "objects are named by place (left or top first). n/a: too few pictures or classes to fit."]
    return "\n".join(lines) + "\n"


def input_problem(args: argparse.Namespace) -> str | None:
    if min(args.single, args.pairs, args.generated) < 0:
        return "--single, --pairs and --generated must be >= 0"
    if args.single + args.pairs + args.generated < 10:
        return "probes need at least 10 pictures in all"
    if args.batch < 1 or args.generator_steps < 1:
        return "--batch and --generator-steps must be at least 1"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scorer_model_arguments(parser)
    parser.add_argument("--single", type=int, default=1200, help="one-object renders")
    parser.add_argument("--pairs", type=int, default=800, help="two-object renders")
    parser.add_argument("--generated", type=int, default=160, help="world-generator pictures")
    parser.add_argument("--generator-steps", type=int, default=20, help="denoising steps per generated picture")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    return run_scorer_instrument("probes", args, argv, input_problem, run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())

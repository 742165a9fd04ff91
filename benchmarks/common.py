"""What the benchmarks share: where results go, the rerun command line, writing a JSON + Markdown report,
held-out world prompts and the world generator's pictures of them, the paired bootstrap, and the
scorer instruments' (probes, faithfulness, stability) `--model` arguments.

Every scorer instrument takes `--model PATH` (any saved Qwen2.5-VL folder; default the embedded preset's),
checks it before loading anything, and writes `<out>.json` and `<out>.md` with the command line in both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GENERATOR_DIR = REPO / "t2i_guidance" / "world" / "weights" / "generator"


def default_model() -> str:
    from reward_model.backends import EMBEDDED_DIR

    return str(EMBEDDED_DIR)


def model_label(model: str) -> str:
    """"shipped" for the embedded preset's folder, else the folder's name: names the result files."""
    return "shipped" if Path(model).resolve() == Path(default_model()).resolve() else Path(model).resolve().name


def add_scorer_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=default_model(), help="a saved Qwen2.5-VL scorer folder "
                        "(default: the embedded preset's)")
    parser.add_argument("--out", help="path stem for .json and .md (default benchmarks/results/<name>_<model>)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="measure on the fresh held-out prompts and scenes")
    parser.add_argument("--verdicts", default=preset_verdicts(), help="'own' (the judge's checks and score) or a "
                        "verdict rule: 'world-grounded' reads the alignment checks from the judge's description "
                        "(default: the embedded preset's)")


def preset_verdicts(preset: str = "embedded") -> str:
    """How the preset's scorer reaches its alignment verdicts ("own" unless its scorer_kwargs name a rule)."""
    from t2i_guidance.registries import load_preset

    return load_preset(preset).scorer_kwargs.get("verdicts", "own")


def check_scorer_model_arguments(args: argparse.Namespace, name: str) -> str | None:
    """An error line for bad input (before any model loads), else None; fills in the default --out."""
    if not (Path(args.model) / "config.json").is_file():
        return f"--model {args.model}: not a saved model folder (no config.json)"
    if args.threads < 1:
        return "--threads must be at least 1"
    from reward_model.interface import verdicts_problem

    if problem := verdicts_problem(args.verdicts):
        return problem
    if args.out is None:
        args.out = str(RESULTS / f"{name}_{model_label(args.model)}")
    return None


def run_scorer_instrument(name: str, args: argparse.Namespace, argv: list[str] | None,
                          input_problem: Callable[[argparse.Namespace], str | None],
                          run: Callable[[argparse.Namespace], dict], markdown: Callable[[dict], str]) -> int:
    """A scorer instrument's main after parsing: every input checked before any model loads (one error
    line, exit 2), then `run` and its report written to `<out>.json` and `<out>.md`."""
    args.command = command_line(name, argv)
    error = check_scorer_model_arguments(args, name) or input_problem(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_json_and_markdown(run(args), args.out, markdown)
    return 0


def model_name(model: str) -> str:
    """The model folder as reports show it: relative to the repository when inside it."""
    path = Path(model).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def command_line(module: str, argv: list[str] | None = None) -> str:
    """How to rerun: the benchmark module and its arguments as given (`argv`, else the process's own)."""
    return " ".join(["python", "-m", f"benchmarks.{module}", *(sys.argv[1:] if argv is None else argv)])


def write_json_and_markdown(report: dict, stem: str | Path, markdown: Callable[[dict], str]) -> None:
    """`<stem>.json` and `<stem>.md`, and the Markdown printed."""
    path = Path(stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    path.with_suffix(".md").write_text(text)
    print(text)


def held_out_scenes(n: int, start: int = 900_000) -> list:
    """Scenes of held-out contents (never rendered for the generator's training), the same for every benchmark."""
    from t2i_guidance.world.scene import sample_split_scene

    return [sample_split_scene(start + i, held_out=True) for i in range(n)]


def report_prompts(count: int, fresh: bool, start: int = 900_000) -> list[str]:
    """The prompts a report measures on: the fresh held-out set (read by reports only), or held-out scenes."""
    if not fresh:
        return held_out_prompts(count, start)
    from t2i_guidance.world.fresh_prompts import fresh_prompts

    prompts = fresh_prompts(count)
    if len(prompts) < count:
        raise ValueError(f"the fresh set holds {len(prompts)} prompts, {count} asked")
    return prompts


def report_render_scenes(count: int, fresh: bool, start: int = 950_000) -> list:
    """Scenes for rendered test pictures: fresh contents, or held-out ones."""
    from t2i_guidance.world.scene import sample_fresh_scene, sample_split_scene

    if fresh:
        return [sample_fresh_scene(7_500_000 + index) for index in range(count)]
    return [sample_split_scene(start + index, held_out=True) for index in range(count)]


def held_out_prompts(count: int, start: int = 900_000) -> list[str]:
    """Canonical captions of held-out scenes (contents the generator never saw rendered)."""
    from t2i_guidance.world.captions import canonical_caption

    return [canonical_caption(scene) for scene in held_out_scenes(count, start)]


def generate(prompts: list[str], seed: int, batch: int = 16, steps: int | None = None) -> list[Image.Image]:
    """One world-generator picture per prompt, each from its own seed (seed + index)."""
    import torch
    from tqdm.auto import tqdm

    from t2i_guidance.world.pipeline import DEFAULT_STEPS, WorldDiffusionPipeline

    pipeline = WorldDiffusionPipeline.from_pretrained(str(GENERATOR_DIR))
    pipeline.set_progress_bar_config(disable=True)
    images: list[Image.Image] = []
    for start in tqdm(range(0, len(prompts), batch), desc="generating", unit="batch"):
        chunk = prompts[start : start + batch]
        generators = [torch.Generator().manual_seed(seed + start + k) for k in range(len(chunk))]
        images += pipeline(chunk, generator=generators, num_inference_steps=steps or DEFAULT_STEPS).images
    return images


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def paired_bootstrap(values: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of per-prompt differences."""
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(rounds, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def as_unit_array(images: list[Image.Image], size: int = 32) -> np.ndarray:
    """(N, size*size*3) float32 in [0, 1]."""
    return np.stack(
        [np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32).ravel()
         for im in images]
    ) / 255.0


def nearest_distances(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """RMS per-pixel distance from each query to its nearest bank image."""
    squared = (queries**2).sum(1)[:, None] + (bank**2).sum(1)[None, :] - 2.0 * queries @ bank.T
    return np.sqrt(np.clip(squared.min(axis=1), 0.0, None) / queries.shape[1])


def draw_grid(rows: list[dict], path: Path, tile: int = 64, label_width: int = 260) -> None:
    """Prompts as row labels, candidates in columns, the oracle's pick framed in green."""
    columns = max(len(r["images"]) for r in rows)
    pad = 4
    height = len(rows) * (tile + 14 + pad) + pad
    canvas = Image.new("RGB", (label_width + columns * (tile + pad) + pad, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        top = pad + r * (tile + 14 + pad)
        words, lines, line = row["prompt"].split(), [], ""
        for word in words:  # wrap the prompt to the label column
            if len(line) + len(word) + 1 > 40:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        draw.multiline_text((pad, top + 2), "\n".join(lines), fill=(0, 0, 0), spacing=2)
        for c, (image, score) in enumerate(zip(row["images"], row["alignment"], strict=True)):
            left = label_width + pad + c * (tile + pad)
            canvas.paste(image.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (left, top))
            if c == row["pick"]:
                draw.rectangle([left - 3, top - 3, left + tile + 2, top + tile + 2], outline=(0, 170, 0), width=3)
            draw.text((left + 2, top + tile + 1), f"{score:.1f}", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)

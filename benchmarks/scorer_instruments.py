"""What the scorer instruments (probes, faithfulness, stability) share: the command line, pictures of the
world (renders and the world generator's outputs), and writing a report.

Every instrument takes `--model PATH` (any saved Qwen2.5-VL folder; default the embedded preset's), checks
it before loading anything, and writes `<out>.json` and `<out>.md` with the command line in both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GENERATOR_DIR = REPO / "t2i_guidance" / "world" / "weights" / "generator"


def default_model() -> str:
    from reward_model.presets import EMBEDDED_DIR

    return str(EMBEDDED_DIR)


def model_label(model: str) -> str:
    """"shipped" for the embedded preset's folder, else the folder's name: names the result files."""
    return "shipped" if Path(model).resolve() == Path(default_model()).resolve() else Path(model).resolve().name


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=default_model(), help="a saved Qwen2.5-VL scorer folder "
                        "(default: the embedded preset's)")
    parser.add_argument("--out", help="path stem for .json and .md (default benchmarks/results/<name>_<model>)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)


def check_common_arguments(args: argparse.Namespace, name: str) -> str | None:
    """An error line for bad input (before any model loads), else None; fills in the default --out."""
    if not (Path(args.model) / "config.json").is_file():
        return f"--model {args.model}: not a saved model folder (no config.json)"
    if args.threads < 1:
        return "--threads must be at least 1"
    if args.out is None:
        args.out = str(RESULTS / f"{name}_{model_label(args.model)}")
    return None


def model_name(model: str) -> str:
    """The model folder as reports show it: relative to the repository when inside it."""
    path = Path(model).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def command_line(script: str, argv: list[str] | None = None) -> str:
    """How to rerun: the script and its arguments as given (`argv`, else the process's own)."""
    return f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)


def write_report(report: dict, stem: str, markdown: Callable[[dict], str]) -> None:
    path = Path(stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    path.with_suffix(".md").write_text(text)
    print(text)


def held_out_prompts(count: int, start: int = 900_000) -> list[str]:
    """Canonical captions of held-out scenes (contents the generator never saw rendered)."""
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.scene import sample_split_scene

    return [canonical_caption(sample_split_scene(start + i, held_out=True)) for i in range(count)]


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

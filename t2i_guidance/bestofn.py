"""Command line: best-of-N for one prompt.

    python -m t2i_guidance.bestofn --prompt "a red circle above a blue square" --n 8 --out runs/demo
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from reward_model.registry import get_scorer_factory
from t2i_guidance import scorers
from t2i_guidance.aggregate import parse_weights
from t2i_guidance.cli_common import (
    MAX_CANDIDATES,
    OneLineParser,
    UsageError,
    accepts_keyword,
    check_drawable,
    check_generation_args,
    check_model_location,
    check_n,
    check_output_dir,
    check_prompt,
    check_weights,
    fail,
)
from t2i_guidance.presets import DEFAULT_PRESET, available_presets, load_preset

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m t2i_guidance.bestofn", description=__doc__.split("\n")[1])
    parser.add_argument("--prompt", required=True, help="what to draw")
    parser.add_argument("--n", type=int, default=8, help=f"candidates to generate (1..{MAX_CANDIDATES})")
    parser.add_argument("--out", required=True, help="folder for best.png, candidates/, result.json, index.html")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of: {', '.join(available_presets())}")
    parser.add_argument("--generator", help="diffusers pipeline: hub id or local folder (overrides the preset)")
    parser.add_argument("--scorer", help="registered scorer name (overrides the preset)")
    parser.add_argument("--scorer-model", help="model for the scorer: hub id, local folder or 'embedded'")
    parser.add_argument(
        "--scorer-mode", choices=("reason", "prob-weighted", "answer-only"),
        help="OmniQuality-R: reason (sampled, seeded by --seed), prob-weighted (deterministic, no sampling)"
        " or answer-only (cheap)",
    )
    parser.add_argument("--steps", type=int, help="denoising steps (preset default otherwise)")
    parser.add_argument("--guidance-scale", type=float, help="classifier-free guidance scale")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--negative-prompt")
    parser.add_argument("--seed", type=int, default=0, help="candidate k uses seed + k")
    parser.add_argument("--weights", help="e.g. technical=1,aesthetic=1,alignment=2 (preset default otherwise)")
    parser.add_argument("--batch-size", type=int, help="candidates per pipeline call (default: all at once)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when present)")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), help="default: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--cpu-offload", action="store_true", help="offload idle pipeline parts to CPU (GPU only)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--json", action="store_true", help="print result.json to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every check on user input happens here, before a model is loaded.
    try:
        prompt = check_prompt(args.prompt)
        n = check_n(args.n)
        preset = load_preset(args.preset)
        scorer_name = args.scorer or preset.scorer
        if scorer_name not in scorers.available_scorers():
            raise UsageError(
                f"unknown scorer {scorer_name!r}; available: {', '.join(scorers.available_scorers())}"
            )
        generator_location = check_model_location(
            args.generator or preset.generator, "generator", index_file="model_index.json"
        )
        check_drawable(prompt, generator_location)
        weights = check_weights(args.weights if args.weights is not None else preset.weights, parse_weights)
        steps = args.steps if args.steps is not None else preset.num_inference_steps
        check_generation_args(args, n, steps)
        if args.scorer_mode and not accepts_keyword(get_scorer_factory(scorer_name), "mode"):
            raise UsageError(f"scorer {scorer_name!r} has no modes; --scorer-mode is for omniquality-r")
        out_dir = check_output_dir(args.out, args.overwrite)
    except KeyError as exc:
        fail(exc.args[0])
    except (UsageError, ValueError) as exc:
        fail(str(exc))

    from t2i_guidance.best_of_n import BestOfN
    from t2i_guidance.generator import Generator
    from t2i_guidance.report import write_run

    scorer_kwargs = dict(preset.scorer_kwargs) if scorer_name == preset.scorer else {}
    if args.scorer_model:
        scorer_kwargs["model"] = args.scorer_model
    if args.scorer_mode:
        scorer_kwargs["mode"] = args.scorer_mode
    if accepts_keyword(get_scorer_factory(scorer_name), "seed"):
        scorer_kwargs.setdefault("seed", args.seed)  # sampled scoring draws from the run's seed
    settings = preset.generation_settings(
        num_inference_steps=steps,
        guidance_scale=args.guidance_scale,
        height=args.height,
        width=args.width,
        negative_prompt=args.negative_prompt,
    )
    try:
        scorer = scorers.build_scorer(scorer_name, **scorer_kwargs)
    except Exception as exc:
        fail(f"could not load scorer {scorer_name!r}: {type(exc).__name__}: {exc}", code=1)

    try:
        generator = Generator.from_pretrained(
            generator_location,
            device=args.device,
            dtype=_DTYPES[args.dtype] if args.dtype else None,
            cpu_offload=args.cpu_offload,
        )
    except Exception as exc:  # missing weights, no network, out of memory: say which, do not guess
        fail(f"could not load generator {generator_location!r}: {type(exc).__name__}: {exc}", code=1)

    search = BestOfN(generator, scorer, weights=weights, batch_size=args.batch_size)
    result = search(prompt, n, settings, seed=args.seed, progress=not args.quiet)
    result.config.update(preset=preset.name, generator=generator_location, scorer=scorer_name)
    data = write_run(result, out_dir)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
    best = result.best
    if best is None:
        print(f"error: no candidate could be scored; see {out_dir / 'index.html'}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"best: {best.id} (seed {best.candidate.seed}, aggregate {best.aggregate:.3f}) -> {out_dir / 'best.png'}")
        print(f"contact sheet: {out_dir / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

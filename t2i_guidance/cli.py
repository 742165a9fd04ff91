"""Command line: any registered search strategy for one prompt (`t2i-search`; `t2i-bestofn` and
`t2i-refine` fix the strategy).

    python -m t2i_guidance.search --strategy best-of-n --prompt "a red circle above a blue square" --n 8 --out runs/a
    python -m t2i_guidance.search --strategy refine --prompt "..." --rounds 4 --per-round 4 --out runs/b
    python -m t2i_guidance.search --strategy zero-order --prompt "..." --budget 320 --out runs/c
    python -m t2i_guidance.search --strategy cascade --prompt "..." --n 16 --keep 4 --out runs/d
    python -m t2i_guidance.search --strategy particles --prompt "..." --n 8 --checkpoints 3 --out runs/e
    python -m t2i_guidance.search --strategy path-search --prompt "..." --n 8 --keep 2 --out runs/f

The flags become a RunRequest; the run plan checks every input once. Every bad input is one `error:` line
and exit 2, before any model is loaded; 1 when the run could not be produced (a model failed to load, or no
candidate could be scored: the files are still written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reward_model.backends import ALIASES, PRECISIONS
from t2i_guidance.input_checks import MAX_CANDIDATES, OneLineParser, UsageError, check_output_dir, fail
from t2i_guidance.registries import DEFAULT_PRESET, available_presets
from t2i_guidance.search import available_strategies

if TYPE_CHECKING:
    from t2i_guidance.search.run_builder import RunRequest

# Flags that become strategy options when given (None: not given, the strategy's default applies).
STRATEGY_FLAGS = {
    "n": "n", "per_round": "per_round", "rounds": "rounds", "max_rounds": "max_rounds", "patience": "patience",
    "target": "target", "rewriter": "rewriter", "neighbours": "neighbours", "step_size": "step_size",
    "keep": "keep", "checkpoints": "checkpoints", "resample_lambda": "resample_lambda", "min_gain": "min_gain",
    "potential": "potential", "copies": "copies", "round_seeds": "round_seeds",
}
DEFAULT_N = 8


def build_parser(strategy: str | None = None, prog: str = "python -m t2i_guidance.search") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=__doc__.split("\n")[0])
    if strategy is None:
        parser.add_argument("--strategy", default="best-of-n", help=f"one of: {', '.join(available_strategies())}")
    parser.add_argument("--prompt", required=True, help="what to draw")
    parser.add_argument("--out", required=True, help="folder for best.png, candidates/, result.json, index.html")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of: {', '.join(available_presets())}")
    parser.add_argument("--budget", help="compute budget: NFEs (e.g. 320) or seconds (e.g. 30s); instead of --n")
    run = parser.add_argument_group("strategy options (each applies to the strategies that take it)")
    run.add_argument("--n", type=int, help=f"candidates (best-of-n, cascade: default {DEFAULT_N}; zero-order: "
                     f"round-0 candidates); 1..{MAX_CANDIDATES}")
    run.add_argument("--per-round", type=int, help="refine: candidates per round")
    run.add_argument("--max-rounds", type=int, help="refine: rounds at most")
    run.add_argument("--round-seeds", choices=("fresh", "fixed"), help="refine: fresh seeds each round (default), "
                     "or the first round's seeds redrawn every round, so only the prompt changes")
    run.add_argument("--rounds", type=int, help="zero-order: rounds at most")
    run.add_argument("--patience", type=int, help="refine, zero-order: stop after this many rounds without gain")
    run.add_argument("--target", type=float, help="refine, best-of-n, zero-order: stop once the best weighted score "
                     "(its lower confidence bound with --selection lcb) reaches this")
    run.add_argument("--min-gain", type=float, help="best-of-n, zero-order, refine: stop once another batch is expected to "
                     "gain less than this")
    run.add_argument("--rewriter", help="refine: a registered rewriter (default: the generator's own); "
                     "transformers:MODEL or vllm:MODEL for a chat model")
    run.add_argument("--neighbours", type=int, help="zero-order: neighbours of the pivot noise per round")
    run.add_argument("--step-size", type=float, help="zero-order: how far neighbours move from the pivot")
    run.add_argument("--keep", type=int, help="cascade: candidates the cheap pass lets through; path-search: "
                     "particles kept at each checkpoint")
    run.add_argument("--checkpoints", type=int, help="particles, path-search: steps at which the particles' x0 "
                     "predictions are judged (spread evenly; default 3)")
    run.add_argument("--resample-lambda", type=float, help="particles: resampling weights are "
                     "softmax(lambda * intermediate score); 0 = no steering (default 4)")
    run.add_argument("--potential", choices=("current", "max", "difference", "sum"),
                     help="particles: Feynman-Kac potential the resampling weighs (default current)")
    run.add_argument("--copies", choices=("renoise", "exact"),
                     help="particles: re-noise the extra copies of a resampled particle (default) or keep them exact")
    run.add_argument("--cheap-scorer", help="cascade: registered scorer for the cheap pass; particles, "
                     "path-search: for the intermediate predictions (default: the scorer)")
    run.add_argument("--cheap-mode", choices=("answer-only", "prob-weighted", "reason"),
                     help="with omniquality-r: the cheap pass's mode (default answer-only)")
    run.add_argument("--cheap-dimensions", help="cascade, particles, path-search: dimensions the cheap pass "
                     "judges, e.g. aesthetic (default: the weighted ones)")
    run.add_argument("--selection", default="mean", choices=("mean", "lcb"),
                     help="rank by the weighted mean, or by mean - lambda * std over --samples")
    run.add_argument("--lcb-lambda", type=float, default=1.0)
    run.add_argument("--samples", type=int, help="omniquality-r: sampled answers per request (for --selection lcb)")
    parser.add_argument("--generator", help="diffusers pipeline: hub id or local folder (overrides the preset)")
    parser.add_argument("--scorer", help="registered scorer name (overrides the preset)")
    parser.add_argument("--scorer-model", help="model for the scorer: hub id, local folder or 'embedded'")
    parser.add_argument(
        "--scorer-mode", choices=("reason", "prob-weighted", "answer-only"),
        help="OmniQuality-R: reason (sampled, seeded by --seed), prob-weighted (deterministic, no sampling)"
        " or answer-only (cheap)",
    )
    parser.add_argument("--verdicts", help="OmniQuality-R: 'own' (the judge's own alignment checks and score) or a "
                        "verdict rule; the embedded preset reads them from the judge's description (world-grounded)")
    parser.add_argument("--steps", type=int, help="denoising steps (preset default otherwise)")
    parser.add_argument("--guidance-scale", type=float, help="classifier-free guidance scale")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--negative-prompt")
    parser.add_argument("--seed", type=int, default=0, help="candidate k uses seed + k")
    parser.add_argument("--weights", help="e.g. technical=1,aesthetic=1,alignment=2 (preset default otherwise)")
    parser.add_argument("--batch-size", type=int, help="candidates per pipeline call (default: all at once)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when present)")
    # fp32 by default: bf16 changes the pictures (and the quickstart's pick), and its pick quality has not yet
    # been measured equal within noise on held-out prompts.
    parser.add_argument("--dtype", default="fp32", choices=PRECISIONS + tuple(ALIASES),
                        help="fp32 (default, exact); bf16; auto: bf16 on GPU and on CPUs with AMX / AVX512-BF16")
    parser.add_argument("--cpu-offload", action="store_true", help="offload idle pipeline parts to CPU (GPU only)")
    parser.add_argument("--scorer-device", help="cpu, cuda or cuda:N for the scorer (default: the memory plan's)")
    parser.add_argument("--vllm-memory-share", type=float,
                        help="vLLM backend: its share of the GPU's memory, 0-1 (default: the memory plan's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the memory plan and the expected peak, then exit without loading")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--json", action="store_true", help="print result.json to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def request_from_args(args: argparse.Namespace, strategy: str) -> RunRequest:
    """The run request the flags describe, unchecked (the run plan checks it)."""
    from t2i_guidance.search.run_builder import RunRequest

    options = {key: getattr(args, flag) for flag, key in STRATEGY_FLAGS.items() if getattr(args, flag) is not None}
    if args.cheap_dimensions is not None:
        options["cheap_dimensions"] = [d.strip() for d in args.cheap_dimensions.split(",") if d.strip()]
    if strategy in ("best-of-n", "cascade") and "n" not in options:
        options["n"] = None if args.budget is not None else DEFAULT_N
    return RunRequest(
        preset=args.preset, strategy=strategy, strategy_options=options, generator=args.generator,
        scorer=args.scorer, scorer_model=args.scorer_model, scorer_mode=args.scorer_mode,
        scorer_options={key: value for key, value in (("samples", args.samples), ("verdicts", args.verdicts))
                        if value is not None},
        cheap_scorer=args.cheap_scorer,
        cheap_scorer_options={"mode": args.cheap_mode, "samples": 1} if args.cheap_mode else None,
        weights=args.weights, steps=args.steps, guidance_scale=args.guidance_scale, height=args.height,
        width=args.width, negative_prompt=args.negative_prompt, batch_size=args.batch_size,
        selection=args.selection, lcb_lambda=args.lcb_lambda, budget=args.budget, device=args.device,
        dtype=args.dtype, cpu_offload=args.cpu_offload, scorer_device=args.scorer_device,
        vllm_share=args.vllm_memory_share, prompt=args.prompt, seed=args.seed,
    )


def main(argv: Sequence[str] | None = None, strategy: str | None = None,
         prog: str = "python -m t2i_guidance.search") -> int:
    """Run the command line; Ctrl-C ends it with one line (files are moved into --out only once all
    are written, so an interrupted run leaves none half-written)."""
    try:
        return _main(argv, strategy, prog)
    except KeyboardInterrupt:
        print("error: interrupted; no new run was written", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None, strategy: str | None, prog: str) -> int:
    # Imported here, inside main's Ctrl-C handling: they bring torch, seconds of start-up.
    from t2i_guidance.search.run_builder import RunError, build_run, plan_run

    args = build_parser(strategy, prog).parse_args(argv)
    strategy = strategy or args.strategy
    # Every check on user input happens here, before a model is loaded.
    try:
        plan = plan_run(request_from_args(args, strategy))
        out_dir = None if args.dry_run else check_output_dir(args.out, args.overwrite)
    except (UsageError, RunError) as exc:
        fail(str(exc))

    from t2i_guidance.result import NotFiniteError, write_run
    from t2i_guidance.search.run_builder import ModelLoadError, load_models, memory_plan_for

    memory = memory_plan_for(plan)  # decided before anything loads; loading follows it
    if args.dry_run:
        print(memory.describe())
        return 0
    if not memory.fits:
        fail(memory.describe().replace("\n  ", ": ", 1), code=2)
    try:
        generator, scorer = load_models(plan, memory)
    except ModelLoadError as exc:  # a gated or missing hub model, no network, out of memory: one line
        fail(str(exc), code=1)
    try:
        run = build_run(plan, generator=generator, scorer=scorer, memory=memory)
    except Exception as exc:  # the cascade's cheap scorer, a rewriter model
        fail(f"could not set up {strategy!r}: {type(exc).__name__}: {exc}", code=1)

    result = run(plan.prompt, seed=args.seed, progress=not args.quiet)
    try:
        data = write_run(result, out_dir)
    except NotFiniteError as exc:
        fail(str(exc), code=1)
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


def search_main(argv: Sequence[str] | None = None, prog: str = "t2i-search") -> int:
    return main(argv, prog=prog)


def bestofn_main(argv: Sequence[str] | None = None, prog: str = "t2i-bestofn") -> int:
    return main(argv, strategy="best-of-n", prog=prog)


def refine_main(argv: Sequence[str] | None = None, prog: str = "t2i-refine") -> int:
    return main(argv, strategy="refine", prog=prog)

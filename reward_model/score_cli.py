"""Score image files with OmniQuality-R from the command line.

    python -m reward_model.score --image a.png --image b.png --prompt "a red circle" \
        --dimensions technical,aesthetic,alignment [--model embedded|omniquality-r|PATH|HUB_ID] \
        [--backend auto|transformers|vllm] [--samples K] [--mode reason|prob-weighted|answer-only] [--json]

Exit status: 0 when every requested score was produced, 1 when some image or answer failed (the others
are still reported), 2 for bad arguments or an unusable model (one error line, nothing loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from typing import NoReturn

from reward_model.backends import ModelNotFoundError, available_backends, resolve_model
from reward_model.interface import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DIMENSIONS,
    MAX_PROMPT_CHARS,
    DimensionScore,
    ImageError,
    ImageItem,
    ScoreStatus,
    device_problem,
    load_image,
    normalise_prompt,
    validate_dimensions,
)

MAX_SEED = 2**63 - 1


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block on a bad argument; one error line is enough."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m reward_model.score", description=__doc__.split("\n")[0])
    parser.add_argument("--image", action="append", required=True, help="image file; repeat for more")
    parser.add_argument("--prompt", default=None, help="generation prompt (needed for alignment)")
    parser.add_argument("--dimensions", default=",".join(DIMENSIONS), help="comma-separated dimensions")
    parser.add_argument(
        "--model", default="embedded", help="preset (embedded, omniquality-r), directory or hub id"
    )
    parser.add_argument("--backend", default="auto", choices=available_backends())
    parser.add_argument("--mode", default="reason", choices=("reason", "prob-weighted", "answer-only"))
    parser.add_argument("--decoding", default="sampled", choices=("sampled", "greedy"))
    parser.add_argument("--samples", type=int, default=1, help="completions per request (mean and spread)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--seed", type=int, default=0,
        help="run seed for sampled decoding: each (image, dimension) draws from a seed derived from it and "
        "the image content, so results repeat; --mode prob-weighted or --decoding greedy need none",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: GPU when present)")
    parser.add_argument("--cache-dir", default=None, help="keep scores on disk across runs")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS)
    parser.add_argument("--json", action="store_true", help="print JSON with rationales instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Score the images; Ctrl-C ends it with one line (nothing is written but the optional cache, whose
    entries are written whole)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        dimensions = validate_dimensions([d.strip() for d in args.dimensions.split(",") if d.strip()])
        if args.samples < 1:
            raise ValueError("--samples must be at least 1")
        for flag, value in (("--batch-size", args.batch_size), ("--max-image-pixels", args.max_image_pixels),
                            ("--max-new-tokens", args.max_new_tokens)):
            if value is not None and value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        if not 0 <= args.seed <= MAX_SEED:
            raise ValueError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
        if args.prompt is not None:
            args.prompt = check_prompt(args.prompt)
        if device_problem(args.device):
            raise ValueError(device_problem(args.device))
        resolve_model(args.model)  # fail on a bad model name before loading anything
    except (ValueError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    items, table = [], {}
    for position, path in enumerate(args.image):
        image_id = f"{position}:{path}"  # the same file given twice is still two rows
        try:
            items.append(ImageItem(image_id, load_image(path, args.max_image_pixels)))
        except ImageError as error:
            table[image_id] = {
                d: DimensionScore.failure(d, ScoreStatus.ERROR, str(error)) for d in dimensions
            }

    if items:
        from transformers.utils import logging as transformers_logging

        from reward_model.scorer import OmniQualityScorer  # heavy imports only when there is work

        transformers_logging.disable_progress_bar()  # keep the terminal for the table

        try:
            scorer = OmniQualityScorer(
                model=args.model,
                backend=args.backend,
                decoding=args.decoding,
                samples=args.samples,
                mode=args.mode,
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
                cache_dir=args.cache_dir,
                device=args.device,
                seed=args.seed,
                max_image_pixels=args.max_image_pixels,
            )
        except (ValueError, OSError, ImportError) as error:
            print(f"error: could not load model {args.model!r}: {error}", file=sys.stderr)
            return 2
        table.update(scorer.score(items, args.prompt, dimensions))

    ordered = [(f"{i}:{path}", path) for i, path in enumerate(args.image)]
    if args.json:
        rows = [
            {"image": path, "scores": {d: table[key][d].to_dict() for d in dimensions}}
            for key, path in ordered
        ]
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(ordered, table, dimensions))
    all_ok = all(table[key][d].ok for key, _ in ordered for d in dimensions)
    return 0 if all_ok else 1


def check_prompt(prompt: str) -> str:
    """Normalised (`normalise_prompt`: NFC, invisible marks removed, whitespace collapsed); empty, over-long
    and control-character prompts refused."""
    prompt = normalise_prompt(prompt)
    if not prompt:
        raise ValueError("--prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"--prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}")
    if any(unicodedata.category(c) == "Cc" for c in prompt):
        raise ValueError("--prompt contains control characters")
    return prompt


def format_table(ordered: list[tuple[str, str]], table: dict, dimensions: list[str]) -> str:
    header = ["image", "dimension", "score", "std", "status", "tokens", "note"]
    rows = []
    for key, path in ordered:
        for dimension in dimensions:
            result = table[key][dimension]
            note = "cached" if result.cached else ""
            if not result.ok:
                note = (result.error or "").removeprefix(f"{path}: ").replace("\n", " ")[:80]
            rows.append(
                [
                    path,
                    dimension,
                    f"{result.score:.2f}" if result.score is not None else "-",
                    f"{result.std:.2f}" if result.std is not None else "-",
                    result.status.value,
                    str(result.generated_tokens),
                    note,
                ]
            )
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

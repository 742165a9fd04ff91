"""Run a benchmark: strategies x prompt set x images, judged by independent scorers; resumable.

    python -m benchmarks.run --out runs/geneval --prompt-set world-geneval --per-task 3 \\
        --strategies unguided:embedded best-of-4:embedded refine,per_round=2,max_rounds=2:embedded --judges oracle
    python -m benchmarks.run ... --shard 0/2      # and --shard 1/2 in another process; then
    python -m benchmarks.merge runs/geneval       # one rows.jsonl
    python -m benchmarks.run_report runs/geneval      # report.md + PNGs from the rows alone

Run the same command again after an interruption (even kill -9): finished rows are kept, the rest is done.
"""

from __future__ import annotations

import sys
from pathlib import Path

from t2i_guidance.input_checks import OneLineParser, fail


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run folder: config.json, rows*.jsonl, images/")
    parser.add_argument("--prompt-set", default="world-geneval", help="registered name or file:PATH")
    parser.add_argument("--strategies", "--strategy", nargs="+", required=True,
                        help="STRATEGY[,OPTION=VALUE...][:PRESET]: unguided, best-of-N or any registered search "
                        "strategy, e.g. best-of-4:embedded, refine,per_round=2,max_rounds=2:embedded, "
                        "best-of-n,budget=160:embedded (preset default: embedded)")
    parser.add_argument("--judges", nargs="+", default=["oracle"], help="registered scorers that judge every image")
    parser.add_argument("--images", type=int, default=4, help="images per prompt and strategy (GenEval: 4)")
    parser.add_argument("--per-task", type=int, help="first K prompts of every task (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="run seed; per-prompt seeds derive from it and the id")
    parser.add_argument("--shard", default="0/1", help="I/N: this process does every N-th item from the I-th")
    parser.add_argument("--allow-self-judged", action="store_true",
                        help="record judges that also guide a strategy, marked as not independent")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when present)")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; Ctrl-C at any point ends it with one line (every finished row is on disk, whole)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("error: interrupted; the rows finished so far are kept: run the same command to resume",
              file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from benchmarks import judges  # noqa: F401  (registers the judge scorers)
    from benchmarks.rows import RowsError
    from benchmarks.run_engine import (
        MAX_CANDIDATES,
        RunConfig,
        Runner,
        Shard,
        check_independence,
        drawable_prompt_set,
    )
    from benchmarks.strategy_specs import parse_strategy
    from t2i_guidance import registries as scorers
    from t2i_guidance.input_checks import UsageError, check_device

    # Every check on the input happens here, before a model is loaded.
    try:
        shard = Shard.parse(args.shard)
        if args.images < 1:
            raise ValueError(f"--images must be at least 1, got {args.images}")
        if args.per_task is not None and args.per_task < 1:
            raise ValueError(f"--per-task must be at least 1, got {args.per_task}")
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        strategies = [parse_strategy(s) for s in args.strategies]
        if len({s.name for s in strategies}) != len(strategies):
            raise ValueError("a strategy is named twice")
        too_many = [s.name for s in strategies if (s.n or 0) > MAX_CANDIDATES]
        if too_many:
            raise ValueError(f"at most {MAX_CANDIDATES} candidates per image: {', '.join(too_many)}")
        unknown = [j for j in args.judges if j not in scorers.available_scorers()]
        if unknown:
            raise ValueError(f"unknown judge(s) {', '.join(unknown)}; available: {', '.join(scorers.available_scorers())}")
        check_device(args.device)
        prompt_set = drawable_prompt_set(_load_prompt_set(args.prompt_set).limited(args.per_task), strategies)
        check_independence(strategies, args.judges, prompt_set, args.allow_self_judged)
        config = RunConfig(args.prompt_set, [s.name for s in strategies], list(args.judges), args.images,
                           args.per_task, args.seed, args.allow_self_judged)
        if not args.out.strip():  # Path("") is the current folder
            raise ValueError("--out is empty; name the run folder")
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {args.out!r} is a file")
        from benchmarks.run_engine import check_or_write_config

        check_or_write_config(out, config)
    except (KeyError, ValueError, FileNotFoundError, UsageError) as exc:
        fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))

    runner = Runner(config, prompt_set, strategies, out, shard, args.threads, args.device, not args.quiet)
    try:
        counts = runner.run()
    except RowsError as exc:
        fail(str(exc))
    print(f"{counts['written']} rows written, {counts['skipped']} already done, of {counts['items']} "
          f"in shard {shard.index}/{shard.count} -> {out}")
    return 0


def _load_prompt_set(name: str):
    """A registered prompt set, or a user's file; a file that is not a prompt file is one line naming it."""
    from t2i_guidance.registries import FILE_PREFIX, load_prompt_set

    if not name.startswith(FILE_PREFIX):
        return load_prompt_set(name)
    try:
        prompt_set = load_prompt_set(name)
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        reason = f"a row has no {exc.args[0]!r} field" if isinstance(exc, KeyError) else exc
        raise ValueError(f"prompt file {name[len(FILE_PREFIX):]!r} is not a prompt file: {reason}") from None
    if not prompt_set.records:
        raise ValueError(f"prompt file {name[len(FILE_PREFIX):]!r} holds no prompt")
    return prompt_set


if __name__ == "__main__":
    sys.exit(main())

"""Run a benchmark: strategies x prompt set x images, judged by independent scorers; resumable.

    python -m benchmarks.run --out runs/geneval --prompt-set world-geneval --per-task 3 \\
        --strategies unguided:embedded best-of-4:embedded refine,per_round=2,max_rounds=2:embedded --judges oracle
    python -m benchmarks.run ... --shard 0/2      # and --shard 1/2 in another process; then
    python -m benchmarks.merge runs/geneval       # one rows.jsonl
    python -m benchmarks.run_report runs/geneval      # report.md + PNGs from the rows alone
    accelerate launch --num_processes 4 -m benchmarks.run --out runs/geneval ...   # or torchrun --nproc_per_node 4
        # one shard per process (RANK/WORLD_SIZE), each on its own GPU; rank 0 merges and writes the report

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
    parser.add_argument("--shard", help="I/N: this process does every N-th item from the I-th (default: 0/1, or "
                        "RANK/WORLD_SIZE under torchrun / accelerate launch, merged by rank 0 at the end)")
    parser.add_argument("--merge-timeout", type=float, default=6 * 3600,
                        help="launched runs: seconds rank 0 waits for the other shards' rows before merging")
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
    from reward_model.launch import LaunchError, launch_info, process_device
    from t2i_guidance import registries as scorers
    from t2i_guidance.input_checks import UsageError, check_device

    # Every check on the input happens here, before a model is loaded.
    try:
        launch = launch_info()
        launched = args.shard is None and launch.distributed  # one shard per process, merged by rank 0
        shard = Shard(launch.rank, launch.world_size) if launched else Shard.parse(args.shard or "0/1")
        device = process_device(args.device, launch) if launched else args.device
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
        check_device(device)
        if args.merge_timeout < 0:
            raise ValueError(f"--merge-timeout must be at least 0, got {args.merge_timeout}")
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
    except (KeyError, ValueError, FileNotFoundError, UsageError, LaunchError) as exc:
        fail(exc.args[0] if isinstance(exc, KeyError) else str(exc))

    runner = Runner(config, prompt_set, strategies, out, shard, args.threads, device, not args.quiet)
    try:
        counts = runner.run()
    except RowsError as exc:
        fail(str(exc))
    print(f"{counts['written']} rows written, {counts['skipped']} already done, of {counts['items']} "
          f"in shard {shard.index}/{shard.count} -> {out}")
    if launched and launch.main:
        _merge_launched(runner, out, shard.count, args.merge_timeout)
    return 0


def _merge_launched(runner, out: Path, count: int, timeout: float) -> None:
    """Rank 0, its own shard done: wait until every key of the run has a row (the other processes' rows,
    read from their files, so no process group is needed), then merge into rows.jsonl and write the report."""
    from benchmarks.merge import merge_run
    from benchmarks.rows import RowsError
    from benchmarks.run_report import write_run_report
    from reward_model.launch import LaunchError, wait_until

    try:
        wait_until(runner.missing_keys, timeout, f"the rows of the other {count - 1} shard(s) in {out}", interval=2.0)
        rows = merge_run(out)
        report = write_run_report(out)
    except (LaunchError, RowsError, ValueError) as exc:
        fail(f"{exc}; once every shard is done: python -m benchmarks.merge {out}")
    print(f"{count} shards merged: {rows} rows -> {out / 'rows.jsonl'}; report -> {report}")


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

"""GenEval's six tasks inside the embedded world: the table of unguided, best-of-N and refinement.

    python -m benchmarks.world_geneval table --out runs/world_geneval     # unguided, best-of-4, refinement
    python -m benchmarks.world_geneval prompts    # rewrite t2i_guidance/world/prompts/geneval_suite.jsonl

`table` runs the benchmark runner (resumable: rerun the same command after any interruption) on three
strategies at equal generator compute — unguided, best-of-N and prompt refinement with N candidates in
all (N/2 per round, 2 rounds) — all guided by the preset's scorer and judged by the world's oracles,
which must not be that guide; then writes report.md with the GenEval-shaped table and its intervals.

The prompt set, its generator and its correct-or-not judge are the world's
(`t2i_guidance.world.prompt_sets`); this module runs the table and rewrites the prompt file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from t2i_guidance.world.prompt_sets import PROMPT_FILE, WORLD_GENEVAL, write_suite


def table_strategies(preset: str, n: int) -> list[str]:
    """Unguided, best-of-n and refinement drawing n candidates in all: equal NFEs for the two searches."""
    return [f"unguided:{preset}", f"best-of-{n}:{preset}", f"refine,per_round={n // 2},max_rounds=2:{preset}"]


def run_table(argv: list[str]) -> int:
    from t2i_guidance.input_checks import OneLineParser, fail

    parser = OneLineParser(prog="python -m benchmarks.world_geneval table",
                           description="the world GenEval table: unguided, best-of-N, refinement")
    parser.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    parser.add_argument("--preset", default="embedded", help="generator and guide (default: embedded)")
    parser.add_argument("--n", type=int, default=4, help="candidates per image for both searches (even, >= 2)")
    parser.add_argument("--per-task", type=int, default=10,
                        help="prompts per task (default 10: about 10 minutes of one CPU core; GenEval: all, 80-100)")
    parser.add_argument("--images", type=int, default=1, help="images per prompt (GenEval: 4)")
    parser.add_argument("--judges", nargs="+", default=["oracle"], help="registered scorers (none may guide)")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 2 or args.n % 2:
        fail(f"--n must be even and at least 2 (refinement draws n/2 per round for 2 rounds), got {args.n}")
    from benchmarks.run import main as run_main
    from benchmarks.run_report import write_run_report

    # No --allow-self-judged: a guide that is also a judge (the oracle-guided preset) is refused, exit 2.
    command = ["--out", args.out, "--prompt-set", WORLD_GENEVAL, "--per-task", str(args.per_task),
               "--images", str(args.images), "--strategies", *table_strategies(args.preset, args.n),
               "--judges", *args.judges, "--shard", args.shard, "--threads", str(args.threads),
               *(["--device", args.device] if args.device else []), *(["--quiet"] if args.quiet else [])]
    code = run_main(command)
    if code == 0 and args.shard == "0/1":
        print(f"report -> {write_run_report(Path(args.out))}")
    elif code == 0:
        print(f"shard done; when all are: python -m benchmarks.merge {args.out} && "
              f"python -m benchmarks.run_report {args.out}")
    return code


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:
        return run_table(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.world_geneval prompts",
                                     description="rewrite the world GenEval prompt file")
    parser.add_argument("--out", default=str(PROMPT_FILE))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv[1:] if argv[:1] == ["prompts"] else argv)
    print(f"{write_suite(Path(args.out), args.seed)} prompts -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

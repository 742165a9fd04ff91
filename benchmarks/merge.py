"""Merge the shard files of a run folder into one rows.jsonl (one row per key, sorted).

    python -m benchmarks.merge RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.rows import merge_rows, read_rows, write_rows_atomically
from t2i_guidance.input_checks import OneLineParser, fail


def merge_run(out: Path) -> int:
    paths = sorted(out.glob("rows*.jsonl"))
    if not paths:
        raise ValueError(f"no rows*.jsonl in {out}")
    rows = merge_rows(read_rows(p) for p in paths)
    write_rows_atomically(out / "rows.jsonl", rows)
    for path in paths:
        if path.name != "rows.jsonl":
            path.unlink()
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.merge", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        count = merge_run(Path(args.run_dir))
    except ValueError as exc:
        fail(str(exc))
    print(f"{count} rows -> {Path(args.run_dir) / 'rows.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Append-only JSONL rows that survive kill -9: one fsync'd line per finished row, read back by key.

A row is only written when it is complete, as one `write` of one line, flushed and fsync'd before the
next work item starts. A process killed mid-write can leave at most one partial last line; it is cut off
before anything is appended, so a resumed run neither loses a finished row nor writes one twice.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

KEY_FIELDS: tuple[str, ...] = ("strategy", "prompt_set", "prompt_id", "image_index")
TIMING_FIELD = "timing"  # wall-clock numbers: the one part of a row that differs between identical runs


def row_key(row: dict) -> tuple:
    return tuple(row[f] for f in KEY_FIELDS)


def comparable(row: dict) -> dict:
    """The row without its wall-clock timing: equal for equal inputs."""
    return {k: v for k, v in row.items() if k != TIMING_FIELD}


class RowsError(ValueError):
    """A rows file damaged before its last line: one line naming the file and the line."""


def _parse_row(line: bytes) -> dict | None:
    """The row a line holds, or None when it holds none."""
    try:
        row = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    return row if isinstance(row, dict) else None


def _cut_partial_line(path: Path) -> None:
    """Remove a last line that is no row: without its newline (a write cut short by a kill), or broken
    although it ends in one (read_rows has already said so), so appended rows never follow it."""
    with open(path, "rb+") as handle:
        data = handle.read()
        lines = data.split(b"\n")[:-1]
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and _parse_row(lines[-1]) is None:
            lines.pop()
        keep = sum(len(line) + 1 for line in lines)  # a prefix of the file
        if keep != len(data):
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())


def read_rows(path: str | Path) -> list[dict]:
    """Complete rows of one JSONL file, in file order.

    A partial last line (no newline: a write cut short) is ignored; a broken last line that does end in
    a newline is skipped with a warning on stderr (its work item is simply done again); a broken line
    before the last means the file was damaged otherwise, and is refused (RowsError) rather than guessed at."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # the part after the last newline is no complete line
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        row = _parse_row(line)
        if row is not None:
            rows.append(row)
        elif number == last:
            print(f"warning: {path} line {number + 1} is not a complete row; skipped, its work will be done "
                  "again", file=sys.stderr)
        else:
            raise RowsError(f"{path} line {number + 1} is not a JSON row: the file is damaged; remove that "
                            "line (its work will be done again) and run again")
    return rows


class RowWriter:
    """Appends rows to a JSONL file, durable one by one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _cut_partial_line(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close / __exit__)

    def append(self, row: dict) -> None:
        self._handle.write(json.dumps(row, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_rows(sources: Iterable[Iterable[dict]]) -> list[dict]:
    """One row per key, sorted by key; the same key with different content (timing aside) is an error."""
    merged: dict[tuple, dict] = {}
    for rows in sources:
        for row in rows:
            key = row_key(row)
            if key in merged and comparable(merged[key]) != comparable(row):
                raise ValueError(f"two different rows for {key}: the shards were not run with the same inputs")
            merged.setdefault(key, row)
    return [merged[k] for k in sorted(merged, key=lambda k: tuple(str(p) if not isinstance(p, int) else f"{p:09d}"
                                                                  for p in k))]


def write_rows_atomically(path: str | Path, rows: Iterable[dict]) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

"""How many project files the quickstart command runs code from.

    python -m benchmarks.trace_files

Runs `t2i_guidance.cli` main for `bestofn --prompt "a red circle above a small blue square" --n 2
--out <tmpdir>` on the default (embedded) preset, offline on CPU, under `sys.setprofile` (and
`threading.setprofile` for any thread it starts), then prints the count and the list.

Counting rule: a file counts when at least one *function* defined in it is called during the run: a
`def` or a `lambda` (a code object compiled as a function, CO_OPTIMIZED), at import time or later. Module
bodies (`<module>`), class bodies and comprehensions / generator expressions do not count by themselves,
so a module that is only imported (an `__init__.py` of re-exports, a module whose constants are read)
is not counted. Only `.py` files under `t2i_guidance/` and `reward_model/` count, minus the world
plugin package `t2i_guidance/world/`, which is a plugin like any third-party one.
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("t2i_guidance", "reward_model")
EXCLUDED = ("t2i_guidance/world/",)
ARGV = ["--prompt", "a red circle above a small blue square", "--n", "2", "--quiet"]


def counted(filename: str) -> str | None:
    """The repository-relative path of a counted file, or None."""
    try:
        rel = Path(filename).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return None
    if not rel.endswith(".py") or not rel.startswith(tuple(p + "/" for p in PACKAGES)):
        return None
    return None if rel.startswith(EXCLUDED) else rel


def is_function(code) -> bool:
    """A def or a lambda: not a module body, class body, comprehension or generator expression."""
    if not code.co_flags & inspect.CO_OPTIMIZED:
        return False
    return code.co_name == "<lambda>" or not code.co_name.startswith("<")


def trace_files(argv: list[str] = ARGV) -> tuple[int, list[str]]:
    """Run the quickstart command under the profiler; its exit code and the counted files, sorted."""
    seen_codes: set = set()

    def profile(frame, event, arg):
        if event == "call":
            seen_codes.add(frame.f_code)

    with tempfile.TemporaryDirectory() as tmp:
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            from t2i_guidance.cli import bestofn_main  # imported under the profiler: import-time calls count

            code = bestofn_main([*argv, "--out", str(Path(tmp) / "run")], prog="t2i-bestofn")
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    files = {counted(c.co_filename) for c in seen_codes if is_function(c)}
    return code, sorted(f for f in files if f)


def main() -> int:
    code, files = trace_files()
    print(f"exit code {code}; {len(files)} project files run functions:")
    for name in files:
        print(f"  {name}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Argument checks shared by the command-line tools: every bad input is one line and exit code 2,
found before any model is loaded."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from t2i_guidance.report import holds_run

MAX_CANDIDATES = 256  # beyond this a single run should be a benchmark, not a CLI call
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage block on error; we print one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def check_prompt(prompt: str | None) -> str:
    if prompt is None or not prompt.strip():
        raise UsageError("the prompt is empty")
    return prompt.strip()


def check_n(n: int) -> int:
    if not 1 <= n <= MAX_CANDIDATES:
        raise UsageError(f"--n must be between 1 and {MAX_CANDIDATES}, got {n}")
    return n


def check_model_location(location: str, what: str) -> str:
    """A local folder must exist; anything else must look like a hub id ("org/name")."""
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} {location!r} is a file, not a model folder")
        return str(path)
    if location.startswith((".", "/", "~")) or not _HUB_ID.match(location):
        raise UsageError(f"{what} path {location!r} does not exist")
    return location


def check_output_dir(out: str, overwrite: bool) -> Path:
    out_dir = Path(out).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output {out!r} is a file, not a folder")
    if out_dir.is_dir() and holds_run(out_dir) and not overwrite:
        raise UsageError(f"output folder {out!r} already holds a run (use --overwrite to replace it)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {out!r} is not writable: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"output folder {out!r} is not writable")
    return out_dir

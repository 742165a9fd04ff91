"""Provenance and training JSON that is committed must not carry the paths of the machine it was made on.

`portable` rewrites every absolute path inside a JSON-like value: one inside the repository becomes
relative to the repository root, any other keeps only its last component (the rest says nothing on
another machine). Paths inside longer strings (a recorded command line) are rewritten word by word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def portable_path(path: str | Path) -> str:
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.name


def portable(value: Any) -> Any:
    """`value` with every absolute path made repository-relative (see the module docstring)."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    if isinstance(value, Path):
        return portable_path(value)
    if isinstance(value, str) and "/" in value:
        return " ".join(portable_path(word) if word.startswith("/") and len(word) > 1 else word for word in value.split(" "))
    return value

"""Scorer model presets: a name resolves to where the weights are and how images are sized.

- "omniquality-r": the released checkpoint by hub id, with the authors' pixel bounds and token budget.
- "embedded": the small scorer trained by this project, shipped in reward_model/weights/.
Anything else is a local directory (must exist) or a hub id ("owner/name").
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from reward_model.prompts import MAX_PIXELS, MIN_PIXELS

EMBEDDED_DIR = Path(__file__).resolve().parent / "weights" / "tiny-omniquality-r"
RELEASED_HUB_ID = "yeeeeeyy/OmniQuality-R"
RELEASE_TOKENS = 4096  # the authors decode up to 4096 new tokens; fewer cuts the reasoning short
TINY_TOKENS = 512  # the project's tiny scorers reason in far fewer tokens
TINY_HIDDEN_SIZE = 1024  # below this width a model is one of the tiny ones (a 7B is 3584 wide)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotFoundError(ValueError):
    """A model name that points at nothing loadable; the message says what to do."""


@dataclass(frozen=True)
class ScorerModel:
    source: str  # hub id or local directory, as given to from_pretrained
    fingerprint: str  # changes when the weights change: part of every cache key
    min_pixels: int | None  # None: keep what the saved processor says
    max_pixels: int | None
    max_new_tokens: int  # room for the reasoning


PRESETS = ("omniquality-r", "embedded")


def resolve_model(name: str) -> ScorerModel:
    """Turn a preset name, local path or hub id into a ScorerModel, or raise ModelNotFoundError."""
    if name == "omniquality-r" or name == RELEASED_HUB_ID:
        return ScorerModel(RELEASED_HUB_ID, RELEASED_HUB_ID, MIN_PIXELS, MAX_PIXELS, RELEASE_TOKENS)
    if name == "embedded":
        if not (EMBEDDED_DIR / "config.json").exists():
            raise ModelNotFoundError(
                f"the embedded scorer is not available yet: no trained weights in {EMBEDDED_DIR} "
                "(train them first, or pass --model PATH or --model omniquality-r)"
            )
        return _local(EMBEDDED_DIR)
    path = Path(name).expanduser()
    if path.exists():
        return _local(path)
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return ScorerModel(name, name, None, None, RELEASE_TOKENS)
    raise ModelNotFoundError(
        f"model {name!r} not found: not a preset ({', '.join(PRESETS)}), not an existing directory, "
        "not a hub id"
    )


def _local(path: Path) -> ScorerModel:
    path = path.resolve()
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"{path} has no config.json: not a saved model directory")
    return ScorerModel(str(path), _fingerprint(path), None, None, _token_budget(path))


def _token_budget(path: Path) -> int:
    """A local copy of a full-size model (the 7B) gets the release's budget; a tiny scorer its own."""
    config = json.loads((path / "config.json").read_text())
    width = config.get("text_config", {}).get("hidden_size") or config.get("hidden_size") or 0
    return TINY_TOKENS if width < TINY_HIDDEN_SIZE else RELEASE_TOKENS


def _fingerprint(path: Path) -> str:
    """Path plus size and modification time of every weight/config file: retraining invalidates caches."""
    digest = hashlib.sha256(str(path).encode())
    for file in sorted(path.iterdir()):
        if file.suffix in {".json", ".safetensors", ".bin", ".jinja"}:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{path}@{digest.hexdigest()[:16]}"

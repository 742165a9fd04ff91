"""Remembered scores, so the same request is never scored twice.

A key is built from everything that determines a result: the image's content hash, the generation
prompt (only for alignment: the other two instructions do not contain it), the dimension, the model's
fingerprint and the decoding settings. Entries live in memory and, when a directory is given, as one
small JSON file each, written atomically so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from reward_model.interface import DimensionScore, ScoreStatus


def cache_key(image_hash: str, prompt: str | None, dimension: str, model: str, settings: dict) -> str:
    payload = {
        "image": image_hash,
        "prompt": prompt if dimension == "alignment" else None,
        "dimension": dimension,
        "model": model,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ScoreCache:
    """In-memory score cache with an optional on-disk copy."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._memory: dict[str, DimensionScore] = {}
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> DimensionScore | None:
        """The stored result marked `cached=True`, or None.

        `generated_tokens` is 0 on a cached result: it counts the work of this call, and there was none.
        """
        found = self._memory.get(key)
        if found is None and self.directory is not None:
            found = self._read(key)
            if found is not None:
                self._memory[key] = found
        return replace(copy.deepcopy(found), cached=True, generated_tokens=0) if found is not None else None

    def put(self, key: str, result: DimensionScore) -> None:
        # Errors (bad input, crashes) are not model outputs and may be fixed on retry: never cached.
        if result.status is ScoreStatus.ERROR:
            return
        stored = replace(copy.deepcopy(result), cached=False)
        self._memory[key] = stored
        if self.directory is not None:
            self._write(key, stored)

    def clear_memory(self) -> None:
        """Forget what this process stored (an on-disk copy stays): a benchmark item starts afresh."""
        self._memory.clear()

    def __len__(self) -> int:
        return len(self._memory)

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.json"

    def _read(self, key: str) -> DimensionScore | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
            return DimensionScore(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # a damaged entry is a miss; it is rewritten after the next score

    def _write(self, key: str, result: DimensionScore) -> None:
        path = self._path(key)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            json.dump(result.to_dict(), stream)
        os.replace(temporary, path)

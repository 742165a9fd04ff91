"""Downloads people can use: at least DOWNLOAD_PX on the long side (the embedded model's 32 px scaled up
crisp with nearest-neighbour; a real model's pictures kept at their size), PNG carrying the prompt,
seed and scores, named after the prompt and seed."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from apps.demo.rendering import upscale
from t2i_guidance.result import (
    ScoredCandidate,
    SearchResult,
    atomic_write_bytes,
    candidate_metadata,
    png_bytes,
)

DOWNLOAD_PX = 512
NAME_CHARS = 60  # of the prompt, in a file name


def file_stem(prompt: str, seed: int) -> str:
    """"a red circle, on white!" and seed 3 -> "a-red-circle-on-white-seed3" (ASCII, no path characters)."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode().lower()
    words = "-".join(re.findall(r"[a-z0-9]+", ascii_text))[:NAME_CHARS].strip("-") or "picture"
    return f"{words}-seed{seed}"


def write_downloads(result: SearchResult, folder: Path) -> dict[str, Path]:
    """Candidate id -> its download in `folder` (one file each; a repeated prompt and seed, as rounds of
    a refinement may draw, gets the picture's number added)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for scored in result.candidates:
        stem = file_stem(result.prompt, scored.candidate.seed)
        path = folder / f"{stem}.png"
        if path.exists():
            path = folder / f"{stem}-picture{scored.candidate.index + 1}.png"
        atomic_write_bytes(path, download_png(result, scored))
        paths[scored.id] = path
    return paths


def download_png(result: SearchResult, scored: ScoredCandidate) -> bytes:
    metadata = candidate_metadata(result, scored)
    metadata["original_size"] = "x".join(str(side) for side in scored.candidate.image.size)
    return png_bytes(upscale(scored.candidate.image, DOWNLOAD_PX), metadata)

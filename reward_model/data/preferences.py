"""An artist's own picks as training data: the local preference file and its dataset adapter.

The demo appends one line per pick to `<folder>/preferences.jsonl` (opt-in, on the user's machine only)
and saves the pictures beside it in `<folder>/pictures/`, named by content hash. A line says which
picture the artist preferred over which others, for one prompt, with the judge's scores and pick:

    {"prompt": "...", "better": {"file": "pictures/3f2a....png", "seed": 3, "scores": {"aesthetic": 3.1, ...}},
     "worse": [{"file": ..., "seed": 0, "scores": {...}}, ...], "judge_pick_seed": 0, "created": "..."}

"My choice" among N candidates is one line with N-1 worse pictures; "this better than that" has one.

The adapter turns each line into IQARecords whose labels order the pictures as the artist did, for the
rank reward (PreResQ-R1's pairwise fidelity, `rewards: [format, rank]`). Labels start from the judge's
own scores and move only where the artist disagrees: the preferred picture gets at least MARGIN more than
every picture it beat. Fine-tuning the judge on them:

    python -m reward_model.data.adapters preferences ~/.t2i-guidance/preferences --out runs/my-taste/train.jsonl \
        && python -m reward_model.train grpo --config reward_model/configs/my_taste.yaml
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reward_model.data.schema import IQARecord

PREFERENCE_FILE = "preferences.jsonl"
PICTURES = "pictures"
DEFAULT_FOLDER = Path.home() / ".t2i-guidance" / "preferences"
MARGIN = 0.5  # how much higher the preferred picture's label sits above each picture it beat
UNJUDGED_LABEL = 2.5  # a picture the judge could not score starts mid-scale
_APPEND_LOCK = threading.Lock()  # one writer at a time within the process: lines never interleave


@dataclass
class PickedPicture:
    """One picture of a pick: its PNG bytes (written beside the file), seed and the judge's scores."""

    png: bytes
    seed: int
    scores: dict[str, float | None] = field(default_factory=dict)


def append_preference(folder: str | Path, prompt: str, better: PickedPicture, worse: list[PickedPicture],
                      judge_pick_seed: int | None = None) -> dict:
    """Save the pictures (by content hash, so a picture is stored once) and append one line; returns it."""
    if not worse:
        raise ValueError("a preference needs at least one picture it is preferred to")
    folder = Path(folder)
    (folder / PICTURES).mkdir(parents=True, exist_ok=True)
    entry = {
        "prompt": prompt,
        "better": _save_picture(folder, better),
        "worse": [_save_picture(folder, picture) for picture in worse],
        "judge_pick_seed": judge_pick_seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _APPEND_LOCK, open(folder / PREFERENCE_FILE, "a", encoding="utf-8") as handle:
        handle.write(line)  # one write of one whole line: a reader never sees half a pick
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def _save_picture(folder: Path, picture: PickedPicture) -> dict:
    name = f"{PICTURES}/{hashlib.sha1(picture.png).hexdigest()[:20]}.png"
    path = folder / name
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(picture.png)
        temporary.replace(path)
    return {"file": name, "seed": picture.seed, "scores": picture.scores}


def read_preferences(folder: str | Path) -> Iterator[dict]:
    """Every complete line of the preference file; a line cut short (a crash mid-write) is skipped."""
    path = Path(folder) / PREFERENCE_FILE
    if not path.exists():
        raise FileNotFoundError(f"expected {path} (the demo writes it when 'keep my picks' is ticked)")
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n") or not line.strip():
                continue
            yield json.loads(line)


def ordered_labels(better: float | None, worse: list[float | None]) -> tuple[float, list[float]]:
    """Labels on 0..5 in the artist's order: the judge's own scores where they already agree, else the
    preferred one raised (and, near the top of the scale, the others lowered) to MARGIN apart."""
    worse = [UNJUDGED_LABEL if w is None else float(w) for w in worse]
    top = UNJUDGED_LABEL if better is None else float(better)
    top = min(5.0, max(top, max(worse) + MARGIN))
    return top, [max(0.0, min(w, top - MARGIN)) for w in worse]


def preferences(root: Path, test_fraction: float = 0.0, task: str = "aesthetic") -> Iterator[IQARecord]:
    """IQARecords from a preference folder: per line, the preferred picture above each one it beat, on
    `task` (aesthetics by default: taste). Each line is its own group (`source` names the line), so the
    rank reward compares the pictures of one pick with each other under their labels. Every pick trains
    (`test_fraction` is not used: a person's few picks are too few to hold some out)."""
    for number, entry in enumerate(read_preferences(root), start=1):
        better, worse = entry["better"], entry["worse"]
        top, others = ordered_labels(better["scores"].get(task), [w["scores"].get(task) for w in worse])
        source = f"preferences:{number}"
        for picture, label in [(better, top), *zip(worse, others, strict=True)]:
            yield IQARecord(image=str(Path(root) / picture["file"]), task=task, label=round(label, 4),
                            prompt=entry["prompt"], source=source, split="train")


"""The training and evaluation record: one JSONL line per (image, task, label, optional prompt)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reward_model.interface import DIMENSIONS


@dataclass
class IQARecord:
    """One labelled image for one task.

    `image` is a path, relative to the JSONL file's folder or absolute. `label` is on 0..5.
    `facts` optionally holds ground truth a rule-based teacher may read, as plain sentences:
    {"seen": ["a yellow circle on the left", ...], "issues": ["the edges are blurred", ...],
     "unmet": ["no blue square is visible", ...]}. Real datasets leave it empty.
    """

    image: str
    task: str
    label: float
    prompt: str | None = None
    source: str = ""
    split: str = "train"
    facts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in DIMENSIONS:
            raise ValueError(f"task must be one of {DIMENSIONS}, got {self.task!r}")
        self.label = float(self.label)
        if not 0.0 <= self.label <= 5.0:
            raise ValueError(f"label {self.label} is outside 0..5")
        if self.task == "alignment" and not self.prompt:
            raise ValueError("an alignment record needs its generation prompt")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> IQARecord:
        return cls(**data)


def rescale(value: float, low: float, high: float) -> float:
    """Map a dataset's native score range [low, high] onto 0..5."""
    return (float(value) - low) / (high - low) * 5.0


def read_records(path: str | Path) -> Iterator[IQARecord]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield IQARecord.from_dict(json.loads(line))


def write_records(path: str | Path, records: Iterable[IQARecord]) -> int:
    """Write records atomically (temp file, then rename); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
            count += 1
    tmp.replace(path)
    return count


def resolve_image_path(record: IQARecord, jsonl_path: str | Path) -> Path:
    image = Path(record.image)
    return image if image.is_absolute() else Path(jsonl_path).parent / image

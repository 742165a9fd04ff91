"""The one scoring interface between the guidance tool and any scorer.

A scorer receives identified images, an optional generation prompt and the dimensions to judge, and
returns a result per image id and dimension. Results are keyed by id, never by position, so a scorer
that completes requests in any order cannot attach a score to the wrong image.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

DIMENSIONS: tuple[str, ...] = ("technical", "aesthetic", "alignment")
# The longest prompt any command accepts. Text encoders read 77 (CLIP) to a few hundred (T5) tokens and the
# scorer's instruction quotes the prompt, so a longer one is cut anyway; a 100,000-character one once cost
# 11 GB before failing.
MAX_PROMPT_CHARS = 2000


def normalise_prompt(text: str) -> str:
    """The prompt as a person reads it: Unicode NFC (a composed "é" and "e" + accent are the same word),
    invisible format characters removed (bidi marks, zero-width spaces and joiners, byte-order marks, soft
    hyphens: pasted along unseen, they would reach a tokenizer as unknown tokens), whitespace runs one space."""
    text = unicodedata.normalize("NFC", text)
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Cf").split())


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def device_problem(device: str | None) -> str | None:
    """Why `--device` names no device of this machine (one line), or None for cpu, a present mps, cuda or
    cuda:N, and None (the default): so a typo is found before a model loads, not by the load failing."""
    if device is None or device == "cpu":
        return None
    if not _DEVICE.match(device):
        return f"--device must be cpu, cuda, cuda:N or mps, got {device!r}"
    import torch

    if device == "mps":
        return None if torch.backends.mps.is_available() else "--device mps: no Apple GPU is available here"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if int(device.partition(":")[2] or 0) >= count:
        return f"--device {device}: this machine has {count or 'no'} CUDA device{'' if count == 1 else 's'}"
    return None


class ScoreStatus(enum.StrEnum):
    OK = "ok"
    PARSE_FAILURE = "parse_failure"  # the model answered, but no valid 0..5 number could be read
    ERROR = "error"  # the request could not be scored at all (bad image, missing prompt, crash)


@dataclass(frozen=True)
class ImageItem:
    """An image to score, with the id its result will be returned under."""

    id: str
    image: Image.Image


@dataclass
class DimensionScore:
    """The outcome of judging one image on one dimension.

    `score` is None unless `status` is OK: a failure is never given a number.
    """

    dimension: str
    status: ScoreStatus
    score: float | None = None
    rationale: str = ""
    raw: str = ""  # the model's full text, kept for failures and audits
    error: str | None = None
    std: float | None = None  # spread over samples when several were drawn
    samples: list[float] = field(default_factory=list)
    generated_tokens: int = 0
    cached: bool = False

    def __post_init__(self) -> None:
        self.status = ScoreStatus(self.status)
        if self.status is ScoreStatus.OK and self.score is None:
            raise ValueError("an ok score needs a value")
        if self.status is not ScoreStatus.OK and self.score is not None:
            raise ValueError("a failed score must not carry a value")

    @property
    def ok(self) -> bool:
        return self.status is ScoreStatus.OK

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def failure(cls, dimension: str, status: ScoreStatus, error: str, raw: str = "") -> DimensionScore:
        return cls(dimension=dimension, status=status, error=error, raw=raw)


ScoreTable = dict[str, dict[str, DimensionScore]]  # image id -> dimension -> result


@runtime_checkable
class Scorer(Protocol):
    """Anything that judges images on some of the three dimensions."""

    name: str

    def score(
        self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]
    ) -> ScoreTable: ...


def validate_dimensions(dimensions: Sequence[str]) -> list[str]:
    """Return the dimensions as a list, or raise ValueError naming the unknown ones."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}")
    if not dimensions:
        raise ValueError("at least one dimension is needed")
    return list(dimensions)

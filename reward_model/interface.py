"""The one scoring interface between the guidance tool and any scorer.

A scorer receives identified images, an optional generation prompt and the dimensions to judge, and
returns a result per image id and dimension. Results are keyed by id, never by position, so a scorer
that completes requests in any order cannot attach a score to the wrong image.

Around that contract, what every scorer and its callers share:
- Images are loaded and checked before they reach a model (`load_image`, `validate_image`): every problem
  becomes an `ImageError` with one clear sentence, so a caller can record it against that image and go on
  with the rest of the batch. `image_hash` names a picture by its content.
- A score is read out of a model's answer (`parse_answer`, `has_strict_format`): a completion without a
  readable number in SCORE_MIN..SCORE_MAX is a parse failure; the number is never clamped, defaulted or
  guessed.
- Scorers are found by name (`register_scorer`, `build_scorer`) on `LazyRegistry`, the one mechanism for
  everything registered by name. Entries are either an object or a "module:attribute" string imported on
  first use, which keeps a registry cheap to import (no torch or model code is loaded until an entry is
  used). A name is registered once: a second registration under it raises, unless it names the very same
  target. Registries can also be told how to find entries that others bring (`add_loader`): a loader runs
  once, before the first lookup.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image, UnidentifiedImageError

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


SCORE_MIN, SCORE_MAX = 0.0, 5.0  # the range every score lies in, as the model's instructions ask for it


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_BARE_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FORMAT = re.compile(r"^\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*$", re.DOTALL)


@dataclass(frozen=True)
class ParsedAnswer:
    score: float | None
    rationale: str
    error: str | None  # why no score could be read; None when score is set


def parse_answer(text: str) -> ParsedAnswer:
    """Take the float inside the last <answer> block; the <think> text is the rationale."""
    thinks = _THINK.findall(text)
    rationale = thinks[-1].strip() if thinks else ""
    answers = _ANSWER.findall(text)
    if not answers:
        return ParsedAnswer(None, rationale, "no <answer> block")
    content = answers[-1].strip()
    if not _BARE_NUMBER.fullmatch(content):
        return ParsedAnswer(None, rationale, f"answer is not a number: {content[:40]!r}")
    value = float(content)
    if not SCORE_MIN <= value <= SCORE_MAX:
        return ParsedAnswer(None, rationale, f"answer {value} is outside {SCORE_MIN:g}..{SCORE_MAX:g}")
    return ParsedAnswer(value, rationale, None)


def has_strict_format(text: str) -> bool:
    """Exactly one <think> block followed by exactly one <answer> block, nothing around them."""
    return _FORMAT.match(text) is not None


# Above this many pixels an image is refused rather than decoded (a decompression-bomb guard); the
# model never sees more than max_pixels anyway, so nothing useful is lost.
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
# Qwen2.5-VL's resizer refuses images longer than 200 times their width (or the reverse).
MAX_ASPECT_RATIO = 200


class ImageError(ValueError):
    """An image that cannot be scored; the message says why."""


def load_image(path: str | Path, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """Open, fully decode and check an image file; returns an RGB image or raises ImageError."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as opened:
            _check_size(opened.size, max_image_pixels, str(path))
            return _decode(opened, str(path))
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (format not recognised)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image too large to decode safely") from None
    except OSError as error:
        raise ImageError(f"{path}: unreadable image ({error})") from None


def validate_image(
    image: object, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, label: str = "image"
) -> Image.Image:
    """Check an in-memory image and return it decoded as RGB, or raise ImageError."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"{label}: expected a PIL image, got {type(image).__name__}")
    _check_size(image.size, max_image_pixels, label)
    return _decode(image, label)


def _check_size(size: tuple[int, int], max_image_pixels: int, label: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{label}: image has no pixels ({width}x{height})")
    if width * height > max_image_pixels:
        raise ImageError(
            f"{label}: image of {width}x{height} = {width * height:,} pixels is above the limit of "
            f"{max_image_pixels:,} pixels"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageError(f"{label}: aspect ratio of {width}x{height} is above {MAX_ASPECT_RATIO}:1")


def _decode(image: Image.Image, label: str) -> Image.Image:
    """Force the full decode now (PIL is lazy), so a truncated file fails here and not inside a batch."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            return to_rgb(image, label)
    except Image.DecompressionBombWarning:
        raise ImageError(f"{label}: image too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{label}: unreadable or truncated image ({error})") from None


# Modes whose samples are wider than 8 bits: PIL's convert("RGB") clips them (a 16-bit grey PNG
# becomes all white), so they are rescaled here by their nominal range.
_WIDE_RANGE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}
TRANSPARENCY_BACKGROUND = (255, 255, 255)  # what a viewer shows behind transparent pixels


def to_rgb(image: Image.Image, label: str = "image") -> Image.Image:
    """8-bit RGB as a person sees the picture: wide samples rescaled, transparency over white,
    palettes and CMYK through PIL's own conversions."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_RANGE:
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode == "I" and (pixels.min() < 0 or pixels.max() > 65535):
            raise ImageError(f"{label}: 32-bit integer samples outside 0..65535 have no defined brightness")
        grey = np.rint(pixels * (255 / _WIDE_RANGE[image.mode])).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise ImageError(f"{label}: floating-point samples outside 0..1 have no defined brightness")
        return Image.fromarray(np.rint(pixels * 255).astype(np.uint8), "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*TRANSPARENCY_BACKGROUND, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")


def image_hash(image: Image.Image) -> str:
    """A content hash of the decoded pixels: equal pictures share it whatever file they came from."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


ScorerFactory = Callable[..., Scorer]


class LazyRegistry:
    """Names to objects, each given directly or as a "module:attribute" string imported on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}  # name -> target, replaced by the imported object once used
        self._given: dict[str, Any] = {}  # name -> the target as registered, to recognise a re-add
        self._loaders: list[Callable[[], None]] = []

    def add(self, name: str, target: Any) -> Any:
        if name in self._entries and target is not self._entries[name] and target != self._given.get(name):
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({self._given.get(name)!r})")
        self._entries[name] = target
        self._given.setdefault(name, target)
        return target

    def add_loader(self, loader: Callable[[], None]) -> None:
        """`loader` registers more entries; it runs once, the first time a name or the listing is asked for."""
        self._loaders.append(loader)

    def _run_loaders(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def names(self) -> list[str]:
        self._run_loaders()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> Any:
        self._run_loaders()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or 'none'}")
        entry = self._entries[name] = resolve(self._entries[name])
        return entry


def resolve(target: Any) -> Any:
    """The object a "module:attribute" string names (imported now); any other target as it is."""
    if not isinstance(target, str):
        return target
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


SCORERS = LazyRegistry("scorer")


def register_scorer(name: str, factory: ScorerFactory | str | None = None):
    """Register `factory` under `name`; usable as a decorator when `factory` is omitted."""

    def add(target: ScorerFactory | str) -> ScorerFactory | str:
        return SCORERS.add(name, target)

    return add(factory) if factory is not None else add


# Verdict rules: `rule(prompt, rationale) -> (rationale, score) | None` rewrites an alignment answer's checks
# and score from the claims the judge itself made (None: leave the answer as it was). A world whose grammar
# can be checked brings one (the embedded world: "world-grounded"); OmniQualityScorer(verdicts=NAME) uses it.
# A rule with a `reads_until` text reads nothing after it, so the judge's generation ends there.
VERDICT_RULES = LazyRegistry("verdict rule")


def register_verdict_rule(name: str, rule: Callable[[str, str], tuple[str, float] | None] | str) -> None:
    VERDICT_RULES.add(name, rule)


def verdicts_problem(verdicts: str) -> str | None:
    """One line saying why `verdicts` names no way to reach a verdict ("own" or a registered rule); None if it does."""
    if verdicts == "own" or verdicts in VERDICT_RULES:
        return None
    return f"--verdicts {verdicts}: unknown; choose own or {', '.join(VERDICT_RULES.names())}"


def available_scorers() -> list[str]:
    return SCORERS.names()


def get_scorer_factory(name: str) -> ScorerFactory:
    return SCORERS.get(name)


def build_scorer(name: str, **kwargs: Any) -> Scorer:
    return get_scorer_factory(name)(**kwargs)


# Scorers this package ships. Other packages register theirs the same way from their own modules.
register_scorer("omniquality-r", "reward_model.scorer:OmniQualityScorer")

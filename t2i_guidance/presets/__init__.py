"""Named presets: a generator, a scorer and settings, each described by one JSON file in this folder.

A new preset is a new JSON file; no code changes. A relative `generator` path is taken relative to
this folder, so presets that point at shipped weights work from any working directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

PRESET_DIR = Path(__file__).parent
DEFAULT_PRESET = "embedded"  # the world's generator judged by the shipped tiny OmniQuality-R


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    generator: str
    scorer: str
    num_inference_steps: int
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    weights: str = "technical=1,aesthetic=1,alignment=1"
    scorer_kwargs: dict = field(default_factory=dict)
    # The cheap pass (cascade pruning, particles' checkpoints); empty means the scorer's own cheap default.
    cheap_scorer_kwargs: dict = field(default_factory=dict)
    pipeline_kwargs: dict = field(default_factory=dict)  # family-specific, e.g. {"true_cfg_scale": 4.0}


    def generation_settings(self, **overrides):
        """The preset's GenerationSettings; keyword arguments that are not None override it."""
        from t2i_guidance.generator import GenerationSettings

        values = {
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "height": self.height,
            "width": self.width,
            "extra": dict(self.pipeline_kwargs),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return GenerationSettings(**values)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


# Each field's JSON type; a user's preset file is checked against it before anything reads a value.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "description": (str,), "generator": (str,), "scorer": (str,), "num_inference_steps": (int,),
    "guidance_scale": (int, float, type(None)), "height": (int, type(None)), "width": (int, type(None)),
    "weights": (str,), "scorer_kwargs": (dict,), "cheap_scorer_kwargs": (dict,), "pipeline_kwargs": (dict,),
}
_JSON_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", dict: "an object",
                    type(None): "null"}


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def preset_problem(data: object) -> str | None:
    """Why `data` (a preset file's JSON) is not a preset, in a few words; None when it is one."""
    if not isinstance(data, dict):
        return "expected a JSON object with generator, scorer, num_inference_steps ..."
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        return f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
    missing = [name for name in ("description", "generator", "scorer", "num_inference_steps") if name not in data]
    if missing:
        return f"missing {', '.join(missing)}"
    for name, value in data.items():
        types = _FIELD_TYPES[name]
        if isinstance(value, bool) or not isinstance(value, types):  # JSON true is not a number here
            expected = " or ".join(_JSON_TYPE_NAMES[t] for t in types)
            return f"{name} must be {expected}, got {json.dumps(value)}"
    for name in ("num_inference_steps", "height", "width"):
        if data.get(name) is not None and data[name] < 1:
            return f"{name} must be at least 1, got {data[name]}"
    if not data["generator"].strip() or not data["scorer"].strip():
        return "generator and scorer must not be empty"
    return None


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or a preset JSON file of the user's by path; ValueError with one line
    naming the file when it is not a preset."""
    path = Path(name) if name.endswith(".json") else PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(available_presets())} or a .json file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"preset file {str(path)!r} is not readable JSON: {exc}") from None
    problem = preset_problem(data)
    if problem:
        raise ValueError(f"preset file {str(path)!r} is not a valid preset: {problem}")
    generator = data.pop("generator")
    if generator.startswith("."):
        generator = str((path.parent / generator).resolve())
    return Preset(name=path.stem, generator=generator, **data)

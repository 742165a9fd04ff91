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


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or a preset JSON file of the user's by path."""
    path = Path(name) if name.endswith(".json") else PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(available_presets())} or a .json file")
    try:
        data = json.loads(path.read_text())
        generator = data.pop("generator")
        if generator.startswith("."):
            generator = str((path.parent / generator).resolve())
        return Preset(name=path.stem, generator=generator, **data)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"preset {name!r} is not a valid preset file: {exc}") from None

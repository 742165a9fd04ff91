"""Aesthetics: a declared rule set, applied to the perceived layout (`composition_score`; the IQA
exporter applies the very same function to the ground-truth layout of what it rendered).
Score = 5 - penalties:
  - balance (up to 1.5): the area-weighted centre of the objects should lie within 0.25 of the canvas
    centre (canvas side = 1); the penalty grows linearly to its maximum at 0.40.
  - margins (up to 1.5): every object should keep 0.05 of the canvas from the border; the penalty grows
    as the gap shrinks to 0 (touching or cut by the border).
  - colour (up to 1.5): each object should stand out from the background (CIE76 colour difference of at
    least 85; (85 - difference) / 20 of penalty below, at most 1.0: green on gray costs 0.6, orange on
    gray 0.25), and two objects should not clash (difference of at least 50; 0.75 of penalty below:
    blue with purple, red with orange, orange with yellow).
  - clutter (up to 1.5): 0.5 per stray blob (a coloured region smaller than any object).
  - an empty picture (no object at all) scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from t2i_guidance.world.oracles.perception import Observation, observe
from t2i_guidance.world.scene import COLOURS


@dataclass
class AestheticResult:
    score: float
    penalties: dict[str, float]
    issues: list[str]


def _srgb_to_lab(rgb: Sequence[float]) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def colour_difference(a: Sequence[float], b: Sequence[float]) -> float:
    """CIE76 colour difference (Delta E) between two sRGB colours."""
    return float(np.linalg.norm(_srgb_to_lab(a) - _srgb_to_lab(b)))


BACKGROUND_CONTRAST_MIN = 85.0  # green on gray (73) and orange on gray (80) fall below
OBJECT_CLASH_MIN = 50.0  # blue-purple (31), red-orange (41), orange-yellow (49) clash


def composition_score(seen: Observation) -> AestheticResult:
    """The declared composition rules (module docstring) applied to a layout."""
    if not seen.objects:
        return AestheticResult(0.0, {"empty": 5.0}, ["there is no object in the picture"])
    penalties, issues = {}, []
    total = sum(o.area for o in seen.objects)
    mx = sum(o.cx * o.area for o in seen.objects) / total
    my = sum(o.cy * o.area for o in seen.objects) / total
    off = math.hypot(mx - 0.5, my - 0.5)
    penalties["balance"] = 1.5 * float(np.clip((off - 0.25) / 0.15, 0.0, 1.0))
    if penalties["balance"] > 0:
        issues.append("the composition is off-centre and unbalanced")
    gap = min(min(o.box[0], o.box[1], 1 - o.box[2], 1 - o.box[3]) for o in seen.objects)
    penalties["margins"] = 1.5 * float(np.clip((0.05 - gap) / 0.05, 0.0, 1.0))
    if penalties["margins"] > 0:
        issues.append("an object is cramped against the border")
    colour_penalty = 0.0
    for o in seen.objects:
        contrast = colour_difference(COLOURS[o.colour], seen.background_rgb)
        penalty = float(np.clip((BACKGROUND_CONTRAST_MIN - contrast) / 20.0, 0.0, 1.0))
        colour_penalty += penalty
        if penalty >= 0.3:  # only a visible lack of contrast is worth a sentence
            issues.append(f"the {o.colour} {o.shape} barely stands out from the {seen.background} background")
    for i, a in enumerate(seen.objects):
        for b in seen.objects[i + 1:]:
            if colour_difference(COLOURS[a.colour], COLOURS[b.colour]) < OBJECT_CLASH_MIN:
                colour_penalty += 0.75
                issues.append(f"the {a.colour} and {b.colour} objects clash")
    penalties["colour"] = min(1.5, colour_penalty)
    penalties["clutter"] = min(1.5, 0.5 * seen.strays)
    if seen.strays:
        issues.append(f"{seen.strays} stray blob{'s' if seen.strays > 1 else ''} clutter the picture")
    return AestheticResult(float(np.clip(5.0 - sum(penalties.values()), 0.0, 5.0)), penalties, issues)


def aesthetic_score(image: Image.Image | np.ndarray) -> AestheticResult:
    return composition_score(observe(image))


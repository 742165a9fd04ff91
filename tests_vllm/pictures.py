"""Test pictures made here (no data set needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def make_pictures(count: int) -> list[Image.Image]:
    """Pictures of the kind the tiny scorer was trained on: coloured shapes on plain backgrounds, plus noise."""
    rng = np.random.default_rng(7)
    pictures = []
    for index in range(count):
        if index % 4 == 3:
            pictures.append(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
            continue
        background = tuple(int(c) for c in rng.integers(0, 256, 3))
        picture = Image.new("RGB", (32, 32), background)
        draw = ImageDraw.Draw(picture)
        left, top = (int(v) for v in rng.integers(0, 18, 2))
        size = int(rng.integers(8, 15))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = [left, top, left + size, top + size]
        (draw.ellipse if index % 2 else draw.rectangle)(box, fill=colour)
        pictures.append(picture)
    return pictures

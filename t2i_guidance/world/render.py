"""Rendering scenes to pixels (antialiased by supersampling) and controlled degradations."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, Scene, SceneObject

SUPERSAMPLE = 4
DEGRADATIONS: tuple[str, ...] = ("blur", "noise", "jpeg")
# Strength per level 0..5. Blur sigma is in pixels of a 32-pixel canvas and scales with the image size.
BLUR_SIGMA = (0.0, 0.45, 0.7, 1.0, 1.4, 1.9)
NOISE_STD = (0.0, 5.0, 10.0, 17.0, 26.0, 38.0)
JPEG_QUALITY = (100, 60, 35, 20, 12, 6)
QUALITY_TO_DEGRADATION = {"blurry": "blur", "noisy": "noise"}


def shape_polygon(obj: SceneObject, size: int) -> list[tuple[float, float]] | None:
    """Polygon corners in pixels for squares and triangles; None for circles."""
    cx, cy, r = obj.cx * size, obj.cy * size, obj.radius * size
    if obj.shape == "square":
        h = r * 0.85
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if obj.shape == "triangle":
        return [(cx, cy - r), (cx + r * 1.05, cy + r * 0.8), (cx - r * 1.05, cy + r * 0.8)]
    return None


def draw_objects(draw: ImageDraw.ImageDraw, objects: tuple[SceneObject, ...], size: int) -> None:
    for obj in objects:
        colour = COLOURS[obj.colour]
        polygon = shape_polygon(obj, size)
        if polygon is None:
            cx, cy, r = obj.cx * size, obj.cy * size, obj.radius * size
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            draw.polygon(polygon, fill=colour)


def render_clean(scene: Scene, size: int = 32, strays: tuple[tuple[str, float, float, float], ...] = ()) -> Image.Image:
    """The scene without degradation, drawn at SUPERSAMPLE times the size and reduced for smooth edges.

    `strays` are extra clutter dots (colour, cx, cy, radius as fractions), for poor compositions.
    """
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    draw_objects(draw, scene.objects, big)
    for colour, cx, cy, r in strays:
        draw.ellipse([(cx - r) * big, (cy - r) * big, (cx + r) * big, (cy + r) * big], fill=COLOURS[colour])
    return image.resize((size, size), Image.Resampling.BOX)


def degrade(image: Image.Image, kind: str, level: int, seed: int = 0) -> Image.Image:
    """Apply degradation `kind` at `level` (0 = none .. 5 = strongest); deterministic for a seed."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; choose from {DEGRADATIONS}")
    if not 0 <= level <= 5:
        raise ValueError(f"degradation level {level} is outside 0..5")
    if level == 0:
        return image.copy()
    if kind == "blur":
        sigma = BLUR_SIGMA[level] * image.width / 32
        return image.filter(ImageFilter.GaussianBlur(radius=sigma))
    if kind == "noise":
        rng = np.random.default_rng(seed)
        pixels = np.asarray(image, dtype=np.float32)
        noisy = pixels + rng.normal(0.0, NOISE_STD[level], size=pixels.shape)
        return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY[level])
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_scene(scene: Scene, size: int = 32, seed: int = 0) -> Image.Image:
    """The scene with the degradation its quality names (blurry -> blur, noisy -> noise)."""
    image = render_clean(scene, size)
    kind = QUALITY_TO_DEGRADATION.get(scene.quality)
    return degrade(image, kind, scene.quality_level, seed) if kind else image

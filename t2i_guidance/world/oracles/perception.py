"""Perception: what a picture shows, read from pixels only, never from generation metadata.

The background is the median colour of the border; every other pixel is unmixed as
`background + alpha * (palette colour - background)` for each of the world's six object colours and
given to the colour that explains it best, so anti-aliased and blurred edges keep their colour instead
of looking like a third one. Connected regions of one colour are objects (at least 1.1 % of the canvas)
or stray blobs (0.25 % to 1.1 %). Shape comes from geometry (central moments, robust to blur and low
resolution): a triangle's mass sits low, a square's x and y extents are independent; size from the
area; position from the centroid. Everything works at the image's own size (32 to 112 pixels tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from t2i_guidance.world.captions import POSITION_WORDS
from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, SIZES, Scene

COLOUR_NAMES = tuple(COLOURS)
PALETTE = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float32)
OBJECT_MIN_AREA = 0.011  # fraction of the canvas; the smallest object (a small triangle) covers ~0.023
STRAY_MIN_AREA = 0.0025  # smaller regions are ignored as speckle
SHAPE_AREA_FACTOR = {"circle": math.pi, "square": (2 * 0.85) ** 2, "triangle": 2.1 * 1.8 / 2}  # area / r^2
SIZE_SPLIT = math.sqrt(SIZES["small"] * SIZES["large"])  # radius between small and large


@dataclass(frozen=True)
class SeenObject:
    colour: str
    shape: str
    size: str
    cx: float  # centroid, fractions of the canvas
    cy: float
    area: float  # fraction of the canvas
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions

    def describe(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} {position_phrase(self.cx, self.cy)}"


@dataclass(frozen=True)
class Observation:
    """What is in a picture: the background, the objects, and the stray blobs too small to be objects."""

    background: str
    background_rgb: tuple[float, float, float]
    objects: tuple[SeenObject, ...]
    strays: int

    def describe(self) -> list[str]:
        seen = [o.describe() for o in self.objects]
        seen.append(f"a {self.background} background")
        if self.strays:
            seen.append(f"{self.strays} small stray blob{'s' if self.strays > 1 else ''}")
        return seen


def position_phrase(cx: float, cy: float) -> str:
    dx, dy = cx - 0.5, cy - 0.5
    if max(abs(dx), abs(dy)) < 0.12:
        return POSITION_WORDS["center"][0]
    if abs(dx) >= abs(dy):
        return POSITION_WORDS["left" if dx < 0 else "right"][0]
    return POSITION_WORDS["top" if dy < 0 else "bottom"][0]


def to_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    return np.asarray(image, dtype=np.float32)


def nearest_background(rgb: np.ndarray) -> str:
    return min(BACKGROUNDS, key=lambda name: float(np.sum((np.array(BACKGROUNDS[name]) - rgb) ** 2)))


def shape_features(weights: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
    """(vertical skew, cross ratio) of a soft region, from its central moments.

    A triangle (apex up) has its mass low: skew ~ -0.57, where circles and squares have 0. A square's
    x and y are independent, so E[x^2 y^2] / (E[x^2] E[y^2]) = 1.0; a circle's is 2/3. Blur adds
    independent noise to x and y, which keeps a square at 1.0 and moves a circle only slowly towards it.
    """
    w = weights / weights.sum()
    dx, dy = xs - (w * xs).sum(), ys - (w * ys).sum()
    vx, vy = (w * dx**2).sum(), (w * dy**2).sum()
    skew = float((w * dy**3).sum() / max(vy, 1e-9) ** 1.5)
    cross = float((w * dx**2 * dy**2).sum() / max(vx * vy, 1e-9))
    return skew, cross


def classify_shape(weights: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> str:
    skew, cross = shape_features(weights, ys, xs)
    if skew < -0.25:
        return "triangle"
    return "square" if cross > 0.84 else "circle"


def unmix(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background (median of the border), and per pixel and palette colour: the mixing weight alpha of
    `background + alpha * (colour - background)` and the distance of the pixel from that line."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    directions = PALETTE - background  # (6, 3)
    offsets = pixels - background  # (H, W, 3)
    lengths = (directions**2).sum(axis=1)
    projections = offsets @ directions.T  # (H, W, 6)
    alpha = np.clip(projections / lengths, 0.0, 1.0)
    # |o - a d|^2 expanded, so no (H, W, 6, 3) array is built
    squared = (offsets**2).sum(axis=-1, keepdims=True) - 2 * alpha * projections + alpha**2 * lengths
    return background, alpha, np.sqrt(np.clip(squared, 0.0, None))


def noise_sigma(pixels: np.ndarray) -> float:
    """Noise std from the median absolute Laplacian response (edges are a minority of pixels)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    grey = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    response = ndimage.convolve(grey, kernel, mode="reflect")[1:-1, 1:-1]
    # std of the response is 6 sigma for white noise; the channel mean divides sigma by sqrt(3).
    return float(1.4826 * np.median(np.abs(response)) / 6.0 * math.sqrt(3.0))


def observe(image: Image.Image | np.ndarray) -> Observation:
    """Perceive the picture: background, objects (colour, shape, size, place) and stray blobs."""
    pixels = to_array(image)
    height, width = pixels.shape[:2]
    if noise_sigma(pixels) > 4.0:  # speckle would break regions apart; a median keeps edges
        pixels = ndimage.median_filter(pixels, size=(3, 3, 1))
    background_rgb, alpha, residual = unmix(pixels)
    best = residual.argmin(axis=-1)
    membership = np.take_along_axis(alpha, best[..., None], axis=-1)[..., 0]
    membership[np.take_along_axis(residual, best[..., None], axis=-1)[..., 0] > 90.0] = 0.0
    canvas = float(height * width)
    objects, strays = [], 0
    eight = np.ones((3, 3), dtype=bool)
    for index, colour in enumerate(COLOUR_NAMES):
        soft = np.where(best == index, membership, 0.0)
        labels, count = ndimage.label(soft >= 0.5, structure=eight)
        for label in range(1, count + 1):
            core = labels == label
            region = ndimage.binary_dilation(core, structure=eight)  # the anti-aliased rim belongs to it
            area = float(soft[region].sum()) / canvas
            if area < STRAY_MIN_AREA:
                continue
            if area < OBJECT_MIN_AREA:
                strays += 1
                continue
            ys, xs = np.nonzero(region)
            weights = soft[ys, xs]
            cx = float((xs * weights).sum() / weights.sum() + 0.5) / width
            cy = float((ys * weights).sum() / weights.sum() + 0.5) / height
            shape = classify_shape(weights, ys.astype(np.float64), xs.astype(np.float64))
            radius = math.sqrt(area / SHAPE_AREA_FACTOR[shape])
            cys, cxs = np.nonzero(core)
            box = (cxs.min() / width, cys.min() / height, (cxs.max() + 1) / width, (cys.max() + 1) / height)
            size = "small" if radius < SIZE_SPLIT else "large"
            objects.append(SeenObject(colour, shape, size, cx, cy, area, box))
    objects.sort(key=lambda o: -o.area)
    return Observation(nearest_background(background_rgb), tuple(background_rgb.tolist()), tuple(objects), strays)


def observation_of_scene(scene: Scene, strays: int = 0) -> Observation:
    """The ground-truth observation of a rendered scene (what a perfect eye would see)."""
    from t2i_guidance.world.render import shape_polygon

    objects = []
    for obj in scene.objects:
        polygon = shape_polygon(obj, 1)
        r = obj.radius
        if polygon is None:
            box = (obj.cx - r, obj.cy - r, obj.cx + r, obj.cy + r)
        else:
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            box = (min(xs), min(ys), max(xs), max(ys))
        area = SHAPE_AREA_FACTOR[obj.shape] * r * r
        cy = obj.cy + (0.2 * r if obj.shape == "triangle" else 0.0)  # a triangle's centroid is below its centre
        objects.append(SeenObject(obj.colour, obj.shape, obj.size, obj.cx, cy, area, box))
    rgb = BACKGROUNDS[scene.background]
    return Observation(scene.background, tuple(float(v) for v in rgb), tuple(objects), strays)

"""The embedded world's oracles: independent judges that read pixels only, never generation metadata.

Perception (`observe`): the background is the median colour of the border; every other pixel is unmixed
as `background + alpha * (palette colour - background)` for each of the world's six object colours and
given to the colour that explains it best, so anti-aliased and blurred edges keep their colour instead
of looking like a third one. Connected regions of one colour are objects (at least 1.1 % of the canvas)
or stray blobs (0.25 % to 1.1 %). Shape comes from geometry (central moments, robust to blur and low
resolution): a triangle's mass sits low, a square's x and y extents are independent; size from the
area; position from the centroid. Everything works at the image's own size (32 to 112 pixels tested).

Alignment: the prompt is parsed by the world's grammar and split into elements — per object: its colour
is present, its shape, its size when the prompt names one; then the position or relation, the background
when named, and "nothing else" (no extra object; an empty picture does not earn it). Score = 5 x the
fraction of elements met; the unmet ones are returned as sentences. Prompts of the extended grammar
(counts, objects without colour, "and"; see captions.parse_extended_prompt) are judged by
`judge_extended_alignment`: per object group, exactly the count (or at least one for "a"), then the same
position / relation / background / nothing-else elements.

Technical: three no-reference degradation estimates, each expressed as an equivalent degradation level
0..5 of the renderer's own scale (render.BLUR_SIGMA, NOISE_STD, and a residual table measured at the
levels of render.JPEG_QUALITY): blur from how much the
gradient energy survives a further known blur, noise from the median Laplacian response (flat regions
dominate), JPEG from how far pixels stray from the background-to-palette mixing lines per unit of edge.
Penalty = the worst level + a quarter of the others; score = 5 - 5 tanh(penalty / 5), about 5 - penalty
for mild damage and never flat at 0, so even strong degradations stay ranked.

Aesthetic: a declared rule set, applied to the perceived layout (`composition_score`; the IQA exporter
applies the very same function to the ground-truth layout of what it rendered). Score = 5 - penalties:
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
from scipy import ndimage

from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, ScoreTable, validate_dimensions
from t2i_guidance.world.captions import (
    POSITION_WORDS,
    RELATION_WORDS,
    PromptParseError,
    PromptSpec,
    parse_prompt,
)
from t2i_guidance.world.render import BLUR_SIGMA, NOISE_STD
from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, SIZES, Scene

COLOUR_NAMES = tuple(COLOURS)
PALETTE = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float32)
OBJECT_MIN_AREA = 0.011  # fraction of the canvas; the smallest object (a small triangle) covers ~0.023
STRAY_MIN_AREA = 0.0025  # smaller regions are ignored as speckle
SHAPE_AREA_FACTOR = {"circle": math.pi, "square": (2 * 0.85) ** 2, "triangle": 2.1 * 1.8 / 2}  # area / r^2
SIZE_SPLIT = math.sqrt(SIZES["small"] * SIZES["large"])  # radius between small and large


# ---------------------------------------------------------------- perception


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


def observe(image: Image.Image | np.ndarray) -> Observation:
    """Perceive the picture: background, objects (colour, shape, size, place) and stray blobs."""
    pixels = to_array(image)
    height, width = pixels.shape[:2]
    if _noise_sigma(pixels) > 4.0:  # speckle would break regions apart; a median keeps edges
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


# ---------------------------------------------------------------- alignment


@dataclass
class AlignmentResult:
    score: float
    met: list[str]
    unmet: list[str]
    seen: list[str]


POSITION_CHECKS = {
    "left": lambda x, y: x < 0.4 and abs(y - 0.5) < 0.25,
    "right": lambda x, y: x > 0.6 and abs(y - 0.5) < 0.25,
    "top": lambda x, y: y < 0.4 and abs(x - 0.5) < 0.25,
    "bottom": lambda x, y: y > 0.6 and abs(x - 0.5) < 0.25,
    "center": lambda x, y: abs(x - 0.5) < 0.12 and abs(y - 0.5) < 0.12,
}


def relation_holds(relation: str, first: SeenObject, second: SeenObject) -> bool:
    """`first <relation> second`, read from centroids: the main axis must dominate the other one."""
    dx, dy = second.cx - first.cx, second.cy - first.cy
    main, cross = {"left_of": (dx, dy), "right_of": (-dx, dy), "above": (dy, dx), "below": (-dy, dx)}[relation]
    return main > 0.08 and main > abs(cross)


def _pick(request, objects: Sequence[SeenObject]) -> SeenObject | None:
    """The seen object that best answers a request: its colour, then its shape, then its size."""
    same_colour = [o for o in objects if o.colour == request.colour]
    if not same_colour:
        return None
    return max(same_colour, key=lambda o: (o.shape == request.shape, request.size in (None, o.size), o.area))


def judge_placement(spec: PromptSpec, picked: Sequence[SeenObject | None]) -> tuple[bool, str] | None:
    """Whether the prompt's relation (or single object's position) holds for the objects picked for its
    requests, with the sentence that says so; None when the prompt asks for neither."""
    if spec.relation is not None:
        first, second = picked[0], picked[1]
        words = RELATION_WORDS[spec.relation][0]
        a, b = spec.objects[0].phrase(), spec.objects[1].phrase()
        if first is None or second is None:
            return False, f"the {a} cannot be {words} the {b}: an object is missing"
        if relation_holds(spec.relation, first, second):
            return True, f"the {a} is {words} the {b}"
        return False, f"the prompt asks for the {a} {words} the {b} but it is not"
    if spec.position is not None:
        found, words, a = picked[0], POSITION_WORDS[spec.position][0], spec.objects[0].phrase()
        if found is None:
            return False, f"the {a} cannot be {words}: it is missing"
        if POSITION_CHECKS[spec.position](found.cx, found.cy):
            return True, f"the {a} is {words}"
        return False, f"the prompt asks for the {a} {words} but it is {position_phrase(found.cx, found.cy)}"
    return None


def judge_alignment(spec: PromptSpec, seen: Observation) -> tuple[list[str], list[str]]:
    """(met, unmet) elements of the prompt against what is seen, as sentences."""
    if spec.is_extended:
        return judge_extended_alignment(spec, seen)
    met, unmet = [], []

    def check(ok: bool, yes: str, no: str) -> None:
        (met if ok else unmet).append(yes if ok else no)

    picked = []
    for request in spec.objects:
        found = _pick(request, seen.objects)
        picked.append(found)
        wanted = request.phrase()
        if found is None:
            others = [o.describe() for o in seen.objects if o.shape == request.shape]
            hint = f" (seen instead: {others[0]})" if others else ""
            unmet.append(f"the prompt asks for a {wanted} but no {request.colour} object is visible{hint}")
            unmet.append(f"no {request.colour} {request.shape} is visible")
            if request.size:
                unmet.append(f"no {request.size} {request.colour} object is visible")
            continue
        met.append(f"a {request.colour} object is visible")
        check(found.shape == request.shape, f"the {request.colour} object is a {request.shape}",
              f"the prompt asks for a {request.colour} {request.shape} but the {request.colour} object is a "
              f"{found.shape}")
        if request.size:
            check(found.size == request.size, f"the {request.colour} {found.shape} is {request.size}",
                  f"the prompt asks for a {request.size} {request.colour} {request.shape} but it is {found.size}")
    placement = judge_placement(spec, picked)
    if placement is not None:
        (met if placement[0] else unmet).append(placement[1])
    if spec.background is not None:
        check(seen.background == spec.background, f"the background is {spec.background}",
              f"the prompt asks for a {spec.background} background but it is {seen.background}")
    extra = [o for o in seen.objects if o not in picked]
    if extra:
        unmet.append("there is an object the prompt does not ask for: " + ", ".join(o.describe() for o in extra))
    elif all(found is None for found in picked):  # an empty picture earns nothing for being empty
        unmet.append("the picture shows none of the requested objects")
    else:
        met.append("nothing else is in the picture")
    return met, unmet


def request_matches(request, seen: SeenObject) -> bool:
    """The seen object is of the requested kind: its shape, and its colour and size where named."""
    return seen.shape == request.shape and request.colour in (None, seen.colour) and request.size in (None, seen.size)


def judge_extended_alignment(spec: PromptSpec, seen: Observation) -> tuple[list[str], list[str]]:
    """(met, unmet) for the extended grammar: per object group, the number of objects of its kind (exactly
    the count for "two red circles", at least one for "a circle"); then the position or relation, the
    background when named, and nothing else in the picture."""
    met, unmet = [], []
    picked: list[SeenObject] = []  # every seen object that answers some group
    firsts: list[SeenObject | None] = []
    for request in spec.objects:
        found = [o for o in seen.objects if request_matches(request, o) and o not in picked]
        wanted = request.counted_phrase()
        if request.count > 1:
            ok = len(found) == request.count
            (met if ok else unmet).append(
                f"{wanted} are visible" if ok else f"the prompt asks for {wanted} but {len(found)} are visible"
            )
            picked.extend(found)
        elif found:
            met.append(f"{wanted} is visible")
            picked.append(found[0])  # objects are sorted by area: the largest answers
        else:
            others = [o.describe() for o in seen.objects if o.shape == request.shape]
            hint = f" (seen instead: {others[0]})" if others else ""
            unmet.append(f"the prompt asks for {wanted} but none is visible{hint}")
        firsts.append(found[0] if found else None)
    placement = judge_placement(spec, firsts)
    if placement is not None:
        (met if placement[0] else unmet).append(placement[1])
    if spec.background is not None:
        if seen.background == spec.background:
            met.append(f"the background is {spec.background}")
        else:
            unmet.append(f"the prompt asks for a {spec.background} background but it is {seen.background}")
    extra = [o for o in seen.objects if o not in picked]
    if extra:
        unmet.append("there is an object the prompt does not ask for: " + ", ".join(o.describe() for o in extra))
    elif not picked:
        unmet.append("the picture shows none of the requested objects")
    else:
        met.append("nothing else is in the picture")
    return met, unmet


def alignment_score(image: Image.Image | np.ndarray, prompt: str) -> AlignmentResult:
    """5 x the fraction of the prompt's elements met; raises PromptParseError outside the grammar."""
    spec = parse_prompt(prompt)
    seen = observe(image)
    met, unmet = judge_alignment(spec, seen)
    return AlignmentResult(5.0 * len(met) / (len(met) + len(unmet)), met, unmet, seen.describe())


# ---------------------------------------------------------------- technical


@dataclass
class TechnicalResult:
    score: float
    levels: dict[str, float]  # equivalent degradation level 0..5 per kind
    issues: list[str]


BLUR_PROBE_SIGMA = 1.5  # pixels of a 32-pixel canvas
SHARP_BASE_PIXELS = 0.3  # the edge softness of a clean (anti-aliased) render, in its own pixels
# Median compression residual (see _compression_residual) of the renderer's JPEG levels 0..5, measured on
# rendered scenes at 32 and 112 pixels.
JPEG_RESIDUAL = (0.03, 2.4, 2.75, 3.1, 3.65, 4.5)


def _noise_sigma(pixels: np.ndarray) -> float:
    """Noise std from the median absolute Laplacian response (edges are a minority of pixels)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    grey = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    response = ndimage.convolve(grey, kernel, mode="reflect")[1:-1, 1:-1]
    # std of the response is 6 sigma for white noise; the channel mean divides sigma by sqrt(3).
    return float(1.4826 * np.median(np.abs(response)) / 6.0 * math.sqrt(3.0))


def _gradient_energy(pixels: np.ndarray) -> float:
    # Summed over colour channels: a purple object on grey has almost no contrast in the channel mean.
    return float((np.diff(pixels, axis=0) ** 2).sum() + (np.diff(pixels, axis=1) ** 2).sum())


def _blur_sigma(pixels: np.ndarray) -> float:
    """Edge blur in pixels of a 32-pixel canvas: a step blurred by s keeps s/sqrt(s^2+p^2) of its energy
    under a further blur p, so the surviving fraction gives s regardless of contrast and edge length."""
    scale = pixels.shape[0] / 32.0
    energy = _gradient_energy(pixels)
    if energy < 1e-6:
        return 0.0
    probe = BLUR_PROBE_SIGMA * scale
    reblurred = ndimage.gaussian_filter(pixels, (probe, probe, 0), mode="nearest")
    kept = min(_gradient_energy(reblurred) / energy, 0.999)
    return probe * kept / math.sqrt(1 - kept**2) / scale


def _compression_residual(pixels: np.ndarray) -> float:
    """How far pixels stray from the background-to-palette mixing lines, per unit of edge.

    A clean or blurred render only mixes the background with one palette colour (on the line); JPEG's
    quantisation and chroma subsampling ring off it near edges, so the residual energy is divided by
    the total edge contrast to not depend on how many objects or edges the picture has.
    """
    residual = unmix(pixels)[2].min(axis=-1)
    edges = np.linalg.norm(np.diff(pixels, axis=0), axis=-1).sum() + np.linalg.norm(np.diff(pixels, axis=1), axis=-1).sum()
    return float(math.sqrt((residual**2).sum() / max(edges, 1.0)))


def degradation_levels(image: Image.Image | np.ndarray) -> dict[str, float]:
    """Equivalent degradation level 0..5 for blur, noise and jpeg (0 = not seen)."""
    pixels = to_array(image)
    sigma, base = _blur_sigma(pixels), SHARP_BASE_PIXELS * 32.0 / pixels.shape[0]
    blur_only = math.sqrt(max(sigma**2 - base**2, 0.0))
    return {
        "blur": float(np.interp(blur_only, BLUR_SIGMA, range(6))),
        "noise": float(np.interp(_noise_sigma(pixels), NOISE_STD, range(6))),
        "jpeg": float(np.interp(_compression_residual(pixels), JPEG_RESIDUAL, range(6))),
    }


ISSUE_WORDS = {
    "blur": ("the edges are slightly soft", "the edges are blurred", "the whole image is heavily blurred"),
    "noise": ("there is slight grain", "the image is noisy", "the image is covered in heavy noise"),
    "jpeg": ("there are faint compression blocks", "there are compression artefacts",
             "strong blocky compression artefacts"),
}


def technical_score(image: Image.Image | np.ndarray) -> TechnicalResult:
    levels = degradation_levels(image)
    ordered = sorted(levels.values(), reverse=True)
    penalty = ordered[0] + 0.25 * (ordered[1] + ordered[2])
    score = 5.0 - 5.0 * math.tanh(penalty / 5.0)  # ~linear for mild damage, never saturates at 0
    issues = []
    for kind, level in levels.items():
        if kind == "jpeg" and levels["noise"] >= level:  # noise also leaves the mixing lines
            continue
        if level >= 0.75:
            words = ISSUE_WORDS[kind]
            issues.append(words[0] if level < 2 else words[1] if level < 3.5 else words[2])
    return TechnicalResult(score, levels, issues)


# ---------------------------------------------------------------- aesthetic


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


# ---------------------------------------------------------------- scorer


class OracleScorer:
    """The oracles as a registered scorer (`build_scorer("oracle")`): fast, exact, pixel-only."""

    name = "oracle"

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        dimensions = validate_dimensions(dimensions)
        spec, spec_error = None, None
        if "alignment" in dimensions:
            try:
                spec = parse_prompt(prompt) if prompt else None
                spec_error = None if prompt else "alignment needs the generation prompt"
            except PromptParseError as error:
                spec_error = f"the oracle cannot judge this prompt: {error}"
        table: ScoreTable = {}
        for item in items:
            try:
                table[item.id] = self._score_one(item.image, spec, spec_error, dimensions)
            except Exception as error:  # a broken image fails alone, with its reason
                table[item.id] = {d: DimensionScore.failure(d, ScoreStatus.ERROR, repr(error)) for d in dimensions}
        return table

    def _score_one(self, image, spec, spec_error, dimensions) -> dict[str, DimensionScore]:
        pixels = to_array(image)
        seen = observe(pixels)
        results = {}
        for dimension in dimensions:
            if dimension == "technical":
                result = technical_score(pixels)
                levels = ", ".join(f"{k} {v:.1f}" for k, v in result.levels.items())
                text = f"Degradation levels: {levels}. " + ("; ".join(result.issues) or "clean and sharp") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, result.score, text)
            elif dimension == "aesthetic":
                result = composition_score(seen)
                text = "Seen: " + "; ".join(seen.describe()) + ". " + (
                    "; ".join(result.issues) or "balanced, clear margins, good colours, no clutter") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, result.score, text)
            elif spec is None:
                results[dimension] = DimensionScore.failure(dimension, ScoreStatus.ERROR, spec_error)
            else:
                met, unmet = judge_alignment(spec, seen)
                value = 5.0 * len(met) / (len(met) + len(unmet))
                text = "Seen: " + "; ".join(seen.describe()) + ". " + (
                    "Unmet: " + "; ".join(unmet) if unmet else "Every element of the prompt is met") + "."
                results[dimension] = DimensionScore(dimension, ScoreStatus.OK, value, text)
        return results


__all__ = [
    "AestheticResult", "AlignmentResult", "Observation", "OracleScorer", "SeenObject", "TechnicalResult",
    "aesthetic_score", "alignment_score", "colour_difference", "composition_score", "degradation_levels",
    "judge_alignment", "judge_extended_alignment", "observation_of_scene", "request_matches", "observe", "technical_score",
]


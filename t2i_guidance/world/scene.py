"""Scene specifications and their deterministic sampling from a seed.

Coordinates are fractions of the canvas (0..1, y grows downwards), so one scene renders at any size.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, replace

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (150, 50, 190),
    "orange": (245, 130, 20),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
}
SIZES: dict[str, float] = {"small": 0.11, "large": 0.18}  # radius as a fraction of the canvas side
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")
RELATIONS: tuple[str, ...] = ("left_of", "right_of", "above", "below")
INVERSE_RELATION = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}
QUALITIES: tuple[str, ...] = ("clean", "blurry", "noisy")

# Where a lone object's centre may fall for each absolute position (x range, y range).
_POSITION_BOXES = {
    "left": ((0.2, 0.32), (0.3, 0.7)),
    "right": ((0.68, 0.8), (0.3, 0.7)),
    "top": ((0.3, 0.7), (0.2, 0.32)),
    "bottom": ((0.3, 0.7), (0.68, 0.8)),
    "center": ((0.44, 0.56), (0.44, 0.56)),
}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    cx: float
    cy: float

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    def phrase(self, with_size: bool = False) -> str:
        words = ([self.size] if with_size else []) + [self.colour, self.shape]
        return " ".join(words)


@dataclass(frozen=True)
class Scene:
    """One or two objects on a background; one object has an absolute position, two have a relation.

    For two objects, `relation` reads "objects[0] <relation> objects[1]".
    """

    objects: tuple[SceneObject, ...]
    background: str
    position: str | None = None
    relation: str | None = None
    quality: str = "clean"
    quality_level: int = 0  # 0..5, the strength of the degradation named by `quality`

    def content_key(self) -> str:
        """What a caption can say about the scene, independent of phrasing, order and exact placement."""
        if self.relation is None and self.position is None:  # a counting scene (sample_count_scene)
            kinds = sorted(f"{o.size} {o.colour} {o.shape}" for o in self.objects)
            return f"{' + '.join(kinds)} | {self.background}"
        if self.relation is None:
            obj = self.objects[0]
            return f"{obj.size} {obj.colour} {obj.shape} {self.position} | {self.background}"
        first, second, relation = self.objects[0], self.objects[1], self.relation
        if relation in ("right_of", "below"):  # one canonical direction per axis
            first, second, relation = second, first, INVERSE_RELATION[relation]
        return (
            f"{first.size} {first.colour} {first.shape} {relation} "
            f"{second.size} {second.colour} {second.shape} | {self.background}"
        )


HELD_OUT_MODULUS = 8  # one content key in eight never appears in training


FRESH_MODULUS = 8  # one held-out content key in eight is fresh: kept for the final report alone


def is_held_out(scene: Scene) -> bool:
    """Deterministic split of scene contents: held-out contents are never rendered for training."""
    return zlib.crc32(scene.content_key().encode()) % HELD_OUT_MODULUS == 0


def is_fresh(scene: Scene) -> bool:
    """Held-out contents that no training, selection or ship rule reads: `sample_split_scene` never
    returns them, so only the fresh prompt set (world/fresh_prompts.py) and the reports on it see them."""
    return is_held_out(scene) and zlib.crc32(f"fresh|{scene.content_key()}".encode()) % FRESH_MODULUS == 0


def _place_single(rng: random.Random, position: str) -> tuple[float, float]:
    (x0, x1), (y0, y1) = _POSITION_BOXES[position]
    return rng.uniform(x0, x1), rng.uniform(y0, y1)


def _place_pair(rng: random.Random, relation: str, r0: float, r1: float) -> tuple[tuple, tuple]:
    """Centres for two objects so that the first stands in `relation` to the second, without overlap."""
    gap = r0 + r1 + rng.uniform(0.05, 0.12)
    along = rng.uniform(-0.08, 0.08)  # small drift on the other axis
    mid_main, mid_cross = rng.uniform(0.45, 0.55), rng.uniform(0.38, 0.62)
    first_main, second_main = mid_main - gap / 2, mid_main + gap / 2
    if relation in ("right_of", "below"):
        first_main, second_main = second_main, first_main
    first_cross, second_cross = mid_cross + along / 2, mid_cross - along / 2
    if relation in ("left_of", "right_of"):
        return (first_main, first_cross), (second_main, second_cross)
    return (first_cross, first_main), (second_cross, second_main)


def sample_scene(seed: int, quality_mix: dict[str, float] | None = None) -> Scene:
    """The scene for `seed`: same seed, same scene, on every machine.

    `quality_mix` gives the probability of each quality ("clean", "blurry", "noisy"); degraded scenes get
    a degradation level of 2..4.
    """
    rng = random.Random(seed)
    background = rng.choice(list(BACKGROUNDS))
    quality_mix = quality_mix or {"clean": 1.0}
    quality = rng.choices(list(quality_mix), weights=list(quality_mix.values()))[0]
    level = 0 if quality == "clean" else rng.randint(2, 4)
    colours = rng.sample(list(COLOURS), 2)
    if rng.random() < 0.35:
        size = rng.choice(list(SIZES))
        position = rng.choice(POSITIONS)
        cx, cy = _place_single(rng, position)
        obj = SceneObject(rng.choice(SHAPES), colours[0], size, cx, cy)
        return Scene((obj,), background, position=position, quality=quality, quality_level=level)
    sizes = [rng.choice(list(SIZES)) for _ in range(2)]
    shapes = [rng.choice(SHAPES) for _ in range(2)]
    relation = rng.choice(RELATIONS)
    (c0, c1) = _place_pair(rng, relation, SIZES[sizes[0]], SIZES[sizes[1]])
    objects = (
        SceneObject(shapes[0], colours[0], sizes[0], *c0),
        SceneObject(shapes[1], colours[1], sizes[1], *c1),
    )
    return Scene(objects, background, relation=relation, quality=quality, quality_level=level)


def sample_split_scene(seed: int, held_out: bool, quality_mix: dict[str, float] | None = None) -> Scene:
    """The first scene from seed, seed+1_000_003, ... that falls on the requested side of the split
    (never a fresh one: those are for `sample_fresh_scene` alone)."""
    return _first_scene(seed, quality_mix, lambda scene: is_held_out(scene) == held_out and not is_fresh(scene))


def sample_fresh_scene(seed: int) -> Scene:
    """The first fresh scene from seed, seed+1_000_003, ... (see `is_fresh`)."""
    return _first_scene(seed, None, is_fresh)


def _first_scene(seed: int, quality_mix: dict[str, float] | None, wanted) -> Scene:
    probe = seed
    while True:
        scene = sample_scene(probe, quality_mix)
        if wanted(scene):
            return scene
        probe += 1_000_003


def with_quality(scene: Scene, quality: str, level: int) -> Scene:
    return replace(scene, quality=quality, quality_level=level)


COUNTS: tuple[int, ...] = (2, 3, 4)  # the extended grammar's counts ("two red circles")
_COUNT_CELLS = [(0.28, 0.28), (0.72, 0.28), (0.28, 0.72), (0.72, 0.72)]


def sample_count_scene(
    seed: int,
    count: int,
    shape: str | None = None,
    colour: str | None = None,
    size: str | None = None,
    background: str | None = None,
) -> Scene:
    """`count` objects of one kind, apart from each other and from the border; what is not given is drawn
    from `seed` (one colour, shape and size for all, as "three small red squares" asks)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random(seed)
    background = background or rng.choice(list(BACKGROUNDS))
    shape = shape or rng.choice(SHAPES)
    colour = colour or rng.choice(list(COLOURS))
    size = size or rng.choice(list(SIZES))
    if count > len(_COUNT_CELLS):
        raise ValueError(f"at most {len(_COUNT_CELLS)} objects fit on the canvas, asked for {count}")
    r = SIZES[size]
    # One object per cell of a 2x2 grid, jittered as far as keeps objects 0.06 apart and off the border.
    jitter = min(0.08, (0.44 - 2 * r - 0.06) / 2, 0.28 - r - 0.06)
    cells = rng.sample(_COUNT_CELLS, count)
    objects = tuple(
        SceneObject(shape, colour, size, x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter))
        for x, y in cells
    )
    return Scene(objects, background)

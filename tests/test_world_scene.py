"""The world's scenes: deterministic from a seed, a fixed held-out split, rendering at any size."""

import numpy as np
import pytest

from t2i_guidance.world.render import DEGRADATIONS, degrade, render_clean, render_scene
from t2i_guidance.world.scene import (
    HELD_OUT_MODULUS,
    is_held_out,
    sample_scene,
    sample_split_scene,
    with_quality,
)

MIX = {"clean": 0.5, "blurry": 0.25, "noisy": 0.25}


def test_same_seed_same_scene_and_pixels():
    for seed in range(20):
        a, b = sample_scene(seed, MIX), sample_scene(seed, MIX)
        assert a == b
        assert np.array_equal(np.asarray(render_scene(a, 32, seed)), np.asarray(render_scene(b, 32, seed)))


def test_different_seeds_give_different_scenes():
    keys = {sample_scene(seed).content_key() for seed in range(200)}
    assert len(keys) > 150


def test_split_is_fixed_and_about_one_in_eight():
    held = [is_held_out(sample_scene(seed)) for seed in range(2000)]
    assert abs(np.mean(held) - 1 / HELD_OUT_MODULUS) < 0.03
    for seed in range(50):
        assert is_held_out(sample_split_scene(seed, held_out=True))
        assert not is_held_out(sample_split_scene(seed, held_out=False))


def test_held_out_contents_never_appear_among_training_scenes():
    held_out = {sample_split_scene(s, held_out=True).content_key() for s in range(100)}
    training = {sample_split_scene(s, held_out=False).content_key() for s in range(1000)}
    assert not held_out & training


def test_objects_stay_inside_the_canvas():
    for seed in range(500):
        for obj in sample_scene(seed).objects:
            assert obj.radius <= obj.cx <= 1 - obj.radius + 0.02
            assert obj.radius <= obj.cy + 0.02 and obj.cy <= 1 - obj.radius + 0.02


@pytest.mark.parametrize("size", [32, 64, 112])
def test_render_size(size):
    assert render_clean(sample_scene(1), size).size == (size, size)


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_degradation_grows_with_level(kind):
    clean = render_clean(sample_scene(3), 64)
    base = np.asarray(clean, dtype=np.float32)
    change = [((np.asarray(degrade(clean, kind, level, seed=1), dtype=np.float32) - base) ** 2).mean()
              for level in range(6)]
    assert change[0] == 0
    if kind == "jpeg":  # compression error is not strictly monotonic in the quality setting on one image
        assert 0 < change[1] < change[3] < change[5]
    else:
        assert all(b > a for a, b in zip(change[:-1], change[1:], strict=True))


def test_degradation_is_deterministic_and_checked():
    clean = render_clean(sample_scene(4), 32)
    assert np.array_equal(np.asarray(degrade(clean, "noise", 3, seed=7)), np.asarray(degrade(clean, "noise", 3, seed=7)))
    with pytest.raises(ValueError):
        degrade(clean, "smear", 1)
    with pytest.raises(ValueError):
        degrade(clean, "blur", 6)
    scene = with_quality(sample_scene(4), "blurry", 3)
    assert not np.array_equal(np.asarray(render_scene(scene, 32)), np.asarray(clean))

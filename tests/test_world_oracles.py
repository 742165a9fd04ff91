"""The pixel-only oracles: alignment on own and altered captions, technical ranking, aesthetic rules, scorer."""

import random
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from reward_model.interface import ImageItem, Scorer, ScoreStatus
from t2i_guidance.registries import build_scorer
from t2i_guidance.world.captions import canonical_caption, caption
from t2i_guidance.world.oracles import (
    OracleScorer,
    aesthetic_score,
    alignment_score,
    composition_score,
    observation_of_scene,
    observe,
    technical_score,
)
from t2i_guidance.world.render import DEGRADATIONS, degrade, render_clean, render_scene
from t2i_guidance.world.scene import INVERSE_RELATION, Scene, SceneObject, sample_scene

MIX = {"clean": 0.7, "blurry": 0.15, "noisy": 0.15}


@pytest.mark.parametrize("size", [32, 112])
def test_rendered_scenes_meet_their_own_captions(size):
    results = []
    for seed in range(150):
        scene = sample_scene(seed, MIX)
        results.append(alignment_score(render_scene(scene, size, seed), caption(scene, random.Random(seed))).score)
    assert np.mean(np.array(results) == 5.0) >= 0.95


def test_clean_renders_are_read_exactly():
    for seed in range(100):
        scene = sample_scene(seed)
        seen = observe(render_clean(scene, 32))
        truth = observation_of_scene(scene)
        assert seen.background == scene.background
        assert sorted((o.colour, o.shape, o.size) for o in seen.objects) == sorted(
            (o.colour, o.shape, o.size) for o in truth.objects)
        assert seen.strays == 0


def pair_scene() -> Scene:
    return Scene((SceneObject("circle", "red", "large", 0.3, 0.5), SceneObject("square", "blue", "small", 0.72, 0.5)),
                 "white", relation="left_of")


@pytest.mark.parametrize("change, expected_word", [
    (lambda s: replace(s, objects=(replace(s.objects[0], colour="green"), s.objects[1])), "green"),
    (lambda s: replace(s, objects=(replace(s.objects[0], shape="triangle"), s.objects[1])), "triangle"),
    (lambda s: replace(s, objects=(s.objects[0], replace(s.objects[1], size="large"))), "large"),
    (lambda s: replace(s, relation=INVERSE_RELATION[s.relation]), "right of"),
    (lambda s: replace(s, background="black"), "black background"),
])
def test_altered_captions_lose_points_and_name_what_is_unmet(change, expected_word):
    scene = pair_scene()
    image = render_clean(scene, 64)
    assert alignment_score(image, canonical_caption(scene)).score == 5.0
    result = alignment_score(image, canonical_caption(change(scene)))
    assert result.score < 5.0
    assert any(expected_word in u for u in result.unmet), result.unmet


def test_missing_and_extra_objects_are_unmet():
    scene = pair_scene()
    alone = render_clean(replace(scene, objects=scene.objects[:1], relation=None, position="left"), 64)
    missing = alignment_score(alone, canonical_caption(scene))
    assert missing.score < 3.5 and any("no blue object" in u for u in missing.unmet)
    extra = alignment_score(render_clean(scene, 64), "a large red circle on the left on a white background")
    assert extra.score < 5.0 and any("does not ask for" in u for u in extra.unmet)


def test_wrong_position_is_unmet():
    scene = Scene((SceneObject("triangle", "yellow", "large", 0.26, 0.5),), "gray", position="left")
    image = render_clean(scene, 32)
    assert alignment_score(image, canonical_caption(scene)).score == 5.0
    result = alignment_score(image, canonical_caption(replace(scene, position="right")))
    assert result.score < 5.0 and any("on the right" in u for u in result.unmet)


@pytest.mark.parametrize("kind", DEGRADATIONS)
@pytest.mark.parametrize("size", [32, 64])
def test_technical_ranks_degradation_levels(kind, size):
    levels, scores, per_scene = [], [], []
    for seed in range(30):
        clean = render_clean(sample_scene(seed), size)
        row = [technical_score(degrade(clean, kind, level, seed=seed)).score for level in range(6)]
        levels += range(6)
        scores += row
        per_scene.append(spearmanr(range(6), row)[0])
    if size >= 64:  # at 32 pixels JPEG's 8x8 blocks cover a quarter of the picture: pooled ~0.89 there
        assert -spearmanr(levels, scores)[0] >= 0.9  # pooled over scenes
    assert -np.mean(per_scene) >= 0.9


def test_technical_names_the_issue():
    clean = render_clean(sample_scene(2), 64)
    assert technical_score(clean).score > 4.5 and technical_score(clean).issues == []
    assert any("blur" in i for i in technical_score(degrade(clean, "blur", 4)).issues)
    assert any("nois" in i for i in technical_score(degrade(clean, "noise", 4, seed=1)).issues)


def single(cx, cy, colour="red", size="large", background="white") -> Scene:
    return Scene((SceneObject("circle", colour, size, cx, cy),), background, position="center")


def test_aesthetic_prefers_a_good_composition():
    good = aesthetic_score(render_clean(single(0.5, 0.5), 64)).score
    cramped = aesthetic_score(render_clean(single(0.16, 0.5), 64))
    off_centre = aesthetic_score(render_clean(single(0.22, 0.22), 64))
    dots = (("blue", 0.2, 0.2, 0.04), ("green", 0.8, 0.8, 0.04), ("yellow", 0.8, 0.2, 0.04))
    cluttered = aesthetic_score(render_clean(single(0.5, 0.5), 64, dots))
    low_contrast = aesthetic_score(render_clean(single(0.5, 0.5, colour="green", background="gray"), 64))
    assert good == 5.0
    assert cramped.score < good and cramped.penalties["margins"] > 0
    assert off_centre.score < good and off_centre.penalties["balance"] > 0
    assert cluttered.score < good and cluttered.penalties["clutter"] == 1.5
    assert low_contrast.score < good and low_contrast.penalties["colour"] > 0
    assert aesthetic_score(Image.new("RGB", (32, 32), (245, 245, 245))).score == 0.0


def test_aesthetic_oracle_reads_the_rules_of_the_true_layout():
    rng = random.Random(0)
    truth, read = [], []
    for seed in range(60):
        scene = sample_scene(seed)
        dots = tuple(("orange", rng.uniform(0.05, 0.95), 0.06, 0.04) for _ in range(rng.randint(0, 2)))
        dots = tuple(d for i, d in enumerate(dots) if all(abs(d[1] - e[1]) > 0.15 for e in dots[:i]))
        truth.append(composition_score(observation_of_scene(scene, len(dots))).score)
        read.append(aesthetic_score(render_clean(scene, 112, dots)).score)
    assert np.mean(np.abs(np.array(truth) - np.array(read)) < 0.5) >= 0.9


def test_oracle_scorer_follows_the_protocol():
    scorer = build_scorer("oracle")
    assert isinstance(scorer, OracleScorer) and isinstance(scorer, Scorer) and scorer.name == "oracle"
    scene = sample_scene(1)
    items = [ImageItem("b", render_clean(scene, 32)), ImageItem("a", render_clean(sample_scene(2), 32))]
    table = scorer.score(items, canonical_caption(scene), ["alignment", "technical", "aesthetic"])
    assert set(table) == {"a", "b"}
    assert table["b"]["alignment"].score == 5.0 and table["a"]["alignment"].score < 5.0
    assert "Seen:" in table["b"]["alignment"].rationale
    assert "Unmet:" in table["a"]["alignment"].rationale
    assert all(r.ok and 0.0 <= r.score <= 5.0 for row in table.values() for r in row.values())


@pytest.mark.parametrize("prompt", ["a photo of a dog", None, ""])
def test_oracle_scorer_refuses_alignment_it_cannot_judge(prompt):
    table = OracleScorer().score([ImageItem("x", render_clean(sample_scene(0), 32))], prompt,
                                 ["alignment", "technical"])
    assert table["x"]["alignment"].status is ScoreStatus.ERROR
    assert table["x"]["alignment"].score is None and table["x"]["alignment"].error
    assert table["x"]["technical"].ok


def test_oracle_scorer_rejects_unknown_dimensions():
    with pytest.raises(ValueError):
        OracleScorer().score([], "a red circle in the center", ["beauty"])


def test_oracles_take_milliseconds():
    images = [render_scene(sample_scene(s, MIX), 32, s) for s in range(50)]
    scorer = OracleScorer()
    start = time.perf_counter()
    scorer.score([ImageItem(str(i), im) for i, im in enumerate(images)], "a red circle in the center",
                 ["alignment", "technical", "aesthetic"])
    assert (time.perf_counter() - start) / len(images) < 0.05

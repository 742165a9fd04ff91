"""The caption grammar: every phrasing it produces parses back to the scene's content."""

import random

import pytest

from t2i_guidance.world.captions import (
    POSITION_WORDS,
    RELATION_WORDS,
    PromptParseError,
    canonical_caption,
    caption,
    parse_prompt,
    vocabulary,
)
from t2i_guidance.world.scene import INVERSE_RELATION, sample_scene

MIX = {"clean": 0.5, "blurry": 0.25, "noisy": 0.25}


def same_content(spec, scene) -> bool:
    """The parsed request says what the scene shows (sizes only when named, either relation direction)."""
    requested = list(spec.objects)
    objects = list(scene.objects)
    if scene.relation is None:
        if spec.position != scene.position or spec.relation is not None:
            return False
    else:
        relation = scene.relation
        if requested[0].colour != objects[0].colour:
            objects, relation = objects[::-1], INVERSE_RELATION[relation]
        if spec.relation != relation:
            return False
    if len(requested) != len(objects) or spec.background != scene.background:
        return False
    return all(
        r.colour == o.colour and r.shape == o.shape and r.size in (None, o.size)
        for r, o in zip(requested, objects, strict=True)
    )


def test_every_phrasing_parses_back_to_the_same_content():
    used = set()
    for seed in range(600):
        scene = sample_scene(seed, MIX)
        for draw in range(4):
            text = caption(scene, random.Random(seed * 10 + draw))
            spec = parse_prompt(text)
            assert same_content(spec, scene), (text, spec, scene)
            used.update(p for table in (RELATION_WORDS, POSITION_WORDS) for ps in table.values() for p in ps
                        if f" {p} " in f" {text} ")
    every_phrase = {p for table in (RELATION_WORDS, POSITION_WORDS) for ps in table.values() for p in ps}
    assert every_phrase <= used  # every phrase of the grammar was produced and parsed


def test_canonical_caption_names_everything():
    for seed in range(200):
        scene = sample_scene(seed)
        spec = parse_prompt(canonical_caption(scene))
        assert same_content(spec, scene)
        assert all(r.size is not None for r in spec.objects)


def test_quality_tags_are_read():
    scene = sample_scene(5, {"noisy": 1.0})
    tagged = [caption(scene, random.Random(s)) for s in range(50)]
    assert any("noisy" in parse_prompt(t).tags for t in tagged)


def test_vocabulary_covers_every_caption_word():
    words = set(vocabulary())
    for seed in range(300):
        text = caption(sample_scene(seed, MIX), random.Random(seed))
        assert set(text.replace(",", " , ").split()) <= words


@pytest.mark.parametrize("prompt", [
    "a photo of a dog",
    "a red circle left of a blue square above a green triangle",
    "a red circle left of a red square",
    "a red circle on a white background, black background",
    "a red circle near a blue square",
])
def test_prompts_outside_the_grammar_are_refused(prompt):
    with pytest.raises(PromptParseError):
        parse_prompt(prompt)

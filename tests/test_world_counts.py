"""The extended grammar (counts, objects without colour, "and"): parsed, rendered and judged by the oracles,
while every prompt of the training grammar keeps parsing as before."""

import random

import pytest

from reward_model.interface import ImageItem
from t2i_guidance.world.captions import (
    PromptParseError,
    _parse_training_grammar,
    caption,
    count_caption,
    extended_vocabulary,
    parse_prompt,
    vocabulary,
)
from t2i_guidance.world.oracles import OracleScorer, alignment_score, observe
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import COUNTS, Scene, SceneObject, sample_count_scene, sample_scene


def test_training_grammar_prompts_parse_exactly_as_before():
    for seed in range(300):
        text = caption(sample_scene(seed, {"clean": 0.5, "noisy": 0.5}), random.Random(seed))
        spec = parse_prompt(text)
        assert spec == _parse_training_grammar(text)
        assert not spec.is_extended


@pytest.mark.parametrize("prompt, count, colour, size, shape", [
    ("two red circles", 2, "red", None, "circle"),
    ("three small squares on a white background", 3, None, "small", "square"),
    ("four big blue triangles", 4, "blue", "large", "triangle"),
    ("a circle", 1, None, None, "circle"),
])
def test_counted_groups_parse(prompt, count, colour, size, shape):
    (request,) = parse_prompt(prompt).objects
    assert (request.count, request.colour, request.size, request.shape) == (count, colour, size, shape)


def test_and_and_colourless_relations_parse():
    spec = parse_prompt("a circle and a red square on a gray background")
    assert spec.relation is None and spec.background == "gray" and len(spec.objects) == 2
    assert parse_prompt("a circle above a square").relation == "above"


@pytest.mark.parametrize("prompt", [
    "two red circle",                       # number and noun disagree
    "three squares on the left",            # a position for several objects
    "a circle and a circle",                # two groups that cannot be told apart
    "a red circle and a red square",        # same colour, as in the training grammar
    "a circle near a square",
    "a circle and a square and a triangle",
])
def test_extended_prompts_outside_the_grammar_are_refused(prompt):
    with pytest.raises(PromptParseError):
        parse_prompt(prompt)


def test_the_generator_vocabulary_is_unchanged_and_extension_words_are_listed_apart():
    assert "two" not in vocabulary() and "circles" not in vocabulary()
    assert {"two", "three", "four", "circles"} <= set(extended_vocabulary())


@pytest.mark.parametrize("count", COUNTS)
def test_rendered_counts_are_counted_by_the_oracle(count):
    for seed in range(20):
        scene = sample_count_scene(seed, count)
        image = render_scene(scene, 32)
        first = scene.objects[0]
        assert len(scene.objects) == count
        assert len(observe(image).objects) == count
        prompt = count_caption(first.shape, count, first.colour, first.size, scene.background)
        assert alignment_score(image, prompt).score == 5.0, prompt
        wrong = count_caption(first.shape, count % 4 + 1 if count < 4 else 2, first.colour)
        result = alignment_score(image, wrong)
        assert result.score < 5.0 and any("are visible" in u or "does not ask" in u for u in result.unmet)


def test_a_missing_object_is_named_with_its_reason():
    scene = Scene((SceneObject("circle", "red", "large", 0.3, 0.5),), "white", position="left")
    image = render_scene(scene, 32)
    result = alignment_score(image, "a circle and a square")
    assert "a circle is visible" in result.met
    assert any("a square but none is visible" in u for u in result.unmet)
    table = OracleScorer().score([ImageItem("x", image)], "three red circles", ["alignment"])
    assert table["x"]["alignment"].ok and "1 are visible" in table["x"]["alignment"].rationale

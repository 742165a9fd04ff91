"""The rationale claim checker on hand-written true and false sentences, against rendered truth."""

from __future__ import annotations

import pytest

from t2i_guidance.world.captions import parse_prompt
from t2i_guidance.world.claims import check_rationale, part_is_asked, restatement_is_true, sentences
from t2i_guidance.world.oracles import degradation_levels, observe
from t2i_guidance.world.render import degrade, render_clean
from t2i_guidance.world.scene import Scene, SceneObject

# A large red circle on the left of a gray picture, measured by the oracle, not assumed.
SINGLE = Scene((SceneObject("circle", "red", "large", 0.26, 0.5),), "gray", position="left")
PAIR = Scene(
    (SceneObject("triangle", "yellow", "small", 0.5, 0.25), SceneObject("square", "blue", "large", 0.5, 0.7)),
    "white",
    relation="above",
)


@pytest.fixture(scope="module")
def single():
    image = render_clean(SINGLE, 64)
    return observe(image), degradation_levels(image)


@pytest.fixture(scope="module")
def pair():
    return observe(render_clean(PAIR, 64))


def test_the_oracle_sees_the_test_scenes(single, pair):
    seen, _ = single
    assert [(o.colour, o.shape, o.size) for o in seen.objects] == [("red", "circle", "large")]
    assert {(o.colour, o.shape) for o in pair.objects} == {("yellow", "triangle"), ("blue", "square")}


def _truth(rationale, seen, levels=None, prompt=None):
    check = check_rationale(rationale, seen, levels, prompt)
    return [(c.kind, c.true) for c in check.claims], check


def test_object_claims_true_and_false(single):
    seen, _ = single
    claims, check = _truth(
        "<think> I see a large red circle on the left. I see a small red circle on the left. "
        "I see a red circle at the left. I see a large blue circle on the left. "
        "I see a large red square on the right. </think><answer> 3.00 </answer>",
        seen,
    )
    assert claims == [("object", True), ("object", False), ("object", True), ("object", False), ("object", False)]
    small, blue, square = check.claims[1], check.claims[3], check.claims[4]
    assert small.attributes == {"colour": True, "shape": True, "size": False, "position": True}
    assert blue.attributes["colour"] is False
    assert square.attributes == {"colour": True, "shape": False, "size": True, "position": False}
    assert check.seen_objects == 1 and check.named_objects == 1
    assert check.unparsed == [] and check.other == []


def test_older_form_without_size_and_synonyms(single):
    seen, _ = single
    claims, _ = _truth("I see a big red circle in the middle. I see a red circle.", seen)
    assert claims == [("object", False), ("object", True)]


def test_absence_claims(single):
    seen, _ = single
    claims, _ = _truth(
        "No blue object is visible. No red object is visible. No red square is visible. "
        "No small red object is visible. No large red circle is visible. No purple thing is visible.",
        seen,
    )
    assert claims == [("absent", True), ("absent", False), ("absent", True), ("absent", True), ("absent", False)]


def test_background_strays_and_empty(single):
    seen, _ = single
    claims, _ = _truth(
        "I see a gray background. I see a grey background. I see a white background. "
        "I see 2 small stray blobs. I see no small stray blob. I see no clear object.",
        seen,
    )
    assert claims == [
        ("background", True), ("background", True), ("background", False),
        ("strays", False), ("strays", True), ("no_object", False),
    ]


def test_degradation_claims_within_one_level(single):
    seen, levels = single
    assert max(levels.values()) < 1.0  # a clean render
    claims, check = _truth("Blur level 0, noise level 1, compression level 3.", seen, levels)
    assert claims == [("degradation", True), ("degradation", True), ("degradation", False)]
    assert [c.subject for c in check.claims] == ["blur", "noise", "jpeg"]
    blurred = degrade(render_clean(SINGLE, 64), "blur", 4)
    claims, _ = _truth("Blur level 0, noise level 0, compression level 0.", observe(blurred),
                       degradation_levels(blurred))
    assert claims[0] == ("degradation", False)


def test_degradation_claim_without_levels_is_a_parse_failure(single):
    seen, _ = single
    check = check_rationale("Blur level 0, noise level 0, compression level 0.", seen)
    assert check.claims == [] and len(check.unparsed) == 1


def test_restatements():
    wanted = parse_prompt("a small yellow triangle above a large blue square on a white background")
    true = ["a small yellow triangle above a large blue square on a white background",
            "a large blue square below a tiny yellow triangle on a white background",
            "a small yellow triangle over a big blue square on a white background"]
    false = ["a yellow triangle above a blue square on a white background",  # sizes dropped
             "a small yellow triangle below a large blue square on a white background",
             "a small yellow circle above a large blue square on a white background",
             "a small yellow triangle above a large blue square on a black background",
             "a small yellow triangle above a large blue square",
             "a small yellow triangle at the top on a white background"]
    assert all(restatement_is_true(parse_prompt(p), wanted) for p in true)
    assert not any(restatement_is_true(parse_prompt(p), wanted) for p in false)
    sizeless = parse_prompt("a red circle on the left")
    assert restatement_is_true(parse_prompt("a large red circle on the left"), sizeless)
    assert not restatement_is_true(parse_prompt("a red circle on the right"), sizeless)


def test_asked_parts():
    wanted = parse_prompt("a small yellow triangle above a large blue square on a white background")
    assert part_is_asked(parse_prompt("a yellow triangle"), wanted)
    assert part_is_asked(parse_prompt("a large blue square"), wanted)
    assert part_is_asked(parse_prompt("the blue square below the yellow triangle"), wanted)
    assert not part_is_asked(parse_prompt("a small blue square"), wanted)
    assert not part_is_asked(parse_prompt("a red triangle"), wanted)
    assert not part_is_asked(parse_prompt("the yellow triangle below the blue square"), wanted)


def test_prompt_sentences_in_a_rationale(pair):
    prompt = "a small yellow triangle above a large blue square on a white background"
    claims, check = _truth(
        "I see a small yellow triangle at the top. I see a large blue square at the bottom. "
        "The prompt asks for a small yellow triangle above a large blue square on a white background. "
        "The prompt asks for a red circle. "
        "The prompt asks for a small blue triangle but it is large. "
        "The prompt asks for a white background but it is black. "
        "The prompt asks for a yellow triangle but the yellow object is a circle. "
        "The prompt asks for a red square but no red object is visible (seen instead: a small yellow triangle "
        "at the bottom). "
        "The prompt asks for purple things. "
        "Every element matches. Overall the alignment quality is excellent.",
        pair, prompt=prompt,
    )
    assert claims == [
        ("object", True), ("object", True), ("restatement", True), ("restatement", False),
        ("asked", False), ("asked", True), ("asked", True), ("asked", False), ("object", False),
    ]
    assert check.unparsed == ["The prompt asks for purple things."]
    assert check.other == ["Every element matches.", "Overall the alignment quality is excellent."]
    assert check.seen_objects == 2 and check.named_objects == 2


def test_a_restatement_without_a_prompt_is_false(single):
    seen, _ = single
    claims, _ = _truth("The prompt asks for a red circle on the left.", seen, prompt=None)
    assert claims == [("restatement", False)]


def test_unparseable_claims_are_counted_not_dropped(single):
    seen, _ = single
    check = check_rationale("I see a red blob somewhere. I see purple. The picture is clean.", seen)
    assert check.claims == []
    assert check.unparsed == ["I see a red blob somewhere.", "I see purple."]
    assert check.other == ["The picture is clean."]


def test_sentences_strip_tags():
    text = "<think> I see a red circle. The edges are blurred. </think><answer> 2.50 </answer>"
    assert sentences(text) == ["I see a red circle.", "The edges are blurred."]

"""Misreading drills: the description is given, and every check after it follows the written words."""

import random
import re

import pytest

from reward_model.cot.teachers import RuleBasedTeacher
from t2i_guidance.world.oracles import observe
from t2i_guidance.world.render import render_clean
from t2i_guidance.world.scene import Scene, SceneObject
from t2i_guidance.world.training.misread_drills import drill_entry, misread_drills, misreadings

PAIR = Scene((SceneObject("triangle", "yellow", "small", 0.5, 0.25), SceneObject("square", "blue", "large", 0.5, 0.7)),
             "white", relation="above")
RIGHT = "a small yellow triangle above a large blue square on a white background"
WRONG_SHAPE = "a small yellow circle above a large blue square on a white background"
LOOK_FIRST = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True,
                              look_first=True)
CHECK = re.compile(r"(Colour|Shape|Size): seen (\w+), asked (\w+), (met|not met)")


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("drills") / "pair.png"
    render_clean(PAIR, 32).save(path)
    return str(path)


def entry(picture: str, prompt: str, task: str = "alignment") -> dict:
    return {"image": picture, "task": task, "prompt": prompt, "target": "<think> x </think><answer> 1 </answer>"}


def test_a_missing_value_is_misread_as_asked_and_a_present_one_as_another(picture):
    from t2i_guidance.world.captions import parse_prompt

    seen = observe(render_clean(PAIR, 32))
    wrong = misreadings(parse_prompt(WRONG_SHAPE), seen)
    yellow = next(i for i, o in enumerate(seen.objects) if o.colour == "yellow")
    assert (yellow, "shape", "circle") in wrong  # the prompt's circle, which the picture lacks
    assert all(value != "triangle" for index, field, value in wrong if index == yellow and field == "shape")
    right = misreadings(parse_prompt(RIGHT), seen)
    shapes = {value for index, field, value in right if index == yellow and field == "shape"}
    assert shapes == {"circle", "square"}  # every shape the yellow object is not


@pytest.mark.parametrize("seed", range(6))
def test_after_the_given_description_every_check_follows_the_written_words(picture, seed):
    drill = drill_entry(entry(picture, RIGHT), LOOK_FIRST, random.Random(seed))
    context, taught = drill["context"], drill["target"][len(drill["context"]):]
    assert taught.startswith(" The prompt asks for") and "The prompt" not in context
    again = drill_entry(entry(picture, RIGHT), LOOK_FIRST, random.Random(seed))["facts"]["seen"]
    assert again == drill["facts"]["seen"]  # the same seed, the same misreading
    true_claims = {"a small yellow triangle at the top", "a large blue square at the bottom", "a white background"}
    misread = [claim for claim in drill["facts"]["seen"] if claim.startswith("a ") and claim not in true_claims]
    assert len(misread) == 1 and f"I see {misread[0]}." in context and f"Seen: {misread[0]}." in taught
    checks = CHECK.findall(taught)
    assert len(checks) == 6 and [verdict for *_, verdict in checks].count("not met") == 1
    for _, seen, asked, verdict in checks:
        assert (verdict == "met") == (seen == asked)
    met = int(re.search(r"(\d+) of (\d+) elements are met", taught).group(1))
    assert met == 8  # one of the 9 elements misread away from the picture, which meets them all
    assert f"{5.0 * met / 9:.2f}" in taught.split("<answer>")[1]


def test_a_drill_can_read_an_unmet_element_as_met(picture):
    drills = [drill_entry(entry(picture, WRONG_SHAPE), LOOK_FIRST, random.Random(seed)) for seed in range(12)]
    towards = [d for d in drills if "I see a small yellow circle" in d["context"]]
    assert towards  # the misreading the judges make most: the asked shape
    for drill in towards:
        assert "Shape: seen circle, asked circle, met" in drill["target"] and "Every element matches" in drill["target"]


def test_drills_need_the_look_first_rationale_and_skip_what_they_cannot_misread(picture):
    asked_first = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True)
    with pytest.raises(ValueError, match="look-first"):
        drill_entry(entry(picture, RIGHT), asked_first, random.Random(0))
    entries = [entry(picture, RIGHT), entry(picture, RIGHT, task="technical"),
               entry(picture, "two yellow triangles on a white background")]
    drills = misread_drills(entries, LOOK_FIRST, random.Random(0))
    assert len(drills) == 1 and drills[0]["source"] == "description-drill"
    assert misread_drills(entries, LOOK_FIRST, random.Random(0), share=0.0) == []


@pytest.mark.parametrize("seed", range(6))
def test_a_check_drill_writes_one_seen_value_wrong_and_teaches_the_verdict_that_follows_it(picture, seed):
    drill = drill_entry(entry(picture, RIGHT), LOOK_FIRST, random.Random(seed), kind="check")
    context, taught = drill["context"], drill["target"][len(drill["context"]):]
    for claim in ("a small yellow triangle at the top", "a large blue square at the bottom"):
        assert f"I see {claim}." in context and f"Seen: {claim}." in drill["target"]  # the description stays true
    cut = re.search(r"(Colour|Shape|Size|Background): seen (\w+), asked (\w+),$", context)  # before its verdict
    assert cut is not None
    element, seen, asked = cut.groups()
    assert seen != asked and context.endswith(f"{element}: seen {seen}, asked {asked},")
    assert taught.startswith(" not met (")  # every element of RIGHT is met: the drill makes one unequal
    assert re.search(r"8 of 9 elements are met", taught) and "4.44" in taught.split("<answer>")[1]


def test_a_check_drill_can_write_the_asked_value_over_an_unmet_one(picture):
    drills = [drill_entry(entry(picture, WRONG_SHAPE), LOOK_FIRST, random.Random(seed), kind="check")
              for seed in range(20)]
    copied = [d for d in drills if d["context"].endswith("Shape: seen circle, asked circle,")]
    assert copied and all(d["target"][len(d["context"]):].startswith(" met (") for d in copied)
    assert all(d["source"] == "check-drill" for d in drills)


def test_balanced_check_drills_teach_as_many_met_as_not_met_and_only_a_comparison_fits_them(picture):
    entries = [entry(picture, WRONG_SHAPE), entry(picture, RIGHT)]
    drills = misread_drills(entries, LOOK_FIRST, random.Random(0), share=6.0, kind="balanced-check")
    assert drills and all(d["source"] == "balanced-check-drill" for d in drills)
    taught = [d["target"][len(d["context"]):] for d in drills]
    met = [t.startswith(" met (") for t in taught]
    assert met.count(True) == met.count(False) == len(drills) // 2  # RIGHT has no unmet check: fewer "met"
    for drill, says_met in zip(drills, met, strict=True):
        seen, asked = re.search(r"seen (\w+), asked (\w+),$", drill["context"]).groups()
        assert says_met == (seen == asked) == drill["teaches"]
    # "met" is only taught over a truly unmet check: WRONG_SHAPE's shape, written as the asked circle
    assert all(d["prompt"] == WRONG_SHAPE and d["context"].endswith("Shape: seen circle, asked circle,")
               for d, says_met in zip(drills, met, strict=True) if says_met)


def test_a_share_above_one_draws_several_drills_per_picture(picture):
    entries = [entry(picture, RIGHT)]
    assert len(misread_drills(entries, LOOK_FIRST, random.Random(0), share=3.0, kind="check")) == 3
    assert len(misread_drills(entries, LOOK_FIRST, random.Random(0), share=1.0, kind="check")) == 1

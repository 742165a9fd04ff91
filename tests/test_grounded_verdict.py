"""Grounded verdicts: every alignment check rewritten from the judge's own description."""

import re

import pytest
from PIL import Image

from reward_model.backends import Completion, RequestResult
from reward_model.check_consistency import check_agreement
from reward_model.interface import ImageItem
from reward_model.scorer import OmniQualityScorer
from t2i_guidance import registries  # noqa: F401 - loads the world plugin, which registers its verdict rule
from t2i_guidance.world.consistency import check_consistency
from t2i_guidance.world.grounded_verdict import grounded_answer

PROMPT = "a small green circle below a large blue triangle on a gray background"
# A judge's answer as the look-first scorer wrote it: a description, then checks copied from the prompt.
COPYING = ("I see a small green triangle at the top. I see a small blue circle in the center. I see a gray "
           "background. The prompt asks for a small green circle below a large blue triangle on a gray background. "
           "Asked: a small green circle. Seen: a small green circle at the top. Colour: seen green, asked green, "
           "met (1 of 1). Shape: seen circle, asked circle, met (2 of 2). Every element matches. 9 of 9 elements "
           "are met. Overall the alignment quality is excellent.")
TRUE_PICTURE = ("I see a large blue triangle at the top. I see a small green circle at the bottom. I see a gray "
                "background. The prompt asks for nothing I read.")


def test_the_checks_follow_the_description_not_the_copied_prompt():
    rationale, score = grounded_answer(PROMPT, COPYING)
    assert rationale.startswith(COPYING[: COPYING.index(" The prompt asks for")])  # the description is kept
    assert "Seen: a small green triangle at the top." in rationale  # the judge's own claim, not the prompt's
    assert "Shape: seen triangle, asked circle, not met" in rationale
    assert "Size: seen small, asked large, not met" in rationale
    assert "Every element matches" not in rationale
    stated = re.search(r"(\d+) of (\d+) elements are met", rationale).groups()
    assert stated == ("5", "9") and abs(score - 5.0 * 5 / 9) < 0.01
    assert check_agreement(rationale) == 1.0  # every verdict, count and "Seen:" line agrees with itself
    consistency = check_consistency(rationale, score, PROMPT)
    assert consistency.consistent


def test_a_description_of_the_asked_picture_meets_every_element():
    rationale, score = grounded_answer(PROMPT, TRUE_PICTURE)
    assert score == 5.0 and "Every element matches. 9 of 9 elements are met." in rationale


def test_what_follows_a_readable_description_is_not_read():
    description = COPYING[: COPYING.index(" The prompt asks for")]
    whole = grounded_answer(PROMPT, COPYING)
    assert grounded_answer(PROMPT, description + " The prompt asks for") == whole  # generation stopped there
    assert grounded_answer(PROMPT, description + " The prompt asks for a small gr") == whole  # cut short
    assert grounded_answer(PROMPT, description + " Overall the aesthetic quality is good.") == whole  # wrong form


def test_an_unreadable_answer_or_an_unparsable_prompt_is_left_alone():
    assert grounded_answer(PROMPT, "The image is poor. Overall the alignment quality is poor.") is None
    assert grounded_answer(PROMPT, "I see a gray background. The prompt asks for a circle.") is None  # no object
    assert grounded_answer("a photo of a cat on a sofa", COPYING) is None  # outside the grammar
    garbled = "I see a small green circle in the center. I see a gray background. I see 1 small green circle here."
    assert grounded_answer(PROMPT, garbled) is None  # one "I see" sentence in no claim form: none is trusted
    assert grounded_answer(PROMPT, "I see a green circle. I see a gray background.") is None  # no size, no place


class WrittenAnswers:
    """A backend that answers each dimension with a given text: the scorer's handling of it is tested."""

    name = "written"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(self, requests, decoding):
        return [RequestResult([Completion(f"<think> {self.answers[r.dimension]} </think><answer> 4.50 </answer>", 9)])
                for r in requests]


def scorer_answering(monkeypatch, answers: dict[str, str], verdicts: str) -> OmniQualityScorer:
    monkeypatch.setattr("reward_model.scorer.SCORING_BACKENDS",
                        type("Backends", (), {"get": lambda self, name: lambda info, **kw: WrittenAnswers(answers)})())
    return OmniQualityScorer("omniquality-r", backend="transformers", verdicts=verdicts)  # a hub id: nothing loads


def test_the_scorer_rewrites_alignment_only_and_keeps_the_judges_own_text(monkeypatch):
    technical = "I see a small green triangle at the top. I find no problem."
    answers = {"alignment": COPYING, "technical": technical}
    picture = [ImageItem("a", Image.new("RGB", (28, 28)))]
    own = scorer_answering(monkeypatch, answers, "own").score(picture, PROMPT, ["alignment", "technical"])["a"]
    grounded = scorer_answering(monkeypatch, answers, "world-grounded")
    row = grounded.score(picture, PROMPT, ["alignment", "technical"])["a"]
    assert own["alignment"].score == 4.5 and row["alignment"].score == pytest.approx(2.78)
    assert "Shape: seen triangle, asked circle, not met" in row["alignment"].rationale
    assert COPYING in row["alignment"].raw  # the judge's own words stay for audits
    assert row["technical"].score == 4.5 and row["technical"].rationale == technical
    assert grounded.settings_key()["verdicts"] == "world-grounded" and "verdicts" not in OmniQualityScorer.settings_key(
        scorer_answering(monkeypatch, answers, "own"))  # the two never share cached scores
    unreadable = scorer_answering(monkeypatch, {"alignment": "Overall it is fine."}, "world-grounded")
    assert unreadable.score(picture, PROMPT, ["alignment"])["a"]["alignment"].score == 4.5  # left as it was


def test_an_unknown_verdict_rule_is_refused_before_anything_loads():
    with pytest.raises(KeyError, match="unknown verdict rule 'nope'; available: world-grounded"):
        OmniQualityScorer("omniquality-r", backend="transformers", verdicts="nope")


def test_the_shipped_judge_stops_after_its_description_and_scores_as_its_full_answer_would():
    from reward_model.backends import EMBEDDED_DIR
    from t2i_guidance.world.render import render_scene
    from t2i_guidance.world.scene import sample_split_scene

    if not (EMBEDDED_DIR / "config.json").exists():
        pytest.skip("embedded scorer not shipped")
    scene = sample_split_scene(703, held_out=True)
    picture = [ImageItem("p", render_scene(scene, 32))]
    own = OmniQualityScorer("embedded", decoding="greedy", verdicts="own")
    grounded = OmniQualityScorer("embedded", decoding="greedy", verdicts="world-grounded")
    full = own.score(picture, PROMPT, ["alignment"])["p"]["alignment"]
    short = grounded.score(picture, PROMPT, ["alignment"])["p"]["alignment"]
    assert short.raw.endswith("The prompt asks for") and short.generated_tokens < full.generated_tokens / 2
    expected = grounded_answer(PROMPT, full.rationale)  # the same description, read from the whole answer
    assert expected is not None and (short.rationale, short.score) == expected

"""OmniQualityScorer on a tiny Qwen2.5-VL fine-tuned to known answers (see tests/scorer_fixtures.py)."""

from __future__ import annotations

import io
import statistics

import pytest
import torch
from PIL import Image

from reward_model.backends import ModelNotFoundError, choose_backend_name, resolve_model
from reward_model.interface import ImageItem, Scorer, ScoreStatus, build_scorer
from reward_model.scorer import OmniQualityScorer
from tests.scorer_fixtures import (  # noqa: F401 - fixtures
    TRAIN_PROMPT,
    random_image,
    random_scorer_dir,
    trained_scorer_dir,
)

ALL = ["technical", "aesthetic", "alignment"]


@pytest.fixture(scope="module")
def greedy(trained_scorer_dir):  # noqa: F811
    return OmniQualityScorer(trained_scorer_dir, decoding="greedy", max_new_tokens=24, batch_size=32)


def items(count: int, offset: int = 100) -> list[ImageItem]:
    return [ImageItem(f"img{i}", random_image(offset + i)) for i in range(count)]


def test_plugs_in_by_name(trained_scorer_dir):  # noqa: F811
    scorer = build_scorer("omniquality-r", model=trained_scorer_dir, decoding="greedy", max_new_tokens=24)
    assert isinstance(scorer, Scorer) and scorer.name == "omniquality-r"
    assert scorer.backend_name == "transformers" == choose_backend_name("auto")  # no vLLM / GPU here


def test_reasoned_scores_rationale_and_failures(greedy):
    table = greedy.score(items(2), TRAIN_PROMPT, ALL)
    for results in table.values():
        technical, aesthetic, alignment = (results[d] for d in ALL)
        assert technical.ok and technical.score == pytest.approx(3.47) and technical.rationale == "sharp"
        assert alignment.ok and alignment.score == pytest.approx(1.25)
        assert alignment.rationale == "the colour matches" and "<answer> 1.25 </answer>" in alignment.raw
        # The model answers 7.50 for aesthetics: out of range, so no number at all, raw text kept.
        assert aesthetic.status is ScoreStatus.PARSE_FAILURE and aesthetic.score is None
        assert "7.50" in aesthetic.raw and "outside" in aesthetic.error
        assert all(r.generated_tokens > 0 and not r.cached for r in results.values())


def test_untrained_model_gives_parse_failures_with_raw_text(random_scorer_dir):  # noqa: F811
    scorer = OmniQualityScorer(random_scorer_dir, decoding="greedy", max_new_tokens=12)
    table = scorer.score(items(2), TRAIN_PROMPT, ALL)
    for result in (r for results in table.values() for r in results.values()):
        assert result.status is ScoreStatus.PARSE_FAILURE and result.score is None
        assert result.raw and result.error and result.generated_tokens == 12


def test_one_batched_call_matches_one_at_a_time(greedy):
    batch = items(5, offset=200)
    calls = len(greedy.backend.last_batch_seconds)
    together = greedy.score(batch, TRAIN_PROMPT, ["technical", "alignment"])
    assert len(greedy.backend.last_batch_seconds) == calls + 1  # ten requests, one generate call
    greedy.cache = type(greedy.cache)()  # forget, so the singles are really generated
    for item in batch:
        alone = greedy.score([item], TRAIN_PROMPT, ["technical", "alignment"])[item.id]
        for dimension, result in alone.items():
            assert result.score == together[item.id][dimension].score
            assert result.raw == together[item.id][dimension].raw


def test_bad_items_fail_alone(greedy, tmp_path):
    buffer = io.BytesIO()
    random_image(7, (64, 64)).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:200])
    truncated = Image.open(tmp_path / "cut.png")  # lazy: the damage shows only when decoded
    batch = [
        ImageItem("good", random_image(300)),
        ImageItem("truncated", truncated),
        ImageItem("sliver", Image.new("RGB", (900, 2))),
        ImageItem("huge", Image.new("RGB", (400, 400))),
    ]
    scorer_limit = greedy.max_image_pixels
    greedy.max_image_pixels = 100_000
    try:
        table = greedy.score(batch, None, ["technical", "alignment"])
    finally:
        greedy.max_image_pixels = scorer_limit
    assert table["good"]["technical"].ok
    assert table["good"]["alignment"].status is ScoreStatus.ERROR
    assert "prompt" in table["good"]["alignment"].error
    for bad, message in (("truncated", "truncated"), ("sliver", "aspect ratio"), ("huge", "above the limit")):
        for dimension in ("technical", "alignment"):
            result = table[bad][dimension]
            assert result.status is ScoreStatus.ERROR and result.score is None and message in result.error


def test_call_level_mistakes_raise(greedy):
    with pytest.raises(ValueError, match="unique"):
        greedy.score([ImageItem("a", random_image(1)), ImageItem("a", random_image(2))], None, ["technical"])
    with pytest.raises(ValueError, match="unknown dimension"):
        greedy.score(items(1), None, ["sharpness"])


def test_k_samples_give_mean_spread_and_every_rationale(trained_scorer_dir):  # noqa: F811
    scorer = OmniQualityScorer(trained_scorer_dir, samples=8, max_new_tokens=24, seed=0)  # authors' sampling
    result = scorer.score(items(1), None, ["technical"])["img0"]["technical"]
    assert result.ok and 5 <= len(result.samples) <= 8
    assert result.score == pytest.approx(statistics.fmean(result.samples))
    assert result.std == pytest.approx(statistics.pstdev(result.samples))
    assert result.raw.count("[sample ") == 8 and result.rationale.count("[sample ") == 8
    assert 2.4 <= result.score <= 3.5


def _teacher_forced_expectation(scorer: OmniQualityScorer, item: ImageItem, completion: str) -> float:
    """The same expectation computed independently: one forward pass over prompt + the greedy answer."""
    backend = scorer.backend
    from reward_model.backends import Request

    prompt = backend.render(Request(item.image, "technical", None))
    inputs = backend.processor(text=[prompt + completion], images=[item.image], return_tensors="pt")
    prompt_length = backend.processor(text=[prompt], images=[item.image], return_tensors="pt")[
        "input_ids"
    ].shape[1]
    with torch.no_grad():
        logits = backend.model(**inputs).logits[0]
    ids = inputs["input_ids"][0].tolist()
    digits = [backend.tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)]
    tokens = backend.tokenizer.convert_ids_to_tokens(ids[prompt_length:])
    start = tokens.index("<answer>") + 1
    number_positions = [prompt_length + i for i in range(start, len(tokens)) if tokens[i] in "0123456789."]
    value, place = 0.0, 0
    for position in number_positions:
        if backend.tokenizer.convert_ids_to_tokens(ids[position]) == ".":
            continue
        probs = torch.softmax(logits[position - 1], dim=-1)[digits]
        value += 10.0**place * float((probs / probs.sum() * torch.arange(10)).sum())
        place -= 1
    return value


def test_probability_weighted_reads_the_real_digit_distribution(trained_scorer_dir):  # noqa: F811
    scorer = OmniQualityScorer(trained_scorer_dir, mode="prob-weighted", max_new_tokens=24)
    item = items(1, offset=400)[0]
    first = scorer.score([item], None, ["technical"])[item.id]["technical"]
    scorer.cache = type(scorer.cache)()
    second = scorer.score([item], None, ["technical"])[item.id]["technical"]
    assert first.ok and first.score == second.score  # one deterministic pass, no sampling noise
    assert first.samples == [pytest.approx(3.47)]  # the greedy answer it was read along
    # Trained on 3.47 (70 %) and 2.47 (30 %): the expectation lies strictly between them, with spread.
    assert 2.47 < first.score < 3.47 and first.std > 0.1
    assert first.score == pytest.approx(_teacher_forced_expectation(scorer, item, first.raw), abs=1e-4)


def test_probability_weighted_keeps_parse_failures(trained_scorer_dir):  # noqa: F811
    scorer = OmniQualityScorer(trained_scorer_dir, mode="prob-weighted", max_new_tokens=24)
    result = scorer.score(items(1), None, ["aesthetic"])["img0"]["aesthetic"]
    assert result.status is ScoreStatus.PARSE_FAILURE and result.score is None and "7.50" in result.raw


def test_answer_only_is_cheap_and_differs(greedy, trained_scorer_dir):  # noqa: F811
    fast = OmniQualityScorer(trained_scorer_dir, decoding="greedy", mode="answer-only")
    batch = items(2, offset=500)
    quick = fast.score(batch, None, ["technical"])
    reasoned = greedy.score(batch, None, ["technical"])
    for item in batch:
        assert quick[item.id]["technical"].ok and quick[item.id]["technical"].score == pytest.approx(4.10)
        assert quick[item.id]["technical"].rationale == ""
        assert quick[item.id]["technical"].generated_tokens < reasoned[item.id]["technical"].generated_tokens


def test_model_names_fail_clearly_before_loading(tmp_path, monkeypatch):
    monkeypatch.setattr("reward_model.backends.EMBEDDED_DIR", tmp_path / "tiny-omniquality-r")
    with pytest.raises(ModelNotFoundError, match="embedded scorer is not available yet"):
        OmniQualityScorer("embedded")
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_model(str(tmp_path / "missing-model"))
    released = resolve_model("omniquality-r")
    assert released.source == "yeeeeeyy/OmniQuality-R"
    assert (released.min_pixels, released.max_pixels, released.max_new_tokens) == (3136, 3136000, 4096)
    with pytest.raises(ValueError, match="mode"):
        OmniQualityScorer(str(tmp_path), mode="fast")


def test_the_same_picture_twice_is_generated_once(greedy):
    image = random_image(600)
    calls = len(greedy.backend.last_batch_seconds)
    table = greedy.score([ImageItem("a", image), ImageItem("b", image.copy())], None, ["technical"])
    a, b = table["a"]["technical"], table["b"]["technical"]
    assert len(greedy.backend.last_batch_seconds) == calls + 1
    assert a.score == b.score and a.generated_tokens > 0 and b.cached and b.generated_tokens == 0
    assert a is not b

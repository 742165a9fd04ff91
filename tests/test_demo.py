"""The Gradio demo's handlers, called as the UI would call them (no server is started; the browser
test in tests/test_demo_browser.py drives the real page)."""

import json

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from apps import demo  # noqa: E402
from reward_model.interface import DimensionScore, ScoreStatus  # noqa: E402
from reward_model.registry import register_scorer  # noqa: E402
from tests.pixel_scorers import FailingOnSomeScorer, ShuffledBrightnessScorer, brightness  # noqa: E402

INTERNAL_WORDS = ("parse_failure", "aggregate", "c000", "c001", "status")


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    from tests.tiny_pipelines import save_tiny_pipeline

    return save_tiny_pipeline("sd15", tmp_path_factory.mktemp("preset") / "gen")


def preset(tmp_path, generator_dir, scorer: str, weights: str = "technical=1,aesthetic=1,alignment=0") -> str:
    path = tmp_path / f"{scorer}.json"
    path.write_text(json.dumps({
        "description": "test", "generator": str(generator_dir), "scorer": scorer,
        "num_inference_steps": 2, "guidance_scale": 2.0, "weights": weights,
    }))
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def test_scorers():
    register_scorer("test-brightness", ShuffledBrightnessScorer)
    register_scorer("test-demo-failing", lambda: FailingOnSomeScorer(parse_fail={"c001"}, error={"c002"}, missing=set()))


def final(updates):
    *_, last = list(updates)
    return last


def test_a_run_shows_the_best_large_and_crisp_with_png_downloads(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-brightness")
    status, best, best_file, gallery, table, history, earlier = final(
        demo.generate("a red circle", 4, 3, 1, 1, 0, path, []))
    assert len(gallery) == 4 and gallery[0][1].startswith("best")
    values = [brightness(Image.open(p)) for p, _ in gallery]
    assert values == sorted(values, reverse=True)
    original = Image.open(best_file)
    large = Image.open(best)
    assert min(large.size) >= 256 and large.size[0] % original.size[0] == 0
    factor = large.size[0] // original.size[0]
    assert large.resize(original.size, Image.Resampling.NEAREST).tobytes() == original.convert("RGB").tobytes()
    assert large.getpixel((factor - 1, factor - 1)) == original.getpixel((0, 0))  # blocks, not blur
    for candidate, _ in gallery:
        with Image.open(candidate) as image:
            assert image.format == "PNG"
            assert image.text["prompt"] == "a red circle" and "seed" in image.text
            assert set(json.loads(image.text["scores"])) == {"technical", "aesthetic"}
    assert "Best: Picture" in status and "/ 5" in status
    assert table.count("data:image/png;base64") == 4  # a thumbnail in every row
    assert not any(word in table + status for word in INTERNAL_WORDS)
    assert len(history) == 1 and earlier[0][1].startswith("a red circle · seed 3")
    *_, history, earlier = final(demo.generate("a blue square", 2, 0, 1, 1, 0, path, history))
    assert [h["prompt"] for h in history] == ["a blue square", "a red circle"] and len(earlier) == 2


def test_failed_judgements_are_sentences(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-demo-failing")
    status, *_, table, _, _ = final(demo.generate("a red circle", 4, 0, 1, 1, 0, path, []))
    assert "answered without a readable score" in table and "could not look at this picture" in table
    assert "not ranked: a weighted judgement is missing" in table
    assert not any(word in table for word in INTERNAL_WORDS)


@pytest.mark.parametrize(
    "prompt, n, seed, message",
    [("  ", 4, 0, "The prompt is empty"), ("ok", 0, 0, "number of candidates must be"),
     ("ok", 33, 0, "at most 32"), ("ok", 2, -1, "seed must be between"),
     ("a\x00b", 2, 0, "control characters")],
)
def test_bad_input_is_a_sentence_before_any_model_loads(tmp_path, generator_dir, monkeypatch, prompt, n, seed, message):
    monkeypatch.setattr(demo, "build_search_parts", lambda *a: pytest.fail("models loaded"))
    with pytest.raises(gr.Error, match=message):
        final(demo.generate(prompt, n, seed, 1, 1, 1, preset(tmp_path, generator_dir, "test-brightness"), []))


def test_the_embedded_preset_refuses_what_it_cannot_draw(monkeypatch):
    monkeypatch.setattr(demo, "build_search_parts", lambda *a: pytest.fail("models loaded"))
    with pytest.raises(gr.Error, match="cannot draw this prompt .unknown words: cat, sofa"):
        final(demo.generate("a cat on a sofa", 4, 0, 0, 1, 2, "embedded", []))
    assert "cannot draw this (unknown word: cat)" in demo.prompt_warning("a cat", "embedded")
    assert demo.prompt_warning(demo.WORLD_EXAMPLES[1], "embedded") == ""
    for example in demo.WORLD_EXAMPLES:
        assert demo.prompt_warning(example, "embedded") == "", example


def test_weights_start_at_the_presets():
    assert demo.preset_weights("embedded") == {"technical": 1.0, "aesthetic": 1.0, "alignment": 2.0}


def test_trade_off_front_keeps_the_unbeaten():
    from t2i_guidance.generator import Candidate
    from t2i_guidance.result import ScoredCandidate, SearchResult
    from t2i_guidance.search.ledger import CostLedger

    def scored(index, technical, aesthetic):
        candidate = Candidate(f"c{index}", index, index, "p", Image.new("RGB", (4, 4)), {}, 1.0)
        scores = {"technical": DimensionScore("technical", ScoreStatus.OK, score=technical),
                  "aesthetic": DimensionScore("aesthetic", ScoreStatus.OK, score=aesthetic)}
        return ScoredCandidate(candidate, scores, (technical + aesthetic) / 2)

    result = SearchResult("p", "best-of-n", {"technical": 1.0, "aesthetic": 1.0, "alignment": 0.0},
                          [scored(0, 5, 1), scored(1, 1, 5), scored(2, 3, 3), scored(3, 2, 2), scored(4, 5, 1)],
                          CostLedger())
    assert demo.trade_off_front(result) == {"c0", "c1", "c2", "c4"}


def test_score_upload_explains_a_non_image_and_reads_the_stored_prompt(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-brightness")
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    with pytest.raises(gr.Error, match="This file cannot be judged: not an image file"):
        demo.score_upload(str(fake), "", path)
    with pytest.raises(gr.Error, match="Upload a picture first"):
        demo.score_upload(None, "", path)
    plain = tmp_path / "white.png"
    Image.new("RGB", (16, 16), (255, 255, 255)).save(plain)
    text, preview = demo.score_upload(str(plain), "", path)
    assert "Technical quality" in text and "5.00" in text and "not judged" in text
    assert min(Image.open(preview).size) >= 256
    *_, best_file, _, _, _, _ = final(demo.generate("a red circle", 2, 0, 1, 1, 0, path, []))
    text, _ = demo.score_upload(best_file, "", path)
    assert "Judged against the prompt: <i>a red circle</i>" in text and "Matches the prompt" in text


def test_the_app_builds_and_listens_locally_by_default(tmp_path, generator_dir):
    app = demo.build_demo(preset(tmp_path, generator_dir, "test-brightness"))
    assert isinstance(app, gr.Blocks)
    assert demo.build_parser().parse_args([]).host == "127.0.0.1"


def test_status_names_the_stage_from_the_runs_progress_bars():
    from tqdm.auto import tqdm

    assert demo.stage_text() == "Loading the models and starting"
    with tqdm(total=4, desc="score", disable=False) as bar:
        bar.update(2)
        assert demo.stage_text() == "Judging pictures: 2 of 4 done"

"""The Gradio demo's handlers, called as the UI would call them (no server is started)."""

import json

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from apps import demo  # noqa: E402
from reward_model.registry import register_scorer  # noqa: E402
from tests.pixel_scorers import ShuffledBrightnessScorer, brightness  # noqa: E402


@pytest.fixture(scope="module")
def preset_file(tmp_path_factory):
    from tests.tiny_pipelines import save_tiny_pipeline

    register_scorer("test-brightness", ShuffledBrightnessScorer)
    folder = tmp_path_factory.mktemp("preset")
    save_tiny_pipeline("sd15", folder / "gen")
    path = folder / "tiny.json"
    path.write_text(json.dumps({
        "description": "test", "generator": "./gen", "scorer": "test-brightness",
        "num_inference_steps": 2, "guidance_scale": 2.0,
    }))
    return str(path)


def test_generate_returns_candidates_best_first(preset_file):
    gallery, best, table = demo.generate("a red circle", 4, 3, 1, 1, 0, preset_file)
    assert len(gallery) == 4
    values = [brightness(image) for image, _ in gallery]
    assert values == sorted(values, reverse=True)
    assert list(best.getdata()) == list(gallery[0][0].getdata())
    assert gallery[0][1].startswith("#1 ")
    assert "mean brightness" in table and "alignment" not in table


@pytest.mark.parametrize("prompt, n, message", [("  ", 4, "prompt is empty"), ("ok", 0, "--n must be"),
                                                ("ok", 33, "at most 32")])
def test_bad_input_is_a_message_not_a_crash(preset_file, prompt, n, message):
    with pytest.raises(gr.Error, match=message):
        demo.generate(prompt, n, 0, 1, 1, 1, preset_file)


def test_score_upload_scores_alignment_only_with_a_prompt(preset_file):
    image = Image.new("RGB", (16, 16), (255, 255, 255))
    text = demo.score_upload(image, "", preset_file)
    assert "technical: 5.00" in text and "alignment" not in text
    assert "alignment: 5.00" in demo.score_upload(image, "a white square", preset_file)
    with pytest.raises(gr.Error):
        demo.score_upload(None, "", preset_file)


def test_the_app_builds_and_listens_locally_by_default(preset_file):
    app = demo.build_demo(preset_file)
    assert isinstance(app, gr.Blocks)
    assert demo.build_parser().parse_args([]).host == "127.0.0.1"

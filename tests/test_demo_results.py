"""The demo for an artist who comes back: downloads, the artist's own pick, doubtful scores, the score tab."""

import html
import json
from pathlib import Path

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from apps import demo  # noqa: E402
from reward_model.interface import DimensionScore, ScoreStatus, register_scorer  # noqa: E402
from tests.demo_helpers import (  # noqa: E402
    preset,
    register_test_scorers,
    run,
    run_all,
    tiny_generator_dir,
)
from tests.pixel_scorers import FailingOnSomeScorer, ShuffledBrightnessScorer, brightness  # noqa: E402,F401


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    return tiny_generator_dir(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def test_scorers():
    register_test_scorers()


# ---------------------------------------------------------------- an artist comes back (downloads, picks, doubt)
class SampledBrightnessScorer(ShuffledBrightnessScorer):
    """Brightness with a spread over three samples, and a rationale in the judge's shorthand."""

    def score(self, items, prompt, dimensions):
        table = super().score(items, prompt, dimensions)
        for row in table.values():
            for dimension, result in row.items():
                value = result.score
                row[dimension] = DimensionScore(
                    dimension, ScoreStatus.OK, score=value, std=0.8, samples=[value - 1, value, value + 1],
                    rationale="Blur level 0, noise level 2, compression level 0. 1 of 2 elements are met.")
        return table


@pytest.fixture(scope="module", autouse=True)
def sampled_scorer():
    register_scorer("test-demo-sampled", SampledBrightnessScorer)


def test_downloads_are_large_crisp_pngs_named_after_prompt_and_seed(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-brightness")
    _, _, best_file, gallery, *_ = run("A red circle, please!", 3, 4, 1, 1, 0, path, [])
    folder = Path(best_file).parents[1]
    data = json.loads((folder / "result.json").read_text())
    best_seed = next(c["seed"] for c in data["candidates"] if c["id"] == data["best"])
    assert Path(best_file).name == f"a-red-circle-please-seed{best_seed}.png"
    original = Image.open(folder / "best.png")
    with Image.open(best_file) as download:
        assert download.format == "PNG" and min(download.size) >= 512
        assert download.size[0] % original.size[0] == 0  # a whole factor, nearest-neighbour
        assert download.resize(original.size, Image.Resampling.NEAREST).tobytes() == original.convert("RGB").tobytes()
        assert download.text["prompt"] == "A red circle, please!" and download.text["seed"] == str(best_seed)
        assert json.loads(download.text["scores"]) and float(download.text["weighted_score"]) > 0
        assert download.text["original_size"] == f"{original.width}x{original.height}"
    assert sorted(Path(p).name for p, _ in gallery) == sorted(f"a-red-circle-please-seed{s}.png" for s in (4, 5, 6))
    assert data["config"]["batch_size"] == 1  # one picture per drawing call: the status moves per picture


def test_a_real_models_download_keeps_its_size():
    from apps.demo.downloads import DOWNLOAD_PX, file_stem
    from apps.demo.rendering import upscale

    assert upscale(Image.new("RGB", (1024, 768)), DOWNLOAD_PX).size == (1024, 768)
    assert file_stem("Ünïcode  / ../path\\name", 7) == "unicode-path-name-seed7"
    assert file_stem("🙂", 0) == "picture-seed0"


def test_the_artists_pick_is_shown_beside_the_judges_and_kept_only_when_asked(tmp_path, generator_dir):
    from apps.demo import picks
    from reward_model.data.preferences import read_preferences

    path = preset(tmp_path, generator_dir, "test-brightness")
    outputs = run_all("a red circle", 3, 0, 1, 1, 0, path, [])
    state, choice, worse, invite = outputs[8:]
    assert [name for name, _ in choice["choices"]] == [p["name"] for p in state["pictures"]]
    assert worse["value"] == picks.ALL_OTHERS and "keep my picks" in invite
    judge, other = state["judge"], state["pictures"][-1]["id"]
    assert other != judge
    folder = tmp_path / "prefs"
    picks_before = picks.preference_folder()
    picks.set_preference_folder(folder)
    try:
        said = demo.pick(state, other, picks.ALL_OTHERS, False)
        assert "The judge picked Picture" in said and "you disagree" in said and not folder.exists()
        said = demo.pick(state, other, picks.ALL_OTHERS, True)
        assert "Kept on this computer (1 picks so far" in said
        said = demo.pick(state, judge, other, True)
        assert "The judge picked the same one" in said and "(2 picks so far" in said
        entries = list(read_preferences(folder))
        first, second = entries
        judge_seed = next(p["seed"] for p in state["pictures"] if p["id"] == judge)
        assert first["prompt"] == "a red circle" and first["judge_pick_seed"] == judge_seed
        assert len(first["worse"]) == 2 and len(second["worse"]) == 1
        assert set(first["better"]["scores"]) == {"technical", "aesthetic"}
        with Image.open(folder / first["better"]["file"]) as kept:  # the picture as the judge saw it
            assert kept.size == Image.open(Path(state["pictures"][0]["file"])).size
        with pytest.raises(gr.Error, match="better than itself"):
            demo.pick(state, judge, judge, True)
        with pytest.raises(gr.Error, match="Choose the picture"):
            demo.pick(state, None, None, True)
        with pytest.raises(gr.Error, match="Generate pictures first"):
            demo.pick(None, "c000", None, True)
    finally:
        picks.set_preference_folder(picks_before)


def test_the_spread_of_sampled_scores_and_plain_words_are_shown(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-demo-sampled")
    *_, table, _, _ = run("a red circle", 2, 0, 1, 1, 0, path, [])
    assert "± 0.80 over 3 samples – the judge is unsure" in table
    assert "Blur: none, noise: clear, blockiness: none." in table and "Blur level" not in table


def test_a_score_contradicting_the_judges_reasoning_is_called_doubtful(monkeypatch):
    import sys
    import types
    from dataclasses import dataclass

    from apps.demo.judge_notes import contradiction

    result = DimensionScore("alignment", ScoreStatus.OK, score=4.8, rationale="1 of 4 elements are met.")
    monkeypatch.setitem(sys.modules, "t2i_guidance.world.consistency", None)  # the checker is absent
    assert contradiction(result, "a red circle") == ""

    @dataclass
    class Consistency:
        consistent: bool
        verdict_agrees: bool
        band_agrees: bool

    seen = []

    def check_consistency(rationale, score, prompt):
        seen.append((rationale, score, prompt))
        return Consistency(score < 3, True, score < 3)

    module = types.ModuleType("t2i_guidance.world.consistency")
    module.check_consistency = check_consistency
    monkeypatch.setitem(sys.modules, "t2i_guidance.world.consistency", module)
    said = contradiction(result, "a red circle")
    assert said.startswith("Doubtful") and "how many of the prompt's parts" in said
    assert seen == [("1 of 4 elements are met.", 4.8, "a red circle")]
    assert contradiction(DimensionScore("alignment", ScoreStatus.OK, score=1.0, rationale="x"), "p") == ""
    assert contradiction(DimensionScore("technical", ScoreStatus.OK, score=4.8, rationale="x"), "p") == ""
    html_cell = demo_rendering().judgement_cell(result, "a red circle")
    assert "⚠ Doubtful" in html_cell


def demo_rendering():
    from apps.demo import rendering

    return rendering


def test_the_score_tab_weighs_as_generate_does(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-brightness", weights="technical=1,aesthetic=1,alignment=2")
    *_, best_file, _, _, _, _, _ = run("a red circle", 2, 0, 1, 1, 2, path, [])
    with Image.open(Path(best_file).parents[1] / "best.png") as best:
        overall = float(best.text["weighted_score"])
    text, _ = demo.score_upload(str(Path(best_file).parents[1] / "best.png"), "", path, 1, 1, 2)
    assert f"Overall (weighted as on the Generate tab): <b>{overall:.2f}</b>" in text
    assert "sliders" not in text


def test_the_first_screen_shows_what_the_model_draws():
    from apps.demo.layout import samples_html

    page = samples_html(demo.WORLD_EXAMPLES)
    assert page.count("<img") == len(demo.WORLD_EXAMPLES)
    assert all(html.escape(example) in page for example in demo.WORLD_EXAMPLES)

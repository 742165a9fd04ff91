"""The Gradio demo's handlers, called as the UI would call them (no server is started; the browser
test in tests/test_demo_browser.py drives the real page)."""

import html
import json
from pathlib import Path

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from apps import demo  # noqa: E402
from apps.demo import service as demo_service  # noqa: E402
from reward_model.interface import DimensionScore, ScoreStatus  # noqa: E402
from tests.demo_helpers import (  # noqa: E402
    INTERNAL_WORDS,
    preset,
    register_test_scorers,
    run,
    tiny_generator_dir,
)
from tests.pixel_scorers import FailingOnSomeScorer, ShuffledBrightnessScorer, brightness  # noqa: E402,F401


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    return tiny_generator_dir(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def test_scorers():
    register_test_scorers()


def test_a_run_shows_the_best_large_and_crisp_with_png_downloads(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-brightness")
    status, best, best_file, gallery, rounds, table, history, earlier = run("a red circle", 4, 3, 1, 1, 0, path, [])
    assert len(gallery) == 4 and gallery[0][1].startswith("best")
    values = [brightness(Image.open(p)) for p, _ in gallery]
    assert values == sorted(values, reverse=True)
    original = Image.open(Path(best_file).parents[1] / "best.png")
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
    assert rounds == ""  # best-of-N has no rounds; the trade-offs strip needs two front pictures or none
    assert len(history) == 1 and earlier[0][1].startswith("a red circle · keep the best of several · ")
    *_, history, earlier = run("a blue square", 2, 0, 1, 1, 0, path, history)
    assert [h["prompt"] for h in history] == ["a blue square", "a red circle"] and len(earlier) == 2


def test_failed_judgements_are_sentences(tmp_path, generator_dir):
    path = preset(tmp_path, generator_dir, "test-demo-failing")
    status, *_, table, _, _ = run("a red circle", 4, 0, 1, 1, 0, path, [])
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
    monkeypatch.setattr(demo_service, "build_search_parts", lambda *a: pytest.fail("models loaded"))
    with pytest.raises(gr.Error, match=message):
        run(prompt, n, seed, 1, 1, 1, preset(tmp_path, generator_dir, "test-brightness"), [])


def test_the_embedded_preset_refuses_what_it_cannot_draw(monkeypatch):
    monkeypatch.setattr(demo_service, "build_search_parts", lambda *a: pytest.fail("models loaded"))
    with pytest.raises(gr.Error, match="cannot draw this prompt .unknown words: cat, sofa"):
        run("a cat on a sofa", 4, 0, 0, 1, 2, "embedded", [])
    assert "cannot draw this (unknown word: cat)" in demo.prompt_warning("a cat", "embedded")
    assert demo.prompt_warning(demo.WORLD_EXAMPLES[1], "embedded") == ""
    for example in demo.WORLD_EXAMPLES:
        assert demo.prompt_warning(example, "embedded") == "", example


def test_weights_start_at_the_presets():
    assert demo.preset_weights("embedded") == {"technical": 1.0, "aesthetic": 1.0, "alignment": 2.0}


def test_trade_off_front_keeps_the_unbeaten():
    from t2i_guidance.generator import Candidate
    from t2i_guidance.ledger import CostLedger
    from t2i_guidance.result import ScoredCandidate, SearchResult

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
    *_, best_file, _, _, _, _, _ = run("a red circle", 2, 0, 1, 1, 0, path, [])
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


# ---------------------------------------------------------------- strategies (issue 12, item 6)
@pytest.fixture(scope="module")
def world_generator_dir(tmp_path_factory):
    """An untrained world pipeline saved as a folder: the world grammar, the world rewriter, 2 steps."""
    from t2i_guidance.world.pipeline import WorldDiffusionPipeline

    folder = tmp_path_factory.mktemp("world") / "gen"
    WorldDiffusionPipeline.from_config_untrained(block_out_channels=(8, 16, 16)).save_pretrained(folder)
    return folder


def test_every_registered_strategy_is_offered_with_only_its_own_settings(monkeypatch):
    from t2i_guidance.search import _STRATEGIES, available_strategies
    from t2i_guidance.search.base import BestOfN

    assert set(demo.strategy_names()) == set(available_strategies())
    assert demo.strategy_names()[:2] == ["best-of-n", "refine"]
    assert demo.strategy_settings("best-of-n") == ("n",)
    assert demo.strategy_settings("refine") == ("per_round", "max_rounds")
    assert demo.strategy_settings("zero-order") == ("n", "neighbours", "rounds")
    assert demo.strategy_settings("cascade") == ("n", "keep")

    class Particles(BestOfN):
        """Particles resampled on the way: a strategy the demo has never heard of."""

        name = "test-particles"

        def __init__(self, generator, scorer, particles: int = 6, resample: bool = True, **common):
            super().__init__(generator, scorer, **common)

    monkeypatch.setitem(_STRATEGIES._entries, "test-particles", Particles)  # registered after the demo was written
    assert "test-particles" in demo.strategy_names()
    assert demo.strategy_settings("test-particles") == ("n", "particles")
    assert demo.setting_spec("particles") == ("Particles", 1, 12, 6)
    assert "particles" in demo.all_settings()
    assert demo.strategy_help("test-particles").startswith("Particles resampled")


def test_a_strategys_settings_are_checked_before_any_model_loads(tmp_path, generator_dir, monkeypatch):
    monkeypatch.setattr(demo_service, "build_search_parts", lambda *a: pytest.fail("models loaded"))
    path = preset(tmp_path, generator_dir, "test-brightness")
    with pytest.raises(gr.Error, match="at most 32 candidates in one run; these settings allow 64"):
        run("a red circle", 4, 0, 1, 1, 0, path, [], strategy="refine", per_round=8, max_rounds=8)
    with pytest.raises(gr.Error, match="Unknown way to search"):
        run("a red circle", 4, 0, 1, 1, 0, path, [], strategy="no-such-strategy")


def test_refinement_rounds_are_shown_and_the_best_of_all_rounds_wins(tmp_path, world_generator_dir):
    path = preset(tmp_path, world_generator_dir, "test-brightness", weights="technical=1,aesthetic=1,alignment=1")
    prompt = "a red circle above a small blue square on a white background"
    status, best, best_file, gallery, rounds, table, _, earlier = run(
        prompt, 99, 0, 1, 1, 1, path, [], strategy="refine", per_round=2, max_rounds=3)
    data = json.loads((Path(best_file).parents[1] / "result.json").read_text())
    assert data["strategy"] == "refine" and data["config"]["per_round"] == 2
    assert "n" not in data["config"]  # the best-of-N slider did not leak into refinement
    by_id = {c["id"]: c for c in data["candidates"]}
    top = max(by_id.values(), key=lambda c: c["aggregate"])
    assert data["best"] == top["id"]  # the pick is the best over all rounds
    assert len(data["rounds"]) >= 2, data["rounds"]
    for entry in data["rounds"]:
        assert f"Round {entry['round'] + 1}" in rounds
        assert html.escape(entry["prompt"]) in rounds
    winner_round = next(r["round"] + 1 for r in data["rounds"] if data["best"] in r["candidates"])
    assert rounds.count("holds the overall winner") == 1
    assert f"Round {winner_round} ★ holds the overall winner" in rounds
    assert rounds.count('class="pixelated"') >= len(by_id)  # every round's pictures, drawn crisp
    assert f'width="{demo.ROUND_THUMB_PX}"' in rounds and demo.ROUND_THUMB_PX >= 128
    assert "Stopped after round" in rounds and len(gallery) == len(by_id)
    assert f"from round {winner_round}" in status and "round " in table
    assert "prompt refinement" in earlier[0][1]
    assert "issues:" not in rounds and not any(word in rounds + table + status for word in INTERNAL_WORDS)
    assert demo.rewrite_reason("issues: extra, relation") == ("Rewritten to address what the judge found wrong: "
                                                             "shapes nobody asked for; how the shapes are placed "
                                                             "against each other.")


def test_noise_search_and_cascade_run_from_the_page(tmp_path, world_generator_dir):
    path = preset(tmp_path, world_generator_dir, "test-brightness", weights="technical=1,aesthetic=1,alignment=1")
    prompt = "a red circle on the left"
    *_, rounds, table, _, _ = run(prompt, 2, 0, 1, 1, 1, path, [], strategy="zero-order", neighbours=2, rounds=2)
    assert "Random starting noises" in rounds and "Searched near the starting noise of Picture" in rounds
    status, *_, table, _, _ = run(prompt, 4, 0, 1, 1, 1, path, [], strategy="cascade", keep=2)
    assert table.count("left out after the quick first look") == 2 and "Best: Picture" in status


def test_the_budget_limits_the_run(tmp_path, world_generator_dir):
    path = preset(tmp_path, world_generator_dir, "test-brightness")
    *_, gallery, _, _, _, _ = run("a red circle", 8, 0, 1, 1, 0, path, [], budget=3 * 4)  # 4 NFEs a picture
    assert len(gallery) == 3


# ---------------------------------------------------------------- same inputs and seed, same ranking
def test_the_run_seed_reaches_a_sampling_scorer_as_in_the_cli(tmp_path, world_generator_dir):
    """The demo loads its scorer once, yet each request's sampled judgements draw from that request's
    seed: the same inputs and seed give the same ranking and reasons, which are those of the run builder
    (the CLI) at that seed."""
    from reward_model.backends import EMBEDDED_DIR
    from t2i_guidance.search.run_builder import RunRequest, build_run

    if not (EMBEDDED_DIR / "config.json").exists():
        pytest.skip("embedded scorer not shipped")
    path = tmp_path / "sampled.json"
    path.write_text(json.dumps({
        "description": "test", "generator": str(world_generator_dir), "scorer": "omniquality-r",
        "scorer_kwargs": {"model": "embedded"}, "num_inference_steps": 2,
        "guidance_scale": 2.0, "weights": "technical=1,aesthetic=1,alignment=0",
    }))
    prompt = "a red circle on the left"

    def judged(seed: int) -> tuple[list[str], dict]:
        *_, best_file, _, _, _, _, _ = run(prompt, 2, seed, 1, 1, 0, str(path), [])
        data = json.loads((Path(best_file).parents[1] / "result.json").read_text())
        return data["ranking"], {c["seed"]: {d: s["raw"] for d, s in c["scores"].items()} for c in data["candidates"]}

    first = judged(5)
    other = judged(6)
    assert judged(5) == first  # again, after another seed: same ranking, same reasons
    assert other[1][6] != first[1][6]  # the picture of seed 6 is in both runs, judged under each run's seed
    cli = build_run(RunRequest(preset=str(path), strategy_options={"n": 2}, seed=5))(prompt, seed=5)
    assert [c.id for c in cli.ranking] == first[0]
    assert {c.candidate.seed: {d: s.raw for d, s in c.scores.items()} for c in cli.candidates} == first[1]

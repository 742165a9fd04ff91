"""The shipped tiny OmniQuality-R (reward_model/weights/tiny-omniquality-r): it loads offline from the
package and answers in the trained format on the world's pictures. How well it judges is measured in
benchmarks (learning_proof, guided_vs_unguided), not asserted here."""

from __future__ import annotations

import json

import pytest

from reward_model.backends import EMBEDDED_DIR, resolve_model
from reward_model.interface import DIMENSIONS, ImageItem, ScoreStatus
from reward_model.scorer import OmniQualityScorer
from t2i_guidance.world.captions import canonical_caption
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import sample_split_scene

pytestmark = pytest.mark.skipif(not (EMBEDDED_DIR / "config.json").exists(), reason="embedded scorer not shipped")


def test_shipped_weights_are_small_and_say_where_they_came_from():
    size = sum(f.stat().st_size for f in EMBEDDED_DIR.iterdir())
    assert size < 10_000_000
    assert json.loads((EMBEDDED_DIR / "provenance.json").read_text())["base_vlm"].endswith("world-base-vlm")
    assert (EMBEDDED_DIR / "provenance.json").is_file()
    assert resolve_model("embedded").max_new_tokens >= 160  # room for the trained rationale


def test_embedded_scorer_reads_world_pictures_in_its_trained_format():
    scorer = OmniQualityScorer("embedded", decoding="greedy", batch_size=8)
    scenes = [sample_split_scene(700 + i, held_out=True) for i in range(3)]
    for size in (32, 112):  # the generator's size and the training size
        items = [ImageItem(f"s{i}-{size}", render_scene(s, size)) for i, s in enumerate(scenes)]
        for item, scene in zip(items, scenes, strict=True):
            table = scorer.score([item], canonical_caption(scene), list(DIMENSIONS))[item.id]
            for dimension in DIMENSIONS:
                result = table[dimension]
                assert result.status is ScoreStatus.OK, (dimension, result.error)
                assert 0.0 <= result.score <= 5.0
                assert result.rationale.startswith("I see"), result.rationale  # it describes the picture first
                if dimension == "alignment":  # then restates the prompt and checks each element
                    assert "The prompt asks for" in result.rationale and "elements are met" in result.rationale


def test_the_default_preset_runs_the_shipped_generator_and_scorer_end_to_end(tmp_path, capsys):
    from t2i_guidance import bestofn
    from t2i_guidance.registries import DEFAULT_PRESET, load_preset

    assert DEFAULT_PRESET == "embedded" and load_preset(DEFAULT_PRESET).scorer == "omniquality-r"
    out = tmp_path / "run"
    code = bestofn.main(["--prompt", "a red circle above a small blue square on a white background",
                         "--n", "3", "--steps", "4", "--out", str(out), "--quiet"])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["preset"] == "embedded" and result["best"] in result["ranking"]
    for candidate in result["candidates"]:
        assert set(candidate["scores"]) == {"technical", "aesthetic", "alignment"}  # all three weighted
        for score in candidate["scores"].values():
            assert score["status"] != "ok" or score["rationale"].startswith("I see")
    assert (out / "best.png").is_file() and (out / "index.html").is_file()
    assert "best:" in capsys.readouterr().out

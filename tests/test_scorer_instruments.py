"""The scorer instruments (probes, faithfulness, stability) end to end on a tiny Qwen2.5-VL built from config."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import faithfulness, probes, stability
from reward_model.tiny_vlm import save_tiny_scorer
from t2i_guidance.world.claims import sentences


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_tiny_scorer(tmp_path_factory.mktemp("tiny-scorer"), hidden_size=32, num_layers=1,
                                vision_depth=1, num_heads=2))


@pytest.mark.parametrize("script", [probes, faithfulness, stability])
def test_a_missing_model_is_one_error_line_and_exit_2(script, tmp_path, capsys):
    assert script.main(["--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_probe_reads_a_separable_fact_and_skips_missing_labels():
    rng = np.random.default_rng(0)
    labels = [["a", "b", "c"][i % 3] for i in range(90)] + [None] * 10
    x = rng.normal(size=(100, 5))
    x[:90, 0] += 10 * np.array([i % 3 for i in range(90)])  # the fact is written on feature 0
    result = probes.probe(x, labels, seed=0)
    assert result["fit"] + result["test"] == 90
    assert result["accuracy"] >= 0.9
    noise = probes.probe(rng.normal(size=(100, 5)), labels, seed=0)
    assert noise["accuracy"] < 0.8
    assert 0.0 <= noise["majority"] <= 1.0


def test_probes_end_to_end(tiny_model, tmp_path):
    out = tmp_path / "probes_tiny"
    assert probes.main(["--model", tiny_model, "--single", "40", "--pairs", "12", "--generated", "0",
                        "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert "--single 40" in report["command"] and report["command"] in out.with_suffix(".md").read_text()
    single = report["table"]["single"]
    assert set(single) >= {"colour", "shape", "size", "position", "background", "damage kind", "blur level"}
    assert set(single["colour"]["probes"]) == set(probes.FEATURES)
    assert single["background"]["probes"]["pixels"] >= 0.9  # three flat colours: trivially read from pixels
    assert "left/top colour" in report["table"]["pairs"]


def test_tower_features_are_the_merged_visual_tokens(tiny_model):
    reader = probes.FeatureReader(tiny_model)
    images = [Image.new("RGB", (32, 32), (200, 10, 10)), Image.new("RGB", (32, 32), (10, 10, 200))]
    tower = reader.tower(images)
    hidden = reader.model.config.text_config.hidden_size
    grid = reader.processor.image_processor(images=images[:1], return_tensors="pt")["image_grid_thw"][0]
    tokens = int(grid.prod()) // 4  # patches after the 2x2 merge: what the language model receives
    assert tower.shape == (2, tokens * hidden)
    assert not np.allclose(tower[0], tower[1])
    state = reader.answer_state(images, "alignment")
    assert state.shape == (2, hidden)


def test_faithfulness_accounts_for_every_sentence(tiny_model, tmp_path):
    out = tmp_path / "faith_tiny"
    assert faithfulness.main(["--model", tiny_model, "--prompts", "1", "--renders", "2", "--max-new-tokens", "24",
                              "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["rows"]) == 3 * 3
    for row in report["rows"]:
        counted = len({c["sentence"] for c in row["claims"]}) + len(row["unparsed"]) + len(row["other"])
        assert counted == len(sentences(row["rationale"]))
    summary = report["summary"]["alignment"]
    assert summary["rationales"] == 3
    assert summary["answer_parse_failures"] == sum(r["status"] != "ok" for r in report["rows"]
                                                   if r["dimension"] == "alignment")


def test_summary_counts_true_claims_and_parse_failures():
    rows = [
        {"status": "ok", "claims": [{"kind": "object", "sentence": "I see a red circle.", "true": True,
                                     "attributes": {"colour": True, "shape": True}, "subject": ""},
                                    {"kind": "restatement", "sentence": "The prompt asks for x.", "true": False,
                                     "attributes": {}, "subject": ""}],
         "unparsed": ["I see purple."], "other": ["Overall good."], "seen_objects": 2, "named_objects": 1},
        {"status": "parse_failure", "claims": [{"kind": "background", "sentence": "I see a white background.",
                                                "true": False, "attributes": {}, "subject": ""}],
         "unparsed": [], "other": [], "seen_objects": 1, "named_objects": 0},
    ]
    s = faithfulness.summarise(rows)
    assert s["perception_true"] == 0.5 and s["perception_claims"] == 2
    assert s["restatements_true"] == 0.0 and s["claims_per_rationale"] == 1.5
    assert s["claim_parse_failure_rate"] == 0.25 and s["answer_parse_failures"] == 1
    assert s["objects_named_truly"] == pytest.approx(1 / 3)


def test_variants_look_the_same_but_are_not_the_same_bytes():
    from t2i_guidance.world.render import render_clean
    from t2i_guidance.world.scene import sample_scene

    image = render_clean(sample_scene(3), 32)
    shown = stability.variants(image)
    original = np.asarray(image)
    assert np.array_equal(np.asarray(shown["png"]), original)
    shifted = np.asarray(shown["shift1px"])
    assert np.array_equal(shifted[:, 1:], original[:, :-1]) and np.array_equal(shifted[:, 0], original[:, 0])
    for lossy in ("webp90", "jpeg90"):
        difference = np.abs(np.asarray(shown[lossy], dtype=int) - original).mean()
        assert 0 < difference < 8


def test_stability_end_to_end(tiny_model, tmp_path):
    out = tmp_path / "stab_tiny"
    assert stability.main(["--model", tiny_model, "--images", "2", "--max-new-tokens", "8",
                           "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["decodings"]) == set(stability.DECODINGS)
    for decoding in report["decodings"].values():
        assert decoding["scores"] == 4 * 2 * 3
        assert set(decoding["change"]) == set(stability.VARIANTS)
    assert "Command: `python -m benchmarks.stability" in out.with_suffix(".md").read_text()

"""The 7B stand-in: Qwen2.5-VL-7B's shapes around the embedded scorer's tokenizer, and a run of the same
path at tiny shapes on the CPU."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForImageTextToText

from benchmarks.gpu_standin_scorer import main, standin_config
from reward_model.backends import resolve_model


def test_the_standin_has_the_7b_s_shapes_and_the_tokenizer_s_ids():
    source = resolve_model("embedded").source
    config = standin_config(source, "7b")
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    assert 8.2e9 < sum(p.numel() for p in model.parameters()) < 8.4e9  # Qwen2.5-VL-7B: 8.3B parameters
    assert len(config.text_config.layer_types) == config.text_config.num_hidden_layers == 28
    assert config.image_token_id == standin_config(source, "tiny").image_token_id  # the processor's ids


def test_a_tiny_run_scores_every_picture_on_three_dimensions(tmp_path):
    out = tmp_path / "standin.json"
    assert main(["--device", "cpu", "--scale", "tiny", "--pictures", "2", "--side", "56",
                 "--max-new-tokens", "4", "--repeats", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["requests"] == 6 and report["pictures_per_second"] > 0
    assert 6 <= report["generated_tokens"] <= 6 * 4
    assert report["planned_peak_gb"] is None  # the plan's 7B estimate is only compared at the 7B's shapes

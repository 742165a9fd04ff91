"""Shipping a trained tiny scorer as the `embedded` preset."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from reward_model.backends import resolve_model
from reward_model.export_embedded import export_embedded
from tests.train_support import make_tiny_model


def visual_grid(processor, side: int) -> list[int]:
    out = processor.image_processor(images=[Image.new("RGB", (side, side), (90, 20, 200))], return_tensors="pt")
    return out["image_grid_thw"][0].tolist()


def test_export_pins_the_trained_image_size_and_resolves_as_the_embedded_preset(tmp_path, monkeypatch):
    from transformers import AutoProcessor

    source = make_tiny_model(tmp_path / "trained")
    before = AutoProcessor.from_pretrained(source)
    assert visual_grid(before, 32) != [1, 8, 8]  # the saved bounds alone shrink a 32 px picture
    target = tmp_path / "weights" / "tiny-omniquality-r"
    export_embedded(source, target, side=112, provenance={"training": {"steps": 3}})

    after = AutoProcessor.from_pretrained(target)
    assert visual_grid(after, 32) == [1, 8, 8]  # the generator's 32 px pictures reach 112 px, 16 tokens
    assert visual_grid(after, 112) == [1, 8, 8]
    assert json.loads((target / "provenance.json").read_text())["training"] == {"steps": 3}
    assert not (tmp_path / "weights" / "tiny-omniquality-r.partial").exists()

    monkeypatch.setattr("reward_model.backends.EMBEDDED_DIR", target)
    assert resolve_model("embedded").source == str(target.resolve())


def test_export_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        export_embedded(tmp_path, tmp_path / "out")


def test_bf16_export_stores_half_the_bytes_and_loads_back_in_fp32_with_the_cache_on(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    source = make_tiny_model(tmp_path / "trained")
    full, half = export_embedded(source, tmp_path / "full"), export_embedded(source, tmp_path / "half", weights_dtype="bf16")
    size = lambda folder: (folder / "model.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.55 * size(full)
    original = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    loaded = AutoModelForImageTextToText.from_pretrained(half, dtype=torch.float32)
    assert loaded.config.text_config.use_cache
    for (name, weight), (_, stored) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert stored.dtype == torch.float32
        assert torch.equal(stored, weight.to(torch.bfloat16).float()), name  # rounded once, nothing else
    with pytest.raises(ValueError, match="fp32 or bf16"):
        export_embedded(source, tmp_path / "odd", weights_dtype="fp16")

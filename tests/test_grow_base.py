"""Growing a trained base VLM's language model: deeper is the same model at step 0, wider keeps the tower."""

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from reward_model.tiny_vlm import build_tiny_model, build_tiny_processor
from t2i_guidance.world.training import train_base_vlm as base
from t2i_guidance.world.training.grow_base import grow

TINY = {"hidden_size": 32, "num_layers": 2, "vision_depth": 1, "num_heads": 2}


@pytest.fixture(scope="module")
def trained():
    """A tiny base whose every weight is non-zero and distinct, so a wrong copy shows in the logits."""
    processor = build_tiny_processor(min_pixels=112 * 112, max_pixels=112 * 112)
    model = build_tiny_model(processor, seed=3, **TINY).eval()
    model.config.vision_config.window_size = 112  # as pretraining leaves it; the grown model must keep it
    model.model.visual.window_size = 112
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    sample = base.BaseSamples(None)(0)
    batch = base.collate([sample], processor)
    batch.pop("perception"), batch.pop("labels")
    return model, batch


def test_a_deeper_model_computes_what_the_base_did(trained):
    model, batch = trained
    grown = grow(model, num_layers=6).eval()
    assert grown.config.text_config.num_hidden_layers == 6 and len(grown.config.text_config.layer_types) == 6
    assert grown.config.vision_config.window_size == 112
    with torch.no_grad():
        torch.testing.assert_close(grown(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-5)
    layers = grown.model.language_model.layers
    assert layers[1].self_attn.o_proj.weight.abs().sum() == 0 and layers[2].mlp.down_proj.weight.abs().sum() == 0
    assert layers[1].self_attn.q_proj.weight.equal(layers[0].self_attn.q_proj.weight)  # a copy of its layer
    assert layers[3].self_attn.o_proj.weight.equal(model.model.language_model.layers[1].self_attn.o_proj.weight)
    # The added layers learn: their zeroed projections get gradients.
    grown.train()
    grown(**batch, labels=batch["input_ids"]).loss.backward()
    assert layers[1].self_attn.o_proj.weight.grad.abs().sum() > 0


def test_a_wider_model_keeps_the_vision_tower(trained):
    model, batch = trained
    grown = grow(model, hidden_size=64).eval()
    assert grown.config.text_config.hidden_size == 64 and grown.config.vision_config.out_hidden_size == 64
    assert grown.config.text_config.rope_parameters["mrope_section"] == [6, 5, 5]  # head dim 32
    old, new = model.model.visual, grown.model.visual
    assert new.blocks[0].attn.qkv.weight.equal(old.blocks[0].attn.qkv.weight)
    assert new.merger.mlp[0].weight.equal(old.merger.mlp[0].weight)
    assert new.merger.mlp[2].weight.shape == (64, old.merger.mlp[2].weight.shape[1])
    with torch.no_grad():
        logits = grown(**batch).logits
    assert logits.shape[-1] == model(**batch).logits.shape[-1] and torch.isfinite(logits).all()


def test_growth_refuses_a_depth_that_is_not_a_multiple(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="multiple"):
        grow(model, num_layers=3)


def test_pretraining_continues_a_grown_base_and_says_so(tmp_path):
    start = base.train(tmp_path / "start", steps=1, batch_size=2, progress=False, side=112,
                       sizes={"hidden_size": 32, "num_layers": 1, "vision_depth": 1, "num_heads": 2})
    assert base.main(["--out", str(tmp_path / "deeper"), "--steps", "1", "--batch-size", "2", "--side", "112",
                      "--init-from", str(start), "--num-layers", "2"]) == 0
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "deeper" / "final")
    assert model.config.text_config.num_hidden_layers == 2 and model.config.text_config.hidden_size == 32
    provenance = json.loads((tmp_path / "deeper" / "final" / "provenance.json").read_text())
    assert provenance["grown_to"] == {"num_layers": 2} and provenance["sizes"]["num_layers"] == 2

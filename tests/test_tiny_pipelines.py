"""The tiny test pipelines are what they claim: real family classes, small, evaluating, with working tokenizers."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_pipelines import FAMILIES, build_tiny_pipeline
from tests.tiny_tokenizers import CAPTIONS, _learn_bpe, clip_tokenizer, gemma_tokenizer, t5_tokenizer


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_pipeline_is_small_cached_and_ready_for_inference(family):
    pipeline = build_tiny_pipeline(family)
    assert build_tiny_pipeline(family) is pipeline  # built once per session
    modules = [m for m in pipeline.components.values() if isinstance(m, torch.nn.Module)]
    assert modules
    assert all(not m.training for m in modules)  # dropout off, as after from_pretrained
    parameters = [p for m in modules for p in m.parameters()]
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in parameters)
    assert sum(p.numel() for p in parameters) < 1_000_000


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown family"):
        build_tiny_pipeline("sd2")


def test_tokenizers_encode_and_decode_the_captions():
    caption = CAPTIONS[0]
    clip = clip_tokenizer()
    ids = clip(caption).input_ids
    assert (ids[0], ids[-1]) == (clip.bos_token_id, clip.eos_token_id)
    assert clip.decode(ids, skip_special_tokens=True) == caption
    assert len(ids) < len(caption.split()) + 6  # learned merges make whole words, not characters
    t5 = t5_tokenizer()
    t5_ids = t5(caption).input_ids
    assert t5.unk_token_id not in t5_ids and t5_ids[-1] == t5.eos_token_id
    assert t5.decode(t5_ids, skip_special_tokens=True) == caption
    gemma = gemma_tokenizer()
    assert gemma.decode(gemma(caption).input_ids, skip_special_tokens=True) == caption
    # A word never seen in training still encodes (byte fallback / characters), it is not dropped.
    assert gemma.decode(gemma("a zebra!").input_ids, skip_special_tokens=True) == "a zebra!"


def test_bpe_is_deterministic_and_merges_the_most_frequent_pair_first():
    words = [("a", "b", "c"), ("a", "b"), ("b", "c"), ("a", "b")]
    assert _learn_bpe(words, 2) == _learn_bpe(list(words), 2)
    assert _learn_bpe(words, 2)[0] == ("a", "b")  # 3 occurrences, against 2 for (b, c)

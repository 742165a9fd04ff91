"""Chat-LLM rewriters: a tiny causal LM built from config drives refinement through transformers; the
vLLM rewriter's requests are built (vLLM itself needs a GPU machine)."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from reward_model.tiny_vlm import build_tiny_tokenizer
from t2i_guidance.search import build_strategy
from t2i_guidance.search.llm_rewriter import (
    SYSTEM,
    TransformersRewriter,
    VLLMRewriter,
    build_messages,
    parse_rewrite,
)
from t2i_guidance.search.rewriting import CandidateFeedback, RewriteRequest, build_rewriter
from tests.search_fixtures import PROMPT, SETTINGS, RecordingScorer, world_generator


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    """A 2-layer Qwen2 chat model with a locally trained tokenizer and chat template, saved like a hub model."""
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("chat") / "tiny-chat"
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def request() -> RewriteRequest:
    feedback = [CandidateFeedback("c001", PROMPT, 2.5, {"alignment": 2.5, "aesthetic": None},
                                  {"alignment": "the blue square is missing", "aesthetic": "parse failure"})]
    history = [{"round": 0, "prompt": PROMPT, "best_value": 2.5}]
    return RewriteRequest(PROMPT, PROMPT, feedback, history, negative_prompt="blurry", guidance_scale=3.0)


def test_messages_carry_original_current_scores_rationales_and_history():
    messages = build_messages(request())
    assert messages[0] == {"role": "system", "content": SYSTEM}
    user = messages[1]["content"]
    for text in (f"Original prompt: {PROMPT}", "Current negative prompt: blurry", "alignment 2.50",
                 "the blue square is missing", "aesthetic unscored", "round 0"):
        assert text in user


def test_parse_rewrite_reads_the_last_prompt_block_and_falls_back_to_the_first_line():
    parsed = parse_rewrite("<think>hmm</think><prompt>old</prompt> then <prompt> a red  circle </prompt>"
                           "<negative>noise</negative>")
    assert parsed.prompt == "a red circle" and parsed.negative_prompt == "noise"
    assert parse_rewrite("\n  a blue square\nmore words").prompt == "a blue square"
    assert parse_rewrite("   \n ") is None and parse_rewrite("<prompt>  </prompt>") is None


def test_transformers_rewriter_by_folder_drives_refinement(tiny_chat_model):
    rewriter = build_rewriter(f"transformers:{tiny_chat_model}", max_new_tokens=24)
    assert isinstance(rewriter, TransformersRewriter)
    proposal = rewriter.rewrite(request())
    assert proposal is None or isinstance(proposal.prompt, str)
    assert proposal == rewriter.rewrite(request())  # greedy: same inputs, same rewrite
    # An untrained model writes gibberish: refinement rejects it, logs why, and still finishes its rounds.
    result = build_strategy("refine", world_generator(), RecordingScorer(), weights={"aesthetic": 1.0},
                            rewriter=rewriter, per_round=2, max_rounds=2, patience=5)(PROMPT, SETTINGS)
    assert len(result.rounds) == 2 and result.best is not None
    assert [e["event"] for e in result.events] == ["rewrite_rejected"]


def test_vllm_rewriter_builds_its_request_without_vllm():
    rewriter = build_rewriter("vllm:org/some-chat-model", max_new_tokens=64, seed=3)
    assert isinstance(rewriter, VLLMRewriter) and rewriter._llm is None
    messages, sampling = rewriter.build_request(request())
    assert messages == build_messages(request())
    assert sampling == {"max_tokens": 64, "temperature": 0.0, "seed": 3}


@pytest.mark.parametrize("spec", ["gpt", "transformers:", "vllm", "world:x"])
def test_unknown_rewriter_names_are_refused(spec):
    with pytest.raises(ValueError, match="unknown rewriter"):
        build_rewriter(spec)

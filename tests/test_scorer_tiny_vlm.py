"""The tiny Qwen2.5-VL: tokenizer, chat rendering against the specification, save/load offline."""

from __future__ import annotations

import pytest
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

from reward_model.backends import Request, ScorerModel
from reward_model.backends.transformers_backend import TransformersBackend
from reward_model.tiny_vlm import REASONING_TAGS, SPECIAL_TOKENS, build_tiny_tokenizer
from tests.scorer_fixtures import random_image, random_scorer_dir  # noqa: F401 - fixture

# Written out from shared/reference/omniquality-r.md, not built from reward_model.backends.chat_messages.
SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think><answer> answer here </answer>"
)
INSTRUCTIONS = {
    "technical": (
        "Give a technical quality score for this picture between 0 and 5 (float, two decimal places). "
        "A rating of 0 represents very poor quality, while 5 represents excellent quality."
    ),
    "aesthetic": (
        "Provide a float rating between 0 and 5 for the overall aesthetics of this image, rounded to "
        "two places. A rating of 0 represents very poor aesthetic quality, while 5 represents excellent "
        "aesthetic quality."
    ),
    "alignment": (
        'Judge the image alignment with the prompt: "a red circle"\nPlease evaluate how well the image '
        "matches each element of provided prompt.\n\nAnd answer with the final alignment rating.\nRate it "
        "from 0 to 5 (float, 2 decimals). A rating of 0 represents very poor alignment level, while 5 "
        "represents excellent alignment level."
    ),
}


def expected_render(dimension: str) -> str:
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|image_pad|><|vision_end|>{INSTRUCTIONS[dimension]}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.fixture(scope="module")
def backend(random_scorer_dir):  # noqa: F811
    return TransformersBackend(ScorerModel(random_scorer_dir, "random", None, None, 16), device="cpu")


def test_digits_are_single_tokens_so_a_score_reads_digit_by_digit():
    tokenizer = build_tiny_tokenizer()
    assert tokenizer.tokenize("3.47") == ["3", ".", "4", "7"]
    assert tokenizer.tokenize("<answer> 12.05 </answer>")[2:7] == ["1", "2", ".", "0", "5"]


def test_special_tokens_and_reasoning_tags():
    tokenizer = build_tiny_tokenizer()
    ids = [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS + REASONING_TAGS]
    assert len(set(ids)) == len(ids) and tokenizer.unk_token_id not in ids
    text = "<think> a red circle </think><answer> 3.47 </answer><|im_end|>"
    encoded = tokenizer(text)["input_ids"]
    # Tags are one token each and survive decoding with special tokens skipped; <|im_end|> does not.
    assert sum(tokenizer.convert_ids_to_tokens(encoded).count(tag) for tag in REASONING_TAGS) == 4
    assert tokenizer.decode(encoded, skip_special_tokens=True) == text.replace("<|im_end|>", "")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_tokenizer_is_reproducible():
    assert build_tiny_tokenizer().get_vocab() == build_tiny_tokenizer().get_vocab()


@pytest.mark.parametrize("dimension", ["technical", "aesthetic", "alignment"])
def test_rendered_prompt_matches_the_specification(backend, dimension):
    request = Request(random_image(0), dimension, "a red circle")
    assert backend.render(request) == expected_render(dimension)


def test_saved_scorer_reloads_offline(random_scorer_dir):  # noqa: F811
    processor = AutoProcessor.from_pretrained(random_scorer_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(random_scorer_dir)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.text_config.vocab_size == len(processor.tokenizer)


def test_image_tokens_follow_the_pixel_bounds(random_scorer_dir):  # noqa: F811
    # 28x28 pixels make one visual token; bounds of 16 tokens put a 500x500 picture at 112x112.
    bounded = ScorerModel(random_scorer_dir, "bounded", 4 * 28 * 28, 16 * 28 * 28, 16)
    backend = TransformersBackend(bounded, device="cpu")
    request = Request(random_image(1, (500, 500)), "technical", None)
    inputs = backend.processor(text=[backend.render(request)], images=[request.image], return_tensors="pt")
    pad = backend.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == pad).sum()) == 16
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]

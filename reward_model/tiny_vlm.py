"""A tiny Qwen2.5-VL built from config, with a tokenizer trained here: no hub, no downloaded weights.

It has the real model's architecture, special tokens, chat template and processor classes, so every code
path written for the released 7B checkpoint (chat rendering, batched generation, logits reading, saving
and loading) runs unchanged on it. Digits are always single tokens (as in Qwen's own pre-tokenizer), so
a score such as "3.47" is read digit by digit; the reasoning tags are single, non-special tokens, so they
survive decoding with special tokens skipped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    pre_tokenizers,
    trainers,
)
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from reward_model.backends import (
    AESTHETIC_INSTRUCTION,
    ALIGNMENT_INSTRUCTION,
    SYSTEM_PROMPT,
    TECHNICAL_INSTRUCTION,
)

# Qwen's special tokens, in the order their ids are assigned here (0..6).
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
IMAGE_PAD, VIDEO_PAD = "<|image_pad|>", "<|video_pad|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]
# The released model writes these as ordinary text; here each is one token so a tiny model learns the
# format quickly. They are not "special": decoding with skip_special_tokens keeps them.
REASONING_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]

# Small images: 112x112 becomes 8x8 patches of 14 -> 16 visual tokens after the 2x2 merge.
TINY_MIN_PIXELS = 4 * 28 * 28
TINY_MAX_PIXELS = 16 * 28 * 28

# Qwen2's pre-tokenizer split: letters runs, single digits, punctuation runs, whitespace runs.
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

# The Qwen2.5-VL chat format: a default system turn when none is given, each image as
# <|vision_start|><|image_pad|><|vision_end|> in place, content either a string or a list of parts.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_COLOURS = "red orange yellow green blue purple pink brown black white grey gray cyan magenta"
_SHAPES = "circle circles square squares triangle triangles star stars rectangle ellipse hexagon"
_WORDS = (
    "above below left right of next to small large big tiny medium on a an the background image picture "
    "I see there is are one two three four five no and with in at top bottom centre center middle corner "
    "colour color shape size position count matches match does not do wrong correct missing extra "
    "sharp blurry blur noise noisy compression artefacts artifacts jpeg blocky clean crisp edges detail "
    "balanced unbalanced cluttered empty margin margins harmony harmonious clash contrast composition "
    "pleasing calm busy simple centred off-centre quality score rating aesthetic technical alignment "
    "prompt element elements object objects so therefore overall good poor fair excellent very slightly "
    "strong weak mild heavy visible the because but which it its this that than more less most least"
)


def _tokenizer_corpus() -> list[str]:
    """Text the BPE merges are learned from: the instruction strings and the world's vocabulary."""
    lines = [SYSTEM_PROMPT, TECHNICAL_INSTRUCTION, AESTHETIC_INSTRUCTION, ALIGNMENT_INSTRUCTION]
    colours, shapes, words = _COLOURS.split(), _SHAPES.split(), _WORDS.split()
    for i, colour in enumerate(colours):
        for j, shape in enumerate(shapes):
            other = colours[(i + j + 3) % len(colours)]
            lines.append(f"a {colour} {shape} above a small {other} square on a white background")
            lines.append(f"<think> I see a {colour} {shape} on the left. The colour matches. </think>")
            lines.append(f"<answer> {(i * 37 + j * 11) % 500 / 100:.2f} </answer>")
    lines.extend(" ".join(words[k : k + 12]) for k in range(0, len(words), 6))
    # The world's description forms (t2i_guidance/world/describe.py), so they tokenize compactly.
    lines += [
        "I see a large red circle at the top. I see a white background. I see 2 small stray blobs.",
        "Blur level 2, noise level 0, compression level 1.",
        "The prompt asks for a red circle above a small blue square on a gray background.",
        "4 of 6 elements are met. Every element matches. I find no problem.",
        "Describe the picture: every object with its size, colour, shape and position, the background, "
        "and any damage. What does the prompt ask for, and what do you see?",
    ]
    # Repetition weights the frequent phrases so they become single tokens.
    return lines * 4


def build_tiny_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE with Qwen's special tokens, digits split one per token."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in REASONING_TAGS])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_processor(
    min_pixels: int = TINY_MIN_PIXELS, max_pixels: int = TINY_MAX_PIXELS, vocab_size: int = 1024
) -> Qwen2_5_VLProcessor:
    """The Qwen2.5-VL processor around the local tokenizer; images are resized within the pixel bounds."""
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=build_tiny_tokenizer(vocab_size),
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def mrope_section(hidden_size: int, num_heads: int) -> list[int]:
    """Multimodal RoPE's split of half a head's dimensions over (time, height, width)."""
    if hidden_size % num_heads or (hidden_size // num_heads) % 2:
        raise ValueError("hidden_size / num_heads must be an even integer")
    half = hidden_size // num_heads // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def build_tiny_model(
    processor: Qwen2_5_VLProcessor,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 3,
    vision_depth: int = 3,
    vision_hidden_size: int | None = None,
    num_heads: int = 4,
) -> Qwen2_5_VLForConditionalGeneration:
    """A randomly initialised Qwen2.5-VL whose vocabulary and special ids match `processor`."""
    tokenizer = processor.tokenizer
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vision_hidden = vision_hidden_size or hidden_size
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": max(1, num_heads // 2),
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": mrope_section(hidden_size, num_heads),
            },
            "bos_token_id": ids[ENDOFTEXT],
            "eos_token_id": ids[IM_END],
            "pad_token_id": ids[ENDOFTEXT],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_hidden * 2,
            "num_heads": num_heads,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [vision_depth - 1],
        },
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    generation = model.generation_config
    generation.eos_token_id = [ids[IM_END], ids[ENDOFTEXT]]
    generation.pad_token_id = ids[ENDOFTEXT]
    generation.bos_token_id = ids[ENDOFTEXT]
    generation.do_sample = False
    model.eval()
    return model


def save_tiny_scorer(
    path: str | Path,
    seed: int = 0,
    min_pixels: int = TINY_MIN_PIXELS,
    max_pixels: int = TINY_MAX_PIXELS,
    **sizes: int,
) -> Path:
    """Build processor and model and save both into `path`, loadable offline by `from_pretrained`."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    processor = build_tiny_processor(min_pixels=min_pixels, max_pixels=max_pixels)
    model = build_tiny_model(processor, seed=seed, **sizes)
    processor.save_pretrained(target)
    model.save_pretrained(target)
    return target

"""Shared fixtures for the scorer tests: tiny Qwen2.5-VL scorers saved to disk, no hub.

`trained_scorer_dir` is a tiny model briefly fine-tuned (real teacher-forced training, a few seconds)
so that its answers are known in distribution:
- technical: "<think> sharp </think><answer> 3.47 </answer>" 70 % of the time, "... 2.47 ..." 30 %;
  its probability-weighted score is therefore about 0.7*3 + 0.3*2 + 0.47 = 3.17.
- alignment: always "<think> the colour matches </think><answer> 1.25 </answer>".
- aesthetic: always "<think> busy </think><answer> 7.50 </answer>" (out of range: a parse failure).
- technical with the answer-only prefix (empty think block): " 4.10 </answer>".
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reward_model.backends import chat_messages
from reward_model.scorer import ANSWER_ONLY_PREFIX
from reward_model.tiny_vlm import build_tiny_model, build_tiny_processor

TINY_SIZES = {"hidden_size": 64, "num_layers": 2, "vision_depth": 2}
# Smallest images: 56x56 = 4x4 patches -> 4 visual tokens.
TINY_PIXELS = {"min_pixels": 56 * 56, "max_pixels": 56 * 56}
TRAIN_PROMPT = "a red circle above a blue square"

TARGETS = {
    "technical": [
        ("<think> sharp </think><answer> 3.47 </answer>", 7),
        ("<think> sharp </think><answer> 2.47 </answer>", 3),
    ],
    "alignment": [("<think> the colour matches </think><answer> 1.25 </answer>", 5)],
    "aesthetic": [("<think> busy </think><answer> 7.50 </answer>", 5)],
    "answer-only": [(ANSWER_ONLY_PREFIX + " 4.10 </answer>", 3)],
}
TRAIN_STEPS, TRAIN_LR = 150, 1e-2


def random_image(seed: int, size: tuple[int, int] = (56, 56)) -> Image.Image:
    pixels = np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _examples(processor) -> list[tuple[str, str, float]]:
    """(rendered prompt, target, weight): the weights are the answer frequencies the model should learn."""
    examples = []
    for key, choices in TARGETS.items():
        dimension = "technical" if key == "answer-only" else key
        prompt = processor.apply_chat_template(
            chat_messages(dimension, TRAIN_PROMPT), tokenize=False, add_generation_prompt=True
        )
        examples += [(prompt, target + "<|im_end|>", float(weight)) for target, weight in choices]
    return examples


def _training_batch(processor, examples, image) -> tuple[dict, torch.Tensor]:
    batch = processor(
        text=[prompt + target for prompt, target, _ in examples],
        images=[image] * len(examples),
        padding=True,
        return_tensors="pt",
    )
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    for row, (prompt, _, _) in enumerate(examples):
        prompt_length = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
        labels[row, :prompt_length] = -100  # learn the answer, not the question
    return dict(batch), labels


@functools.cache
def _build_trained(directory: str) -> str:
    """Full-batch teacher forcing with a frequency-weighted loss: the exact gradient, so few steps suffice."""
    torch.manual_seed(0)
    processor = build_tiny_processor(**TINY_PIXELS)
    model = build_tiny_model(processor, seed=0, **TINY_SIZES)
    model.train()
    processor.tokenizer.padding_side = "right"
    examples = _examples(processor)
    images = [random_image(seed) for seed in range(3)]
    weights = torch.tensor([weight for _, _, weight in examples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=TRAIN_LR)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / TRAIN_STEPS)
    batches = [_training_batch(processor, examples, image) for image in images]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster than two on a shared machine
    with torch.enable_grad():
        for step in range(TRAIN_STEPS):
            batch, labels = batches[step % len(batches)]
            logits = model(**batch).logits[:, :-1]
            targets = labels[:, 1:]
            token_loss = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
            )
            loss = (token_loss.sum(dim=1) * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    torch.set_num_threads(previous_threads)
    model.eval()
    processor.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


@functools.cache
def _build_random(directory: str) -> str:
    processor = build_tiny_processor(**TINY_PIXELS)
    model = build_tiny_model(processor, seed=1, **TINY_SIZES)
    processor.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


_ROOT = Path(tempfile.mkdtemp(prefix="scorer-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def trained_scorer_dir() -> str:
    return _build_trained(str(_ROOT / "trained"))


@pytest.fixture(scope="session")
def random_scorer_dir() -> str:
    return _build_random(str(_ROOT / "random"))

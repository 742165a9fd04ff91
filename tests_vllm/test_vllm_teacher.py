"""The CoT teacher through vLLM, checked against transformers on the same weights and picture."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from reward_model.backends import EMBEDDED_DIR
from reward_model.cot.teacher_prompt import teacher_prompt
from reward_model.cot.teacher_registry import build_teacher
from reward_model.cot.teachers import VLLMTeacher
from reward_model.data.schema import IQARecord
from tests_vllm.pictures import make_pictures

MODEL = str(EMBEDDED_DIR)
TOKENS = 64


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[tuple[IQARecord, str]]:
    folder = tmp_path_factory.mktemp("pictures")
    pairs = []
    for index, (picture, task) in enumerate(zip(make_pictures(3), ["technical", "aesthetic", "alignment"], strict=True)):
        path = folder / f"{index}.png"
        picture.save(path)
        prompt = "a red circle above a blue square" if task == "alignment" else None
        pairs.append((IQARecord(image=str(path), task=task, label=3.0, prompt=prompt), str(path)))
    return pairs


def transformers_greedy(record: IQARecord, path: str) -> str:
    from PIL import Image

    processor = AutoProcessor.from_pretrained(MODEL)
    model = AutoModelForImageTextToText.from_pretrained(MODEL, dtype=torch.float32).eval()
    with Image.open(path) as image:
        inputs = processor(images=[image.convert("RGB")], text=[teacher_prompt(processor, record)], return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=TOKENS, repetition_penalty=1.0)
    return processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]


def test_greedy_teacher_writes_what_transformers_writes(records):
    teacher = build_teacher("vllm", model_path=MODEL, temperature=0.0, max_new_tokens=TOKENS)
    assert isinstance(teacher, VLLMTeacher)
    for record, path in records:
        (written,) = teacher.write(record, path, k=1)
        assert written == transformers_greedy(record, path), record.task


def test_sampled_trajectories_are_k_and_reproducible(records):
    record, path = records[0]
    first = VLLMTeacher(MODEL, max_new_tokens=TOKENS, seed=5).write(record, path, k=4)
    second = VLLMTeacher(MODEL, max_new_tokens=TOKENS, seed=5).write(record, path, k=4)
    assert len(first) == 4 and all(isinstance(text, str) and text for text in first)
    assert first == second
    assert len(set(first)) > 1  # temperature 1.0: the four samples are not one greedy answer repeated

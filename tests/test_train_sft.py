import json

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

from reward_model.cot.rejection import RejectionConfig, build_cot_dataset
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.sft import build_sft_dataset, run_sft
from tests.train_support import make_data, make_tiny_model


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    model_dir = make_tiny_model(root / "model")
    data = make_data(root / "data", n=12)
    cot = root / "cot.jsonl"
    build_cot_dataset(data["train"], cot, RuleBasedTeacher(seed=0), RejectionConfig(k=4, tolerance=0.6),
                      progress=False)
    return root, model_dir, cot


def test_loss_falls_on_the_assistant_turn_only(assets):
    root, model_dir, cot = assets
    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = build_sft_dataset(cot)
    collator = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    batch = collator([dict(dataset[i]) for i in range(2)])
    targets = [json.loads(line)["target"] for line in cot.read_text().splitlines()[:2]]
    for row, target in enumerate(targets):
        trained = batch["labels"][row][batch["labels"][row] != -100]
        text = processor.tokenizer.decode(trained)
        assert text.strip().startswith(target) and text.strip().endswith("<|im_end|>")
        assert "Plan:" not in text and "Give a technical quality score" not in text


def test_sft_runs_saves_and_reloads(assets, tmp_path):
    root, model_dir, cot = assets
    out = tmp_path / "sft"
    args = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "max_steps": 3,
            "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "seed": 0}
    run_sft(str(model_dir), str(cot), str(out), args)
    base = AutoModelForImageTextToText.from_pretrained(model_dir)
    tuned = AutoModelForImageTextToText.from_pretrained(out)
    assert AutoProcessor.from_pretrained(out).tokenizer.convert_tokens_to_ids("<think>") is not None
    moved = [n for n, p in tuned.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
    assert moved


def test_sft_with_lora_merges_into_a_plain_checkpoint(assets, tmp_path):
    root, model_dir, cot = assets
    out = tmp_path / "lora"
    args = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "max_steps": 2,
            "per_device_train_batch_size": 4, "learning_rate": 1e-2, "seed": 0}
    run_sft(str(model_dir), str(cot), str(out), args,
            lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    tuned = AutoModelForImageTextToText.from_pretrained(out)  # loads without peft: the adapter was merged
    assert not any("lora" in n for n, _ in tuned.named_parameters())

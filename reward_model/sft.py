"""Supervised fine-tuning on the CoT data with TRL's SFTTrainer.

The dataset is in TRL's conversational prompt-completion form (system + user turn with the image, then
the assistant's plan-free trajectory), so the loss falls on the assistant turn only
(`completion_only_loss`). The paper's 7B settings live in configs/7b_sft.yaml (lr 5e-6, global batch
256, 1 epoch, max length 2048, bf16, ZeRO-2).
"""

from __future__ import annotations

import json
from pathlib import Path

from reward_model.prompts import chat_messages

PAPER_SFT_DEFAULTS = {
    "learning_rate": 5e-6,
    "num_train_epochs": 1,
    "max_length": 2048,
    "bf16": True,
    "completion_only_loss": True,
}


def build_sft_dataset(cot_jsonl: str | Path, limit: int | None = None):
    """Rows {prompt, completion, images} from rejection-sampling output (one row per kept trajectory)."""
    from datasets import Dataset
    from PIL import Image

    rows = []
    with open(cot_jsonl, encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            entry = json.loads(line)
            image_path = Path(entry["image"])
            if not image_path.is_absolute():
                image_path = Path(cot_jsonl).parent / image_path
            with Image.open(image_path) as image:
                picture = image.convert("RGB")
            rows.append({
                "prompt": chat_messages(entry["task"], entry.get("prompt")),
                "completion": [{"role": "assistant", "content": [{"type": "text", "text": entry["target"]}]}],
                "images": [picture],
            })
    if not rows:
        raise ValueError(f"{cot_jsonl} holds no accepted trajectories")
    return Dataset.from_list(rows)


def lora_config(options: dict | None):
    """A peft LoraConfig from the config's `lora` section, or None when LoRA is off."""
    if not options:
        return None
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", **options)


def run_sft(model_path: str, cot_jsonl: str, output_dir: str, args: dict, lora: dict | None = None,
            limit: int | None = None, processor_kwargs: dict | None = None) -> Path:
    """Fine-tune `model_path` on the CoT data; saves model + processor to `output_dir`."""
    from transformers import AutoProcessor
    from trl import SFTConfig, SFTTrainer

    processor = AutoProcessor.from_pretrained(model_path, **(processor_kwargs or {}))
    config = SFTConfig(output_dir=output_dir, **({"completion_only_loss": True} | args))
    trainer = SFTTrainer(
        model=model_path,  # loaded by TRL after the config exists, so ZeRO-3 can shard it at load time
        args=config,
        train_dataset=build_sft_dataset(cot_jsonl, limit),
        processing_class=processor,
        peft_config=lora_config(lora),
    )
    trainer.train()
    save_trained(trainer, processor, output_dir)
    return Path(output_dir)


def save_trained(trainer, processor, output_dir: str | Path) -> None:
    """Save the final weights (LoRA merged into the base, so the result loads like any checkpoint)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        trainer.accelerator.wait_for_everyone()
        model = model.merge_and_unload()
        if trainer.accelerator.is_main_process:
            model.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(output_dir)
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(output_dir)

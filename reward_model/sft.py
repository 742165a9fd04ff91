"""Supervised fine-tuning on the CoT data with TRL's SFTTrainer.

The dataset is in TRL's conversational prompt-completion form (system + user turn with the image, then
the assistant's plan-free trajectory), so the loss falls on the assistant turn only
(`completion_only_loss`). The paper's 7B settings live in configs/7b_sft.yaml (lr 5e-6, global batch
256, 1 epoch, max length 2048, bf16, ZeRO-2).

Images stay on disk until a batch needs them (see data/lazy_images.py). A sample whose image tokens +
prompt + target exceed `max_length` is dropped before training, and the count is logged: TRL would
otherwise truncate it after joining prompt and target, cutting the answer or the image tokens. Bound the
pixels (`processor: {max_pixels: ...}` in the config) to keep more of them.

An entry may carry a `context`: the start of its target, given to the model but not taught (no loss on
those tokens). A drill then shows a rationale whose first claims are fixed and teaches only what must
follow from them (see `ContextMaskingCollator`).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from trl import SFTTrainer

from reward_model.backends import chat_messages
from reward_model.checkpoints import ConvertedCheckpointLoading
from reward_model.data.lazy_images import image_size, image_tokens, lazy_image_table
from reward_model.hub_kernels import without_unreachable_kernels

logger = logging.getLogger(__name__)

PAPER_SFT_DEFAULTS = {
    "learning_rate": 5e-6,
    "num_train_epochs": 1,
    "max_length": 2048,
    "bf16": True,
    "completion_only_loss": True,
}
DIFFICULTIES = ("easy", "hard", "unsolved")
CURRICULA = ("none", "easy_first")


def read_cot_entries(cot_jsonl: str | Path, limit: int | None = None,
                     difficulties: list[str] | None = None) -> list[dict]:
    """The rejection-sampling output, optionally only the records tagged with some `difficulties`."""
    unknown = set(difficulties or ()) - set(DIFFICULTIES)
    if unknown:
        raise ValueError(f"unknown difficulty tag(s) {sorted(unknown)}; choose from {DIFFICULTIES}")
    entries = []
    with open(cot_jsonl, encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(entries) >= limit:
                break
            if not line.strip():
                continue
            entry = json.loads(line)
            if difficulties and entry.get("difficulty") not in difficulties:
                continue
            image_path = Path(entry["image"])
            if not image_path.is_absolute():
                image_path = Path(cot_jsonl).parent / image_path
            entry["image"] = str(image_path)
            entries.append(entry)
    if not entries:
        raise ValueError(f"{cot_jsonl} holds no accepted trajectories" + (f" tagged {difficulties}" if difficulties else ""))
    return entries


def order_for_curriculum(entries: list[dict], curriculum: str, seed: int = 0) -> list[dict]:
    """`easy_first`: every easy record (shuffled), then every hard one (shuffled); `none`: as read."""
    if curriculum not in CURRICULA:
        raise ValueError(f"unknown curriculum {curriculum!r}; choose from {CURRICULA}")
    if curriculum == "none":
        return entries
    rng = random.Random(seed)
    blocks = []
    for tag in DIFFICULTIES:
        block = [e for e in entries if e.get("difficulty", "hard") == tag]
        rng.shuffle(block)
        blocks.extend(block)
    return blocks


def sft_rows(entries: list[dict]) -> list[dict]:
    rows = [{
        "prompt": chat_messages(entry["task"], entry.get("prompt")),
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": entry["target"]}]}],
        "images": [entry["image"]],
    } for entry in entries]
    if any(entry.get("context") for entry in entries):  # one column for all rows: datasets needs it whole
        for row, entry in zip(rows, entries, strict=True):
            context = entry.get("context") or ""
            if not entry["target"].startswith(context):
                raise ValueError(f"an entry's context is not the start of its target: {context[:60]!r}")
            row["context"] = context
    return rows


def context_token_count(tokenizer, target: str, context: str) -> int:
    """How many leading tokens of `target` are its `context`; the context must end where a token ends (a
    cut inside a token would teach half of it)."""
    if not context:
        return 0
    whole = tokenizer(target, add_special_tokens=False)["input_ids"]
    head = tokenizer(context, add_special_tokens=False)["input_ids"]
    if whole[: len(head)] != head:
        raise ValueError(f"the context does not end on a token boundary of its target: ...{context[-40:]!r}")
    return len(head)


class ContextMaskingCollator:
    """Wraps TRL's collator: after it builds the labels (completion only), the first `context_tokens` taught
    tokens of each row are untaught too, so a drill's given claims carry no loss."""

    def __init__(self, collator) -> None:
        self.collator = collator

    def __call__(self, examples: list[dict]) -> dict:
        counts = [int(example.pop("context_tokens", 0)) for example in examples]
        batch = self.collator(examples)
        labels = batch["labels"]
        for row, count in enumerate(counts):
            if count:
                taught = (labels[row] != -100).nonzero().flatten()[:count]
                labels[row, taught] = -100
        return batch


def sample_length(processor, row: dict, size: tuple[int, int]) -> int:
    """Tokens of one training sample as the model sees it: chat text with the image placeholder expanded."""
    text = processor.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    placeholder = getattr(processor, "image_token", "<|image_pad|>")
    text_tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    return text_tokens - text.count(placeholder) + image_tokens(processor, *size)


def drop_overlong(rows: list[dict], processor, max_length: int | None) -> tuple[list[dict], list[int]]:
    """(rows that fit in max_length, lengths of the dropped ones); image sizes come from file headers."""
    if max_length is None:
        return rows, []
    kept, dropped = [], []
    for row in rows:
        length = sample_length(processor, row, image_size(row["images"][0]))
        if length <= max_length:
            kept.append(row)
        else:
            dropped.append(length)
    return kept, dropped


def build_sft_dataset(cot_jsonl: str | Path, limit: int | None = None, processor=None, max_length: int | None = None,
                      difficulties: list[str] | None = None, curriculum: str = "none", seed: int = 0):
    """Rows {prompt, completion, images (paths, decoded lazily)} from rejection-sampling output.

    With a processor and max_length, samples that would not fit are dropped and counted in the log.
    """
    entries = order_for_curriculum(read_cot_entries(cot_jsonl, limit, difficulties), curriculum, seed)
    rows = sft_rows(entries)
    if rows and "context" in rows[0]:
        if processor is None:
            raise ValueError("entries with a context need the processor to count its tokens")
        for row in rows:
            target = row["completion"][0]["content"][0]["text"]
            row["context_tokens"] = context_token_count(processor.tokenizer, target, row.pop("context"))
    if processor is not None:
        rows, dropped = drop_overlong(rows, processor, max_length)
        if dropped:
            logger.warning("sft: dropped %d of %d samples longer than max_length=%d tokens (image + prompt + "
                           "target; longest %d): bound the pixels or raise max_length to keep them",
                           len(dropped), len(rows) + len(dropped), max_length, max(dropped))
            print(f"sft: dropped {len(dropped)} of {len(rows) + len(dropped)} samples over max_length={max_length}")
        if not rows:
            raise ValueError(f"every sample of {cot_jsonl} is longer than max_length={max_length}")
    return lazy_image_table(rows, "images", many=True)


class OmniSFTTrainer(ConvertedCheckpointLoading, SFTTrainer):
    """TRL's SFTTrainer whose resume really loads the checkpoint's weights (see checkpoints.py), and whose
    rows may hold a given context that is not taught (`context_tokens`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "context_tokens" in (self.train_dataset.column_names or []):
            if not self.completion_only_loss:
                raise ValueError("a context is masked inside the completion: it needs completion_only_loss")
            self.data_collator = ContextMaskingCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if "context_tokens" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "context_tokens"]


def lora_config(options: dict | None):
    """A peft LoraConfig from the config's `lora` section, or None when LoRA is off."""
    if not options:
        return None
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", **options)


def without_unreachable_hub_kernels(args: dict) -> dict:
    """Trainer arguments whose model loading will not reach for Hub kernels it cannot get
    (`reward_model/hub_kernels.py`): `use_kernels` off when the hub is offline, unless the config names it."""
    init = dict(args.get("model_init_kwargs") or {})
    kept = without_unreachable_kernels(init)
    return args if kept == init else {**args, "model_init_kwargs": kept}


def last_checkpoint(output_dir: str | Path, resume: bool | str | None) -> str | None:
    """The checkpoint to resume from: `resume` "auto"/True = the newest COMPLETE one in output_dir (None if
    there is none), a path = that one, False/None = start fresh.

    Complete means its trainer_state.json exists: the trainer writes it last, so a run killed while saving
    falls back to the checkpoint before."""
    if resume in (None, False, "no", "never"):
        return None
    if resume in (True, "auto", "last"):
        folder = Path(output_dir)
        found = [(int(path.name.rsplit("-", 1)[1]), path) for path in folder.glob("checkpoint-*")
                 if path.name.rsplit("-", 1)[1].isdigit() and (path / "trainer_state.json").exists()]
        return str(max(found)[1]) if found else None
    if not (Path(str(resume)) / "trainer_state.json").exists():
        raise FileNotFoundError(f"checkpoint {resume} not found (no trainer_state.json)")
    return str(resume)


def run_sft(model_path: str, cot_jsonl: str, output_dir: str, args: dict, lora: dict | None = None,
            limit: int | None = None, processor_kwargs: dict | None = None, difficulties: list[str] | None = None,
            curriculum: str = "none", resume: bool | str | None = "auto") -> Path:
    """Fine-tune `model_path` on the CoT data; saves model + processor to `output_dir`.

    Resumes from the last checkpoint in `output_dir` by default (same data order: the sampler is seeded
    and the trainer skips the batches already seen).
    """
    from transformers import AutoProcessor
    from trl import SFTConfig

    processor = AutoProcessor.from_pretrained(model_path, **(processor_kwargs or {}))
    args = without_unreachable_hub_kernels({"completion_only_loss": True} | args)
    if curriculum != "none":
        args.setdefault("train_sampling_strategy", "sequential")  # the curriculum is the order
    config = SFTConfig(output_dir=output_dir, **args)
    dataset = build_sft_dataset(cot_jsonl, limit, processor, config.max_length, difficulties, curriculum,
                                config.seed)
    trainer = OmniSFTTrainer(
        model=model_path,  # loaded by TRL after the config exists, so ZeRO-3 can shard it at load time
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=lora_config(lora),
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir, resume))
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

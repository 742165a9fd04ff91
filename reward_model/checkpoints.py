"""Resuming a trainer from a checkpoint of a model whose saved key names differ from its module names.

transformers 5 saves Qwen2.5-VL in its original key layout ("visual.*", "model.layers.*") while the live
module is "model.visual.*", "model.language_model.*"; the Trainer's own resume loads the raw file with
strict=False, so NOTHING is loaded and training silently continues from the initial weights (found by the
multi-process rehearsal). This mixin loads the checkpoint through `from_pretrained`, which applies the
model's key conversion, and copies it in strictly. DeepSpeed and FSDP resume through their own
checkpoint formats and are left to the Trainer, as are LoRA adapter checkpoints.
"""

from __future__ import annotations

from pathlib import Path

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class ConvertedCheckpointLoading:
    """Mix into a transformers Trainer subclass (before the Trainer in the bases)."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        folder = Path(resume_from_checkpoint)
        plain = not (self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config"))
        if not plain or not any((folder / name).exists() for name in WEIGHT_FILES):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(target.parameters()).dtype
        loaded = type(target).from_pretrained(folder, dtype=dtype)
        target.load_state_dict(loaded.state_dict(), strict=True)  # a mismatch is an error, not a warning
        del loaded

"""Shared helpers for the training tests: a very small Qwen2.5-VL and a synthetic IQA set on disk."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEST_MODEL_SIZES = {"hidden_size": 32, "num_layers": 1, "vision_depth": 1, "num_heads": 4}


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    from reward_model.tiny_vlm import save_tiny_scorer

    return save_tiny_scorer(path, seed=seed, **TEST_MODEL_SIZES)


def make_data(path: Path, n: int = 16, seed: int = 0) -> dict[str, Path]:
    from reward_model.data.synthetic import write_dataset

    return write_dataset(path, n=n, seed=seed)

"""The world generator's trainer: resumes where it stopped, and Ctrl-C loses no finished step."""

from __future__ import annotations

import json

import pytest
import torch

from t2i_guidance.world import train_generator
from t2i_guidance.world.pipeline import WorldDiffusionPipeline


def run(tmp_path, steps: int) -> None:
    train_generator.main([
        "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"),
        "--loss-plot", str(tmp_path / "loss.png"), "--steps", str(steps), "--batch-size", "2", "--warmup", "1",
        "--threads", "1",
    ])


def saved_step(tmp_path) -> int:
    return torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=False)["step"]


def test_training_resumes_and_exports_a_loadable_pipeline(tmp_path, capsys):
    run(tmp_path, 2)
    assert saved_step(tmp_path) == 2
    run(tmp_path, 3)
    assert "resumed from step 2" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "training.json").read_text())["steps"] == 3
    assert (tmp_path / "loss.png").is_file()
    pipe = WorldDiffusionPipeline.from_pretrained(str(tmp_path / "out"))
    image = pipe("a red circle on the left", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (32, 32)


def test_ctrl_c_saves_the_last_finished_step(tmp_path, monkeypatch):
    real_batch = train_generator.training_batch

    def interrupt_at_step_two(step: int, batch_size: int):
        if step == 2:
            raise KeyboardInterrupt
        return real_batch(step, batch_size)

    monkeypatch.setattr(train_generator, "training_batch", interrupt_at_step_two)
    with pytest.raises(SystemExit, match="checkpoint at step 2 saved"):
        run(tmp_path, 5)
    assert saved_step(tmp_path) == 2
    assert not (tmp_path / "out").exists()  # nothing half-trained is exported

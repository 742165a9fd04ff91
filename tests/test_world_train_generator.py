"""The world generator's trainer: resumes where it stopped, and Ctrl-C loses no finished step."""

from __future__ import annotations

import json

import pytest
import torch

from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from t2i_guidance.world.training import train_generator


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


def test_a_pipeline_saved_before_counts_grows_its_vocabulary_keeping_every_id(tmp_path):
    from t2i_guidance.world.pipeline import build_tokenizer

    old = WorldDiffusionPipeline.from_config_untrained(block_out_channels=(8, 16, 16))
    old.tokenizer = build_tokenizer(with_counts=False)  # as saved before the count words existed
    words = old.tokenizer.get_vocab()
    old.text_encoder.resize_token_embeddings(len(words))
    before = old.text_encoder.get_input_embeddings().weight.detach().clone()
    assert old.tokenizer("two circles").input_ids == [1, 1]  # unknown to the old tokenizer

    train_generator.grow_vocabulary(old)

    ids = old.tokenizer("two red circles").input_ids
    assert 1 not in ids and old.tokenizer.convert_ids_to_tokens(ids) == ["two", "red", "circles"]
    grown = old.text_encoder.get_input_embeddings().weight
    assert grown.shape[0] == len(old.tokenizer) > len(words)
    assert torch.equal(grown[: len(words)], before)  # the trained rows are untouched


def test_some_training_captions_count_objects_and_none_is_held_out():
    from t2i_guidance.world.captions import parse_extended_prompt
    from t2i_guidance.world.scene import is_held_out

    _, captions = train_generator.training_batch(0, 256)
    counted = [c for c in captions if c.split(" ")[0] in ("two", "three", "four")]
    assert 10 <= len(counted) <= 45  # about COUNT_SHARE of 256, less caption dropout
    for text in counted:
        spec = parse_extended_prompt(text)
        assert spec.objects[0].count in (2, 3, 4) and spec.objects[0].colour is not None
    scene, _ = train_generator.count_example(7, __import__("random").Random(7))
    assert not is_held_out(scene)


def test_min_snr_weighting_downweights_nearly_clean_steps():
    scheduler = WorldDiffusionPipeline.from_config_untrained(block_out_channels=(8, 16, 16)).scheduler
    target = torch.zeros(2, 3, 4, 4)
    prediction = torch.ones(2, 3, 4, 4)
    timesteps = torch.tensor([5, 500])  # nearly clean, mid-noise
    plain = train_generator.weighted_loss(prediction, target, scheduler, timesteps, None)
    clean_only = train_generator.weighted_loss(prediction[:1], target[:1], scheduler, timesteps[:1], 5.0)
    mid_only = train_generator.weighted_loss(prediction[1:], target[1:], scheduler, timesteps[1:], 5.0)
    assert plain == 1.0
    assert clean_only < 0.05 < mid_only <= 1.0


def test_sigterm_saves_the_last_finished_step(tmp_path, monkeypatch):
    import os
    import signal

    real_batch = train_generator.training_batch

    def killed_at_step_two(step: int, batch_size: int):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_batch(step, batch_size)

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(train_generator, "training_batch", killed_at_step_two)
    try:
        with pytest.raises(SystemExit, match="checkpoint at step 2 saved"):
            run(tmp_path, 5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert saved_step(tmp_path) == 2


def test_a_time_limited_chunk_saves_and_the_next_run_continues(tmp_path, capsys):
    chunk = ["--max-minutes", "0"]  # stops after the first step of each run
    train_generator.main([
        "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"), "--loss-plot", str(tmp_path / "loss.png"),
        "--steps", "3", "--batch-size", "2", "--warmup", "1", "--threads", "1", "--device", "cpu", *chunk,
    ])
    assert saved_step(tmp_path) == 1 and "rerun the same command" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    run(tmp_path, 3)
    assert saved_step(tmp_path) == 3 and (tmp_path / "out" / "training.json").is_file()

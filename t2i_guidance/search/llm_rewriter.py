"""Chat-LLM rewriters: any chat model by hub id or folder, through transformers or vLLM.

The model reads the original prompt, the current one, the best candidates' scores and rationales, and
the history, and answers with `<prompt>...</prompt>` (optionally `<negative>...</negative>`). Whatever
it writes is only a proposal: the refinement loop checks it (`rewriting.check_rewrite`).
"""

from __future__ import annotations

import re
from typing import Any

from t2i_guidance.search.rewriting import Rewrite, RewriteRequest

SYSTEM = (
    "You improve prompts for a text-to-image model. A judge scored the pictures the current prompt made, "
    "on technical quality, aesthetics and alignment with the user's ORIGINAL prompt, and explained why. "
    "Write one new prompt that keeps every element of the original prompt and makes the model draw it "
    "better. Answer with the new prompt inside <prompt></prompt>, and optionally a negative prompt inside "
    "<negative></negative>. Nothing else."
)


def build_messages(request: RewriteRequest) -> list[dict[str, str]]:
    lines = [f"Original prompt: {request.original_prompt}", f"Current prompt: {request.current_prompt}"]
    if request.negative_prompt:
        lines.append(f"Current negative prompt: {request.negative_prompt}")
    for rank, feedback in enumerate(request.best, start=1):
        lines.append(f"Candidate {rank} (weighted score {_fmt(feedback.value)}):")
        for dimension, value in feedback.scores.items():
            why = " ".join(feedback.rationales.get(dimension, "").split())[:400]
            lines.append(f"- {dimension} {_fmt(value)}: {why}")
    if request.history:
        lines.append("Tried so far:")
        lines += [f"- round {h['round']}: {h['prompt']!r} -> best {_fmt(h['best_value'])}" for h in request.history]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def _fmt(value: float | None) -> str:
    return "unscored" if value is None else f"{value:.2f}"


def parse_rewrite(text: str) -> Rewrite | None:
    """The last <prompt> block (or, without tags, the first non-empty line); None when there is none."""
    prompts = re.findall(r"<prompt>(.*?)</prompt>", text, flags=re.DOTALL)
    if prompts:
        prompt = prompts[-1]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return None
        prompt = lines[0]
    negatives = re.findall(r"<negative>(.*?)</negative>", text, flags=re.DOTALL)
    prompt = " ".join(prompt.split())
    if not prompt:
        return None
    return Rewrite(prompt=prompt, negative_prompt=" ".join(negatives[-1].split()) if negatives else None, raw=text)


class TransformersRewriter:
    """A chat model run in-process by transformers. `model` is a hub id, a folder, or a loaded model
    (then `tokenizer` too). Greedy by default, so the same inputs give the same rewrite."""

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        max_new_tokens: int = 96,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if isinstance(model, str):
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model)
        if tokenizer is None:
            raise ValueError("a loaded model needs its tokenizer")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        self.temperature = temperature
        self.seed = seed

    def rewrite(self, request: RewriteRequest) -> Rewrite | None:
        import torch

        inputs = self.tokenizer.apply_chat_template(
            build_messages(request), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.do_sample,
                temperature=self.temperature if self.do_sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        text = self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return parse_rewrite(text)


class VLLMRewriter:
    """The same through vLLM's offline `LLM.chat` (a GPU machine; the engine starts on first use)."""

    name = "vllm"

    def __init__(self, model: str, max_new_tokens: int = 96, temperature: float = 0.0, seed: int = 0,
                 max_model_len: int = 4096) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.sampling = {"max_tokens": max_new_tokens, "temperature": temperature, "seed": seed}
        self._llm = None

    def build_request(self, request: RewriteRequest) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """The chat messages and SamplingParams keyword arguments sent to vLLM."""
        return build_messages(request), dict(self.sampling)

    def rewrite(self, request: RewriteRequest) -> Rewrite | None:
        from vllm import LLM, SamplingParams

        if self._llm is None:
            self._llm = LLM(model=self.model, max_model_len=self.max_model_len)
        messages, sampling = self.build_request(request)
        outputs = self._llm.chat(messages, SamplingParams(**sampling), use_tqdm=False)
        return parse_rewrite(outputs[0].outputs[0].text)

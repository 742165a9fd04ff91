"""In-process generation with transformers: many (image, dimension) requests in one left-padded batch.

bf16 on a GPU, fp32 on CPU unless asked otherwise (see `scorer_dtype`). All the requests about one picture
go into the same batch, so a picture's dimensions are decoded together rather than in a second pass. A batch that fails is retried one request at a time, so a single bad
request is reported against itself and the others are still scored.
"""

from __future__ import annotations

import hashlib
import time

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from reward_model.backends import (
    Completion,
    Decoding,
    Request,
    RequestResult,
    ScorerModel,
    chat_messages,
    compute_dtype,
    one_greedy_pass,
    repeat_completions,
)


class DigitProbabilityRecorder(LogitsProcessor):
    """Records P(next token = each digit) at every step, from the model's real logits; changes nothing."""

    def __init__(self, digit_ids: list[int]) -> None:
        self.digit_ids = torch.tensor(digit_ids)
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        self.steps.append(probs[:, self.digit_ids.to(probs.device)].cpu())
        return scores


class SeededSampler(LogitsProcessor):
    """Samples each row from its own torch.Generator, so a row's draws do not depend on its batch.

    transformers' sampling draws every row from one global random stream; here the library's own
    temperature / top-k / top-p warpers shape the distribution, the draw uses the row's generator, and
    the scores returned leave only the drawn token, which greedy decoding then takes.
    """

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        warpers = [TemperatureLogitsWarper(temperature)]
        if top_k:  # 0 or None: no top-k cut, as in transformers' own sampling
            warpers.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        self.warpers = LogitsProcessorList(warpers)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(self.warpers(input_ids, scores.float()), dim=-1).cpu()
        drawn = [
            torch.multinomial(row, 1, generator=generator).item()
            for row, generator in zip(probs, self.generators, strict=True)
        ]
        chosen = torch.full_like(scores, torch.finfo(scores.dtype).min)
        chosen[torch.arange(len(drawn)), torch.tensor(drawn, device=scores.device)] = 0.0
        return chosen


def sample_seeds(request_seed: int, count: int) -> list[int]:
    """Seeds for the `count` samples of one request (sample 0 uses the request's own seed)."""
    return [request_seed] + [
        int.from_bytes(hashlib.sha256(f"{request_seed}:{k}".encode()).digest()[:8], "big") >> 1
        for k in range(1, count)
    ]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def scorer_dtype(device: torch.device, precision: str | None) -> torch.dtype:
    """The dtype the scorer's weights are loaded in.

    "auto" stays fp32 on a CPU even where bf16 is fast: on the embedded scorer bf16 was 1.25x faster but
    changed 11 of 24 greedy answers (docs/speed.md), so bf16 on a CPU is only taken when asked for.
    """
    if precision is None or (precision == "auto" and device.type == "cpu"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return compute_dtype(precision, device)


def picture_batches(requests: list[Request], order: list[int], pictures: int) -> list[list[int]]:
    """Split `order` (indices into `requests`) into batches of at most `pictures` distinct pictures each;
    every request about one picture lands in the batch of that picture's first request."""
    batches: list[list[int]] = []
    batch_of: dict[int, int] = {}  # id of the picture -> its batch
    seen_in_last = 0
    for index in order:
        picture = id(requests[index].image)
        if picture not in batch_of:
            if not batches or seen_in_last == pictures:
                batches.append([])
                seen_in_last = 0
            batch_of[picture] = len(batches) - 1
            seen_in_last += 1
        batches[batch_of[picture]].append(index)
    return batches


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: ScorerModel,
        device: str | None = None,
        batch_size: int = 16,
        precision: str | None = None,
        one_look_per_picture: bool = True,
    ) -> None:
        """batch_size: pictures per model call, with all their requests, each picture through the vision
        tower once. `one_look_per_picture=False` keeps the older way for benchmarks: batch_size requests
        per call, every request encoding its picture again."""
        self.device = torch.device(device or default_device())
        self.dtype = scorer_dtype(self.device, precision)
        self.batch_size = max(1, batch_size)
        self.one_look_per_picture = one_look_per_picture
        self.processor = AutoProcessor.from_pretrained(model.source)
        if model.min_pixels is not None and model.max_pixels is not None:
            self.processor.image_processor.size = {
                "shortest_edge": model.min_pixels,
                "longest_edge": model.max_pixels,
            }
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        self.model = AutoModelForImageTextToText.from_pretrained(model.source, dtype=self.dtype)
        self.model.to(self.device).eval()
        self.stop_ids = self._stop_ids()
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        )
        self.last_batch_seconds: list[float] = []

    def render(self, request: Request) -> str:
        """The exact text the model receives (image placeholder not yet expanded)."""
        messages = chat_messages(request.dimension, request.prompt)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + request.prefix

    def digit_token_ids(self) -> list[int]:
        ids = []
        for digit in "0123456789":
            encoded = self.tokenizer.encode(digit, add_special_tokens=False)
            if len(encoded) != 1:
                raise ValueError(
                    f"the tokenizer splits the digit {digit!r}: probability-weighted scores need "
                    "digits as single tokens"
                )
            ids.append(encoded[0])
        return ids

    def generate(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]:
        decoding, copies = one_greedy_pass(decoding)
        results: list[RequestResult | None] = [None] * len(requests)
        # Similar sizes together keep left padding short.
        order = sorted(range(len(requests)), key=lambda i: self._size_key(requests[i]))
        if self.one_look_per_picture:
            chunks = picture_batches(requests, order, self.batch_size)
        else:
            chunks = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        for chunk in chunks:
            try:
                outputs = self._generate_batch([requests[i] for i in chunk], decoding)
            except Exception:  # noqa: BLE001 - isolate the culprit by retrying alone
                outputs = [self._generate_alone(requests[i], decoding) for i in chunk]
            for index, output in zip(chunk, outputs, strict=True):
                results[index] = output
        done = [result if result is not None else RequestResult(error="not run") for result in results]
        return repeat_completions(done, copies)

    def _generate_alone(self, request: Request, decoding: Decoding) -> RequestResult:
        try:
            return self._generate_batch([request], decoding)[0]
        except Exception as error:  # noqa: BLE001 - reported against this request only
            return RequestResult(error=f"generation failed: {type(error).__name__}: {error}")

    def _size_key(self, request: Request) -> tuple[int, int]:
        return (request.image.width * request.image.height, len(request.prompt or ""))

    @torch.inference_mode()
    def _generate_batch(self, requests: list[Request], decoding: Decoding) -> list[RequestResult]:
        started = time.perf_counter()
        seeded = decoding.do_sample and all(request.seed is not None for request in requests)
        # Seeded sampling gives every sample its own row (and generator); otherwise generate repeats rows.
        repeats = decoding.num_samples if seeded else 1
        texts = [self.render(request) for request in requests for _ in range(repeats)]
        images = [request.image for request in requests for _ in range(repeats)]
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt").to(self.device)
        if self.one_look_per_picture:
            inputs = self._encode_each_picture_once(inputs, images)
        recorder = DigitProbabilityRecorder(self.digit_token_ids()) if decoding.read_digit_probs else None
        processors = [recorder] if recorder else []
        greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if seeded:
            seeds = [seed for request in requests for seed in sample_seeds(request.seed, repeats)]
            processors.append(SeededSampler(seeds, decoding.temperature, decoding.top_k, decoding.top_p))
            sampling = greedy  # the sampler above has already drawn; greedy takes its token
        elif decoding.do_sample:
            sampling = {
                "do_sample": True,
                "temperature": decoding.temperature,
                "top_p": decoding.top_p,
                "top_k": decoding.top_k,
            }
        else:
            sampling = greedy
        generated = self.model.generate(
            **inputs,
            **sampling,
            max_new_tokens=decoding.max_new_tokens,
            num_return_sequences=1 if seeded else decoding.num_samples,
            repetition_penalty=1.0,  # the settings are explicit; ignore any default in the checkpoint
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            logits_processor=LogitsProcessorList(processors) if processors else None,
        )
        new_tokens = generated[:, inputs["input_ids"].shape[1] :].cpu()
        digit_steps = torch.stack(recorder.steps, dim=1) if recorder and recorder.steps else None
        results = []
        for index in range(len(requests)):
            completions = []
            for row in range(index * decoding.num_samples, (index + 1) * decoding.num_samples):
                completions.append(
                    self._completion(
                        new_tokens[row],
                        digit_steps[row] if digit_steps is not None else None,
                        decoding.read_digit_probs,
                    )
                )
            results.append(RequestResult(completions=completions))
        self.last_batch_seconds.append(time.perf_counter() - started)
        return results

    def _encode_each_picture_once(self, inputs, images: list) -> dict:
        """Run the vision tower once per distinct picture and hand its features to every row that shows
        it (transformers' precomputed `mm_encoder_outputs`), instead of once per row. Works for any
        picture size: each row's patches are found from its own grid."""
        firsts: dict[int, int] = {}  # id of the picture -> the first row that shows it
        for row, image in enumerate(images):
            firsts.setdefault(id(image), row)
        encode = getattr(self.model.model, "get_image_features", None)
        if len(firsts) == len(images) or encode is None or "pixel_values" not in inputs:
            return inputs
        grids = inputs["image_grid_thw"]
        patches = torch.split(inputs["pixel_values"], grids.prod(-1).tolist())
        unique_rows = list(firsts.values())
        encoded = encode(
            torch.cat([patches[row] for row in unique_rows]), grids[unique_rows], return_dict=True
        )
        features = dict(zip(unique_rows, encoded.pooler_output, strict=True))
        encoded.pooler_output = tuple(features[firsts[id(image)]] for image in images)
        shared = {key: value for key, value in inputs.items() if key != "pixel_values"}
        return {**shared, "mm_encoder_outputs": {"image": encoded}}

    def _completion(
        self, ids: torch.Tensor, digit_steps: torch.Tensor | None, keep_tokens: bool
    ) -> Completion:
        ids_list = ids.tolist()
        length = len(ids_list)
        for position, token in enumerate(ids_list):
            if token in self.stop_ids:
                length = position + 1  # the stop token was generated, so it counts
                break
        kept = ids_list[:length]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        completion = Completion(text=text, generated_tokens=length)
        if keep_tokens and digit_steps is not None:
            completion.token_texts = [
                self.tokenizer.decode([token], skip_special_tokens=True) for token in kept
            ]
            completion.digit_probs = digit_steps[:length].tolist()
        return completion

    def _stop_ids(self) -> list[int]:
        configured = self.model.generation_config.eos_token_id
        ids = list(configured) if isinstance(configured, list) else [] if configured is None else [configured]
        for token in ("<|im_end|>", "<|endoftext|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id and token_id not in ids:
                ids.append(token_id)
        if not ids:
            raise ValueError("the model declares no end-of-sequence token")
        return ids


def build_backend(model: ScorerModel, *, device: str | None = None, batch_size: int = 16,
                  precision: str | None = None, **_unused) -> TransformersBackend:
    """The "transformers" entry of reward_model.backends.SCORING_BACKENDS (vLLM's arguments do not apply)."""
    return TransformersBackend(model, device=device, batch_size=batch_size, precision=precision)

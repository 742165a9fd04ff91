"""The scorer's own logic, checked without loading a model: request settings and their twins, how each
request is built and seeded, how answers come back to the right picture and dimension, how samples,
failures and digit readings become scores, and the cache. A scripted backend stands in for the model."""

from __future__ import annotations

import pytest
from PIL import Image

from reward_model.backends import EMBEDDED_DIR, Completion, Decoding, RequestResult
from reward_model.interface import DimensionScore, ImageItem, ScoreStatus, image_hash
from reward_model.scorer import (
    ANSWER_ONLY_PREFIX,
    OmniQualityScorer,
    _join_samples,
    request_seed,
)

RED, BLUE = Image.new("RGB", (28, 28), "red"), Image.new("RGB", (28, 28), "blue")
COLOUR_SCORE = {(255, 0, 0): 1.0, (0, 0, 255): 2.0}
DIMENSION_OFFSET = {"technical": 0.0, "aesthetic": 0.25, "alignment": 0.5}


class ScriptedBackend:
    """Answers each request with a number that names its picture and dimension (red 1, blue 2, plus
    0.25 for aesthetic, 0.5 for alignment), `samples` completions each; records what it was sent."""

    name = "scripted"

    def __init__(self, completions=None, fails: bool = False) -> None:
        self.completions = completions  # request -> list[Completion]; None: the answer above
        self.fails = fails
        self.calls: list[tuple[list, Decoding]] = []

    def generate(self, requests, decoding):
        self.calls.append((list(requests), decoding))
        if self.fails:
            raise RuntimeError("out of memory")
        return [RequestResult(self.completions(request) if self.completions else [self.answer(request)])
                for request in requests]

    @staticmethod
    def answer(request) -> Completion:
        value = COLOUR_SCORE[request.image.getpixel((0, 0))] + DIMENSION_OFFSET[request.dimension]
        return Completion(f"<think>{request.dimension}</think><answer>{value}</answer>", 5)


class ScriptedFactory:
    """Stands in for the backend registry: every name builds `backend`; the factory's calls are kept."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.calls: list[tuple[str, object, dict]] = []

    def get(self, name: str):
        def build(model_info, **placement):
            self.calls.append((name, model_info, placement))
            return self.backend
        return build


def scorer_with(monkeypatch, backend, **options) -> OmniQualityScorer:
    monkeypatch.setattr("reward_model.scorer.SCORING_BACKENDS", ScriptedFactory(backend))
    return OmniQualityScorer("omniquality-r", backend="transformers", **options)  # a hub id: nothing loads


def test_the_backend_is_built_with_the_placement_asked_for(monkeypatch, tmp_path):
    factory = ScriptedFactory(ScriptedBackend())
    monkeypatch.setattr("reward_model.scorer.SCORING_BACKENDS", factory)
    scorer = OmniQualityScorer("omniquality-r", backend="vllm", device="cpu", batch_size=3, precision="bf16",
                               vllm_share=0.25, vllm_sleep_mode=True, cache_dir=str(tmp_path / "c"),
                               max_image_pixels=1234)
    (name, model_info, placement), = factory.calls
    assert name == "vllm" == scorer.backend_name and model_info is scorer.model_info
    assert model_info.source == "yeeeeeyy/OmniQuality-R"
    assert placement == {"device": "cpu", "batch_size": 3, "precision": "bf16", "vllm_share": 0.25, "sleep_mode": True}
    assert scorer.backend is factory.backend and scorer.cache.directory == tmp_path / "c"
    assert scorer.max_image_pixels == 1234
    defaults = scorer_with(monkeypatch, ScriptedBackend())
    assert defaults.max_image_pixels == 64_000_000 and defaults.cache.directory is None
    assert defaults.backend_name == "transformers"


def test_by_default_the_embedded_model_on_the_usable_backend_with_the_authors_sampling(monkeypatch):
    factory = ScriptedFactory(ScriptedBackend())
    monkeypatch.setattr("reward_model.scorer.SCORING_BACKENDS", factory)
    scorer = OmniQualityScorer()
    assert scorer.model_info.source == str(EMBEDDED_DIR.resolve())
    assert scorer.decoding == Decoding(do_sample=True, temperature=0.7, top_p=0.8, top_k=20,
                                       max_new_tokens=scorer.model_info.max_new_tokens, num_samples=1, seed=0)
    assert factory.calls[0][0] == "transformers"  # no vLLM or GPU here
    assert factory.calls[0][2] == {"device": None, "batch_size": 16, "precision": None, "vllm_share": None,
                                   "sleep_mode": False}
    monkeypatch.setattr("reward_model.backends.vllm_usable", lambda: True)
    OmniQualityScorer()
    assert factory.calls[1][0] == "vllm"


def test_the_picture_limit_refuses_a_picture_above_it(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), max_image_pixels=28 * 28 - 1)
    result = scorer.score([ImageItem("r", RED)], None, ["technical"])["r"]["technical"]
    assert result.status is ScoreStatus.ERROR and "above the limit" in result.error


def test_ids_must_be_unique_within_a_call(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend())
    with pytest.raises(ValueError) as refused:
        scorer.score([ImageItem("a", RED), ImageItem("a", BLUE)], None, ["technical"])
    assert str(refused.value) == "image ids must be unique within a call"


# ---------------------------------------------------------------- settings


def test_the_request_settings_are_kept_by_name_and_become_the_decoding(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), decoding="sampled", samples=3, max_new_tokens=50,
                         temperature=0.5, top_p=0.9, top_k=7, seed=11)
    assert scorer.request_settings == {"mode": "reason", "decoding": "sampled", "samples": 3, "max_new_tokens": 50,
                                       "temperature": 0.5, "top_p": 0.9, "top_k": 7, "seed": 11}
    assert scorer.decoding == Decoding(do_sample=True, temperature=0.5, top_p=0.9, top_k=7, max_new_tokens=50,
                                       num_samples=3, read_digit_probs=False, seed=11)


def test_the_token_budget_is_the_models_the_answer_only_one_or_the_given_one(monkeypatch):
    reasoned = scorer_with(monkeypatch, ScriptedBackend())
    assert reasoned.decoding.max_new_tokens == reasoned.model_info.max_new_tokens == 4096
    assert reasoned.decoding.do_sample and reasoned.decoding.seed == 0  # the defaults: sampled, run seed 0
    assert scorer_with(monkeypatch, ScriptedBackend(), mode="answer-only").decoding.max_new_tokens == 16
    assert scorer_with(monkeypatch, ScriptedBackend(), mode="answer-only", max_new_tokens=3).decoding.max_new_tokens == 3


def test_prob_weighted_reads_digits_along_one_greedy_pass(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), mode="prob-weighted", decoding="sampled")
    assert scorer.mode == "prob-weighted"
    assert not scorer.decoding.do_sample and scorer.decoding.read_digit_probs
    assert scorer.request_settings["decoding"] == "sampled"  # what was asked, for a twin to start from
    assert not scorer_with(monkeypatch, ScriptedBackend(), decoding="greedy").decoding.do_sample


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "fast"}, "unknown mode 'fast'; choose from reason, prob-weighted, answer-only"),
    ({"decoding": "beam"}, "unknown decoding 'beam'; choose from sampled, greedy"),
    ({"samples": 0}, "samples must be at least 1"),
    ({"mode": "prob-weighted", "samples": 2}, "prob-weighted reads one greedy pass: samples must be 1"),
])
def test_bad_request_settings_are_refused_in_words(monkeypatch, options, message):
    with pytest.raises(ValueError) as refused:
        scorer_with(monkeypatch, ScriptedBackend(), **options)
    assert str(refused.value) == message


def test_one_sample_is_enough(monkeypatch):
    assert scorer_with(monkeypatch, ScriptedBackend(), samples=1).decoding.num_samples == 1


def test_a_seed_twin_shares_the_model_and_cache_and_leaves_the_original_alone(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), seed=1, top_k=5)
    twin = scorer.with_seed(9)
    assert twin.decoding == Decoding(do_sample=True, top_k=5, max_new_tokens=4096, seed=9)
    assert twin.request_settings == {**scorer.request_settings, "seed": 9}
    assert scorer.decoding.seed == 1 and scorer.request_settings["seed"] == 1
    assert twin.backend is scorer.backend and twin.cache is scorer.cache


def test_a_settings_twin_changes_only_what_it_names(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), seed=4, top_k=5)
    twin = scorer.with_settings(mode="answer-only", decoding="greedy")
    assert twin.mode == "answer-only" and not twin.decoding.do_sample and twin.decoding.max_new_tokens == 16
    assert (twin.decoding.top_k, twin.decoding.seed) == (5, 4)
    assert scorer.mode == "reason" and scorer.decoding.do_sample
    assert twin.backend is scorer.backend and twin.cache is scorer.cache
    with pytest.raises(ValueError) as refused:
        scorer.with_settings(model="other", batch_size=2, top_k=3)
    assert str(refused.value) == "batch_size, model would need another model load, not another request mode"


class Backend16:
    name = "bf16"
    dtype = "torch.bfloat16"


class Backend32(Backend16):
    dtype = "torch.float32"


def test_the_settings_key_holds_mode_decoding_and_a_non_default_dtype(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(), decoding="greedy")
    assert scorer.settings_key() == {"mode": "reason", **scorer.decoding.key()}
    scorer.backend = Backend32()
    assert scorer.settings_key() == {"mode": "reason", **scorer.decoding.key()}
    scorer.backend = Backend16()
    assert scorer.settings_key() == {"mode": "reason", **scorer.decoding.key(), "dtype": "torch.bfloat16"}


# ---------------------------------------------------------------- requests and answers


def test_each_answer_reaches_its_own_picture_and_dimension(monkeypatch):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend, decoding="greedy")
    table = scorer.score([ImageItem("b", BLUE), ImageItem("r", RED)], "a red square", ["technical", "alignment"])
    assert {i: {d: s.score for d, s in row.items()} for i, row in table.items()} == {
        "b": {"technical": 2.0, "alignment": 2.5}, "r": {"technical": 1.0, "alignment": 1.5}}
    assert table["r"]["alignment"].rationale == "alignment" and table["r"]["alignment"].generated_tokens == 5
    assert table["r"]["alignment"].std is None and table["r"]["alignment"].samples == [1.5]
    assert all(s.dimension == d for row in table.values() for d, s in row.items())
    (requests, decoding), = backend.calls  # every request of the call in one backend call
    assert decoding is scorer.decoding
    asked = [(image_hash(r.image), r.dimension, r.prompt, r.prefix, r.seed) for r in requests]
    assert asked == [(image_hash(picture), d, "a red square", "", request_seed(0, image_hash(picture), d, "a red square"))
                     for picture in (BLUE, RED) for d in ("technical", "alignment")]


def test_sampled_requests_carry_their_own_seed_and_answer_only_its_prefix(monkeypatch):
    backend = ScriptedBackend(lambda request: [Completion(" 3.5 </answer>", 2)])
    scorer = scorer_with(monkeypatch, backend, mode="answer-only", seed=7)
    result = scorer.score([ImageItem("r", RED)], "p", ["aesthetic"])["r"]["aesthetic"]
    (request,), _ = backend.calls[0]
    assert request.prefix == ANSWER_ONLY_PREFIX and request.seed == request_seed(7, image_hash(RED), "aesthetic", "p")
    assert result.ok and result.score == 3.5 and result.raw == ANSWER_ONLY_PREFIX + " 3.5 </answer>"


@pytest.mark.parametrize("prompt", [None, "", "   "])
def test_alignment_without_a_prompt_fails_alone_and_asks_nothing(monkeypatch, prompt):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend)
    row = scorer.score([ImageItem("r", RED)], prompt, ["alignment", "technical"])["r"]
    assert row["alignment"].status is ScoreStatus.ERROR and row["alignment"].dimension == "alignment"
    assert row["alignment"].error == "alignment needs the generation prompt"
    assert row["technical"].ok and [r.dimension for r in backend.calls[0][0]] == ["technical"]


def test_a_bad_picture_fails_on_every_dimension_with_the_reason(monkeypatch):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend)
    row = scorer.score([ImageItem("sliver", Image.new("RGB", (900, 2))), ImageItem("r", RED)], "p",
                       ["technical", "aesthetic"])["sliver"]
    assert list(row) == ["technical", "aesthetic"]
    assert all(s.status is ScoreStatus.ERROR and s.dimension == d and s.error.startswith("sliver: aspect ratio")
               for d, s in row.items())
    assert len(backend.calls[0][0]) == 2  # only the good picture was asked about


def test_nothing_to_ask_calls_no_backend(monkeypatch):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend)
    assert scorer.score([ImageItem("r", RED)], None, ["alignment"])["r"]["alignment"].status is ScoreStatus.ERROR
    assert backend.calls == []


def test_a_crashing_backend_is_one_error_per_request_and_nothing_is_cached(monkeypatch):
    scorer = scorer_with(monkeypatch, ScriptedBackend(fails=True))
    table = scorer.score([ImageItem("r", RED), ImageItem("b", BLUE)], "p", ["technical"])
    for row in table.values():
        assert row["technical"].status is ScoreStatus.ERROR
        assert row["technical"].error == "backend transformers failed: RuntimeError: out of memory"
        assert row["technical"].dimension == "technical"
    assert len(scorer.cache) == 0


def test_the_same_picture_twice_is_asked_once_and_the_repeat_marked_cached(monkeypatch):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend)
    table = scorer.score([ImageItem("a", RED), ImageItem("b", RED.copy())], "p", ["technical"])
    assert len(backend.calls[0][0]) == 1
    first, repeat = table["a"]["technical"], table["b"]["technical"]
    assert (first.score, first.cached, first.generated_tokens) == (1.0, False, 5)
    assert (repeat.score, repeat.cached, repeat.generated_tokens) == (1.0, True, 0)
    again = scorer.score([ImageItem("c", RED)], "p", ["technical"])["c"]["technical"]
    assert len(backend.calls) == 1 and again.cached and again.score == 1.0  # from the cache, not the model


def test_a_backend_that_loses_a_request_is_an_error_not_a_silent_gap(monkeypatch):
    backend = ScriptedBackend()
    backend.generate = lambda requests, decoding: [RequestResult([ScriptedBackend.answer(requests[0])])]
    with pytest.raises(ValueError):
        scorer_with(monkeypatch, backend).score([ImageItem("r", RED), ImageItem("b", BLUE)], None, ["technical"])


def test_the_cache_tells_apart_prompts_models_and_settings(monkeypatch, tmp_path):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend, cache_dir=str(tmp_path))
    scorer.score([ImageItem("r", RED)], "a red circle", ["alignment"])
    scorer.score([ImageItem("r", RED)], "a blue circle", ["alignment"])  # another prompt: asked again
    assert len(backend.calls) == 2
    greedy = scorer_with(monkeypatch, backend, cache_dir=str(tmp_path), decoding="greedy")
    greedy.score([ImageItem("r", RED)], "a red circle", ["alignment"])  # other settings: asked again
    assert len(backend.calls) == 3
    monkeypatch.setattr("reward_model.scorer.SCORING_BACKENDS", ScriptedFactory(backend))
    other_model = OmniQualityScorer("someone/other-scorer", cache_dir=str(tmp_path))
    other_model.score([ImageItem("r", RED)], "a red circle", ["alignment"])  # another model: asked again
    assert len(backend.calls) == 4
    scorer_with(monkeypatch, backend, cache_dir=str(tmp_path)).score([ImageItem("r", RED)], "a red circle",
                                                                      ["alignment"])
    assert len(backend.calls) == 4  # the first scorer's entry, read back from disk


def test_a_cached_dimension_does_not_stop_the_others_being_asked(monkeypatch):
    backend = ScriptedBackend()
    scorer = scorer_with(monkeypatch, backend)
    scorer.score([ImageItem("r", RED)], None, ["technical"])
    row = scorer.score([ImageItem("r", RED)], None, ["technical", "aesthetic"])["r"]
    assert row["technical"].cached and row["aesthetic"].score == 1.25 and not row["aesthetic"].cached
    assert [r.dimension for r in backend.calls[1][0]] == ["aesthetic"]


def test_samples_give_their_mean_spread_and_every_labelled_rationale(monkeypatch):
    texts = ["<think>one</think><answer>2</answer>", "<think>two</think><answer>4</answer>", "<think>three</think>"]
    backend = ScriptedBackend(lambda request: [Completion(text, 3 + k) for k, text in enumerate(texts)])
    result = scorer_with(monkeypatch, backend, samples=3).score([ImageItem("r", RED)], None, ["technical"])["r"]["technical"]
    assert result.ok and result.score == 3.0 and result.std == 1.0 and result.samples == [2.0, 4.0]
    assert result.generated_tokens == 3 + 4 + 5
    assert result.rationale == "[sample 1/3: 2.00] one\n\n[sample 2/3: 4.00] two\n\n[sample 3/3: parse failure] three"
    assert result.raw == "\n\n".join(f"[sample {k + 1}/3] {text}" for k, text in enumerate(texts))


def test_two_samples_keep_both_rationales(monkeypatch):
    texts = ["<think>one</think><answer>2</answer>", "<think>two</think><answer>3</answer>"]
    backend = ScriptedBackend(lambda request: [Completion(text, 1) for text in texts])
    result = scorer_with(monkeypatch, backend, samples=2).score([ImageItem("r", RED)], None, ["aesthetic"])["r"]["aesthetic"]
    assert result.rationale == "[sample 1/2: 2.00] one\n\n[sample 2/2: 3.00] two" and result.dimension == "aesthetic"


def test_no_readable_sample_is_a_parse_failure_keeping_the_text(monkeypatch):
    backend = ScriptedBackend(lambda request: [Completion("<think>hm</think><answer>many</answer>", 6)])
    result = scorer_with(monkeypatch, backend).score([ImageItem("r", RED)], None, ["technical"])["r"]["technical"]
    assert result.status is ScoreStatus.PARSE_FAILURE and result.score is None
    assert result.error == "answer is not a number: 'many'" and result.dimension == "technical"
    assert result.raw == "<think>hm</think><answer>many</answer>" and result.generated_tokens == 6


def test_joined_samples_are_labelled_in_order():
    assert _join_samples(["only"]) == "only"
    assert _join_samples(["a", "b"]) == "[sample 1/2] a\n\n[sample 2/2] b"
    assert _join_samples(["a", "b"], [1.234, None]) == "[sample 1/2: 1.23] a\n\n[sample 2/2: parse failure] b"


# ---------------------------------------------------------------- prob-weighted


def digit_completion(text: str, digit_probs: dict[int, list[float]], tokens: int = 9) -> Completion:
    """`text` one character per token; the digit distribution at token k is digit_probs.get(k, all on 0)."""
    probs = [digit_probs.get(k, [1.0] + [0.0] * 9) for k in range(len(text))]
    return Completion(text, tokens, token_texts=list(text), digit_probs=probs)


def prob_weighted_result(monkeypatch, completion: Completion) -> DimensionScore:
    scorer = scorer_with(monkeypatch, ScriptedBackend(lambda request: [completion]), mode="prob-weighted")
    return scorer.score([ImageItem("r", RED)], None, ["technical"])["r"]["technical"]


def test_prob_weighted_returns_the_expectation_its_spread_and_the_greedy_answer(monkeypatch):
    text = "<think>fine</think><answer>3.5</answer>"
    at = text.index("3.5")
    three_or_four = [0.0] * 3 + [0.5, 0.5] + [0.0] * 5
    result = prob_weighted_result(monkeypatch, digit_completion(text, {at: three_or_four}, tokens=11))
    assert result.ok and result.score == pytest.approx(3.5) and result.std == pytest.approx(0.5)
    assert result.samples == [3.5] and result.rationale == "fine" and result.raw == text
    assert result.dimension == "technical"
    assert result.generated_tokens == 11


def test_prob_weighted_keeps_an_unreadable_answer_as_a_parse_failure(monkeypatch):
    text = "<think>why</think><answer>9.5</answer>"
    result = prob_weighted_result(monkeypatch, digit_completion(text, {}, tokens=4))
    assert result.status is ScoreStatus.PARSE_FAILURE and result.score is None
    assert result.error == "answer 9.5 is outside 0..5" and result.rationale == "why" and result.raw == text
    assert result.dimension == "technical"
    assert result.generated_tokens == 4


def test_an_expectation_outside_the_scale_is_a_parse_failure(monkeypatch):
    text = "<think>edge</think><answer>5</answer>"
    at = text.index("5</")
    five_or_nine = [0.0] * 5 + [0.5, 0.0, 0.0, 0.0, 0.5]
    result = prob_weighted_result(monkeypatch, digit_completion(text, {at: five_or_nine}, tokens=7))
    assert result.status is ScoreStatus.PARSE_FAILURE and result.error == "expected score 7.000 is outside 0..5"
    assert result.rationale == "edge" and result.raw == text and result.generated_tokens == 7
    assert result.dimension == "technical"


@pytest.mark.parametrize("digits", [[0.0] * 5 + [1.0] + [0.0] * 4, [1.0] + [0.0] * 9])
def test_an_expectation_at_either_end_of_the_scale_is_a_score(monkeypatch, digits):
    text = "<think>x</think><answer>3</answer>"
    result = prob_weighted_result(monkeypatch, digit_completion(text, {text.index("3</"): digits}))
    assert result.ok and result.score == digits.index(1.0)


def test_digits_not_recorded_are_a_parse_failure_naming_why(monkeypatch):
    text = "<think>x</think><answer>3</answer>"
    result = prob_weighted_result(monkeypatch, Completion(text, 5, token_texts=list(text)))
    assert result.status is ScoreStatus.PARSE_FAILURE
    assert result.error == "digit distributions were not recorded for every token"
    assert result.rationale == "x" and result.raw == text and result.generated_tokens == 5

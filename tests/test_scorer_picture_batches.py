"""A picture's dimensions travel in one model call, and the greedy answers are the ones per-request
batches give."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reward_model.backends import Decoding, Request, ScorerModel
from reward_model.backends.transformers_backend import TransformersBackend, picture_batches
from tests.scorer_fixtures import random_scorer_dir  # noqa: F401 - fixture

DIMENSIONS = ("technical", "aesthetic", "alignment")
PROMPT = "a red circle above a blue square"


def _pictures(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)) for _ in range(count)]


def _requests(pictures: list[Image.Image]) -> list[Request]:
    return [Request(picture, dimension, PROMPT) for picture in pictures for dimension in DIMENSIONS]


def test_every_request_of_a_picture_lands_in_one_batch_of_at_most_n_pictures():
    pictures = _pictures(5)
    requests = _requests(pictures)
    order = list(range(len(requests)))[::-1]  # a picture's requests need not be adjacent in the order
    batches = picture_batches(requests, order, pictures=2)
    assert sorted(i for batch in batches for i in batch) == list(range(len(requests)))
    for batch in batches:
        assert len({id(requests[i].image) for i in batch}) <= 2
    batch_of = {id(requests[i].image): n for n, batch in enumerate(batches) for i in batch}
    for i, request in enumerate(requests):
        assert i in batches[batch_of[id(request.image)]]
    assert len(batches) == 3  # 5 pictures, 2 a batch


def _count_encoded_pictures(backend: TransformersBackend) -> list[int]:
    """Pictures the vision tower encodes, per call (its grid has one row per picture)."""
    counts: list[int] = []
    backend.model.model.visual.register_forward_pre_hook(
        lambda module, args, kwargs: counts.append(int(kwargs["grid_thw"].shape[0])), with_kwargs=True
    )
    return counts


@pytest.mark.parametrize("batch_size", [2])
def test_greedy_answers_match_per_request_batching(random_scorer_dir, batch_size):  # noqa: F811
    model = ScorerModel(random_scorer_dir, "random", None, None, 16)
    requests = _requests(_pictures(3))
    greedy = Decoding(do_sample=False, max_new_tokens=12)
    grouped = TransformersBackend(model, device="cpu", batch_size=batch_size)
    alone = TransformersBackend(model, device="cpu", batch_size=batch_size, one_look_per_picture=False)
    looks = {"grouped": _count_encoded_pictures(grouped), "alone": _count_encoded_pictures(alone)}
    answers = [result.completions[0].text for result in grouped.generate(requests, greedy)]
    expected = [result.completions[0].text for result in alone.generate(requests, greedy)]
    assert answers == expected
    assert sum(looks["grouped"]) == 3  # each picture through the vision tower once
    assert sum(looks["alone"]) == 9  # once per (picture, dimension)
    # One model call per `batch_size` pictures, instead of one per `batch_size` requests.
    assert len(grouped.last_batch_seconds) == -(-3 // batch_size)
    assert len(alone.last_batch_seconds) == -(-9 // batch_size)

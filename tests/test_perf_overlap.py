"""The overlap benchmark: scoring a batch in a worker while the next one is generated reads the same scores."""

from __future__ import annotations

import threading

from benchmarks.perf_overlap import _run, _values
from tests.search_fixtures import PROMPT, SETTINGS, RecordingScorer, world_generator


class ThreadRecordingScorer(RecordingScorer):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[bool] = []  # per call: was it the main thread?

    def score(self, items, prompt, dimensions):
        self.threads.append(threading.current_thread() is threading.main_thread())
        return super().score(items, prompt, dimensions)


def test_overlapped_scoring_runs_beside_generation_and_reads_the_same_scores():
    generator = world_generator()
    runs = {}
    for overlap in (False, True):
        scorer = ThreadRecordingScorer()
        scores = _run(generator, scorer, PROMPT, list(range(5)), 2, SETTINGS, ["technical"], overlap)
        runs[overlap] = (_values(scores), scorer.threads)
    sequential, overlapped = runs[False], runs[True]
    assert sorted(sequential[0]) == ["c000", "c001", "c002", "c003", "c004"]
    assert overlapped[0] == sequential[0]
    assert sequential[1] == [True, True, True]
    assert overlapped[1] == [False, False, False]

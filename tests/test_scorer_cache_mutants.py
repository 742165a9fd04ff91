"""The scorer's request seeds, cache keys and cache, checked on their own: stable across versions, an
entry a marked copy, written whole beside the others, errors never kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reward_model.interface import DimensionScore, ScoreStatus
from reward_model.scorer import ScoreCache, cache_key, request_seed


def test_request_seeds_are_stable_63_bit_numbers():
    # Pinned: the same run seed must draw the same completions in every version.
    assert request_seed(0, "abc", "aesthetic", "p") == 2676550153628413387
    assert request_seed(0, "abc", "alignment", "p") == 3519306738570810221
    seeds = [request_seed(seed, "abc", "technical", None) for seed in range(64)]
    assert all(0 <= s < 2**63 for s in seeds) and max(seeds) >= 2**62  # the whole 63 bits are used


def test_cache_keys_are_stable_and_ignore_the_order_settings_are_given_in():
    # Pinned: an on-disk cache written by an earlier version stays valid.
    key = cache_key("h", "a cat", "alignment", "m", {"mode": "reason", "do_sample": False})
    assert key == "fb2f354cfc53ed82196522874a903f762e338eb3ed83d7d833b31ba7ba2e37fc"
    assert cache_key("h", "a cat", "alignment", "m", {"do_sample": False, "mode": "reason"}) == key


def test_a_cached_result_is_a_marked_copy_and_costs_no_tokens(tmp_path):
    cache = ScoreCache(tmp_path / "cache")
    stored = DimensionScore("technical", ScoreStatus.OK, 3.0, samples=[3.0], generated_tokens=9)
    cache.put("k", stored)
    found = cache.get("k")
    assert (found.score, found.cached, found.generated_tokens) == (3.0, True, 0)
    found.samples.append(1.0)  # the caller's copy: the cache keeps its own
    assert cache.get("k").samples == [3.0] and not stored.cached and len(cache) == 1
    on_disk = json.loads((tmp_path / "cache" / "k.json").read_text())
    assert on_disk["cached"] is False and on_disk["generated_tokens"] == 9
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["k.json"]  # no temporary file left


def test_what_is_stored_is_a_fresh_unmarked_copy_written_atomically_beside_the_entries(tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path / "new" / "cache")  # folders made as needed
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (moved.append(Path(source)), real_replace(source, target)))
    result = DimensionScore("technical", ScoreStatus.OK, 3.0, samples=[3.0], cached=True)
    cache.put("k", result)
    result.samples.append(9.0)  # the caller's object changes later: the cache's copy does not
    assert cache.get("k").samples == [3.0]
    assert json.loads((tmp_path / "new" / "cache" / "k.json").read_text())["cached"] is False
    (temporary,) = moved  # written whole beside the entry (the same disk), then moved into place
    assert temporary.parent == tmp_path / "new" / "cache" and temporary.name.endswith(".tmp")


def test_a_disk_entry_is_read_once_then_served_from_memory(tmp_path):
    ScoreCache(tmp_path).put("k", DimensionScore("technical", ScoreStatus.OK, 2.0))
    cache = ScoreCache(tmp_path)
    assert len(cache) == 0 and cache.get("k").score == 2.0 and len(cache) == 1
    (tmp_path / "k.json").unlink()
    assert cache.get("k").score == 2.0
    cache.clear_memory()
    assert len(cache) == 0 and cache.get("k") is None


def test_a_memory_cache_writes_no_files_and_misses_unknown_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = ScoreCache()
    cache.put(cache_key("h", None, "technical", "m", {}), DimensionScore("technical", ScoreStatus.OK, 1.0))
    assert cache.directory is None and list(tmp_path.iterdir()) == [] and cache.get("other") is None


def test_errors_are_never_cached_but_parse_failures_are(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("e", DimensionScore.failure("technical", ScoreStatus.ERROR, "crash"))
    cache.put("p", DimensionScore("technical", ScoreStatus.PARSE_FAILURE, raw="??"))
    assert cache.get("e") is None and not (tmp_path / "e.json").exists()
    assert cache.get("p").raw == "??"

"""The benchmark runner: durable rows, kill -9 and resume, shards and merge, fixed seeds, independent judges."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.merge import merge_run
from benchmarks.rows import RowWriter, comparable, read_rows, row_key
from benchmarks.run import main as run_main
from benchmarks.run_engine import base_seed, image_seeds
from t2i_guidance.registries import load_prompt_set, register_scorer

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "t2i_guidance" / "world" / "weights" / "generator"


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """The shipped world generator at 2 steps, unguided and guided by the oracle."""
    folder = tmp_path_factory.mktemp("presets")
    for name, scorer in (("fast", "oracle"), ("sampled", "test-sampled"), ("recorded", "test-recorded-guide"),
                         ("cached", "test-cached-sampled")):
        (folder / f"{name}.json").write_text(json.dumps({
            "description": "test", "generator": str(GENERATOR), "scorer": scorer, "num_inference_steps": 2,
            "guidance_scale": 3.0, "weights": "technical=1,aesthetic=1,alignment=2"}))
    return folder


class SampledScorer:
    """Draws its scores from torch's global generator, as a sampled scorer without its own seed does."""

    name = "test-sampled"

    def score(self, items, prompt, dimensions):
        from reward_model.interface import DimensionScore

        return {i.id: {d: DimensionScore(d, "ok", float(torch.rand(()))) for d in dimensions} for i in items}


register_scorer("test-sampled", SampledScorer)


class CachedSampledScorer(SampledScorer):
    """A sampled scorer with the real scorer's in-memory cache (reward_model.scorer.ScoreCache)."""

    name = "test-cached-sampled"

    def __init__(self):
        from reward_model.scorer import ScoreCache

        self.cache = ScoreCache()

    def score(self, items, prompt, dimensions):
        import hashlib

        table = {}
        for item in items:
            key = hashlib.sha256(item.image.tobytes() + prompt.encode()).hexdigest()
            table[item.id] = {}
            for d in dimensions:
                found = self.cache.get(key + d)
                if found is None:
                    found = super().score([item], prompt, [d])[item.id][d]
                    self.cache.put(key + d, found)
                table[item.id][d] = found
        return table


register_scorer("test-cached-sampled", CachedSampledScorer)


class RecordingOracle:
    """The world's oracle, noting every prompt it is asked to judge against."""

    name = "test-recording"
    prompts: list[str] = []

    def __init__(self, **kwargs):
        from t2i_guidance.registries import build_scorer

        self.inner = build_scorer("oracle", **kwargs)

    def score(self, items, prompt, dimensions):
        type(self).prompts.append(prompt)
        return self.inner.score(items, prompt, dimensions)


class RecordingGuide(RecordingOracle):
    """Keeps the oracle's rationales (the rewriter reads them) but scores by a hash of the pixels, so a
    later round's image wins about half the time, whatever the 2-step generator draws."""

    prompts: list[str] = []

    def score(self, items, prompt, dimensions):
        import dataclasses
        import hashlib

        table = super().score(items, prompt, dimensions)
        for item in items:
            value = int(hashlib.sha256(item.image.tobytes()).hexdigest()[:6], 16) / 16**6 * 5
            table[item.id] = {d: dataclasses.replace(s, score=value) if s.ok else s for d, s in table[item.id].items()}
        return table


class RecordingJudge(RecordingOracle):
    prompts: list[str] = []


register_scorer("test-recorded-guide", RecordingGuide)
register_scorer("test-recording-judge", RecordingJudge)
REFINE = "refine,per_round=1,max_rounds=2"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, presets):
    """An uninterrupted, unsharded run: 6 prompts x 2 strategies x 1 image."""
    out = tmp_path_factory.mktemp("reference")
    assert run_main(args(out, presets)) == 0
    return out


def args(out, presets, *extra, strategies=None):
    # Refinement first, so a kill in the first rows lands among its rows.
    strategies = strategies or [f"{REFINE}:{presets}/fast.json", f"unguided:{presets}/fast.json",
                                f"best-of-2:{presets}/fast.json"]
    return ["--out", str(out), "--per-task", "1", "--images", "1", "--strategies", *strategies,
            "--judges", "oracle", "--allow-self-judged", "--quiet", *extra]


def comparable_rows(out):
    rows = [r for p in sorted(Path(out).glob("rows*.jsonl")) for r in read_rows(p)]
    return rows, sorted(json.dumps(comparable(r), sort_keys=True) for r in rows)


def test_rows_survive_a_partial_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    with RowWriter(path) as writer:
        writer.append({"a": 1})
    with open(path, "a") as handle:
        handle.write('{"a": 2, "cut sho')  # a kill in the middle of a write
    assert read_rows(path) == [{"a": 1}]
    with RowWriter(path) as writer:
        writer.append({"a": 3})
    assert read_rows(path) == [{"a": 1}, {"a": 3}]


def test_world_geneval_prompts_are_distinct_and_seeds_fixed_per_prompt():
    suite = load_prompt_set("world-geneval")
    assert len({r["prompt"] for r in suite.records}) == len(suite.records)
    assert suite.tasks == ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    first = base_seed(0, "world-geneval", "counting-003")
    assert first == base_seed(0, "world-geneval", "counting-003") != base_seed(1, "world-geneval", "counting-003")
    assert image_seeds(first, 1, 4) == [first + 100 + j for j in range(4)]
    limited = suite.limited(2)
    assert [r["id"] for r in limited.records[:2]] == [r["id"] for r in suite.records[:2]]
    assert len(limited.records) == 12


def test_kill_minus_9_then_resume_loses_and_repeats_nothing(tmp_path, presets, reference):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "benchmarks.run", *args(killed, presets)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows_file = killed / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not rows_file.exists() or len(read_rows(rows_file)) < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = len(read_rows(rows_file))
    assert 3 <= interrupted < 18, "the kill must land mid-way"
    assert any(r["kind"] == "refine" for r in read_rows(rows_file))

    assert run_main(args(killed, presets)) == 0  # resume
    resumed, resumed_view = comparable_rows(killed)
    _, whole_view = comparable_rows(reference)
    assert len(resumed) == 18 and len({row_key(r) for r in resumed}) == 18  # none lost, none twice
    assert resumed_view == whole_view  # same inputs, same rows (refinement's rounds included)


def test_shards_merge_to_the_unsharded_rows(tmp_path, presets, reference):
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        assert run_main(args(out, presets, "--shard", shard)) == 0
    assert merge_run(out) == 18
    assert [p.name for p in out.glob("rows*.jsonl")] == ["rows.jsonl"]
    assert comparable_rows(out)[1] == comparable_rows(reference)[1]


def test_guided_image_pairs_with_the_unguided_one(reference):
    rows = read_rows(reference / "rows.jsonl")
    by_key = {(r["kind"], r["prompt_id"], r["image_index"]): r for r in rows}
    for (kind, prompt_id, k), row in by_key.items():
        if kind in ("best-of-n", "refine"):  # both draw 2 candidates: equal compute, same first noise
            unguided = by_key[("unguided", prompt_id, k)]
            assert row["seeds"] == [unguided["seeds"][0], unguided["seeds"][0] + 1]
            assert row["independent"]["oracle"] is False and unguided["independent"]["oracle"] is True
            assert row["costs"]["nfes"] == 2 * unguided["costs"]["nfes"] and row["costs"]["candidates"] == 2
            assert row["costs"]["scorer_requests"] == 2 * 3  # the ledger: 2 candidates x 3 dimensions
            assert row["timing"]["stage_seconds"]["generate"] > 0
        assert isinstance(row["correct"], bool) and row["reason"]


def test_refinement_is_judged_against_the_original_prompt(tmp_path, presets):
    """Rounds after the first draw rewritten prompts; the guide and every judge still see the user's."""
    RecordingGuide.prompts.clear()
    RecordingJudge.prompts.clear()
    out = tmp_path / "refine"
    assert run_main(["--out", str(out), "--per-task", "1", "--images", "1", "--quiet", "--strategy",
                     f"{REFINE}:{presets}/recorded.json", "--judges", "test-recording-judge"]) == 0
    rows = read_rows(out / "rows.jsonl")
    originals = {r["prompt"] for r in rows}
    assert len(rows) == 6 and all(r["kind"] == "refine" and r["guides"] == ["test-recorded-guide"] for r in rows)
    assert any(r["search"]["picked_prompt"] != r["prompt"] for r in rows), "some pick must be a rewrite's"
    assert set(RecordingGuide.prompts) == originals  # the guide scored every round against the original
    assert set(RecordingJudge.prompts) == originals  # so did the judge, whichever round's image was kept
    assert all(r["independent"] == {"test-recording-judge": True, "correctness:oracle": True} for r in rows)


def test_a_judge_that_guided_the_run_is_refused(tmp_path, presets, capsys):
    command = ["--out", str(tmp_path / "x"), "--per-task", "1", "--strategies", f"best-of-2:{presets}/fast.json",
               "--judges", "oracle"]
    with pytest.raises(SystemExit) as exit_info:
        run_main(command)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "guided by oracle" in error and "\n" not in error
    assert not (tmp_path / "x").exists()  # refused before anything was written or loaded


def test_a_judge_that_guided_a_refinement_is_refused(tmp_path, presets, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--out", str(tmp_path / "x"), "--per-task", "1",
                  "--strategy", f"{REFINE}:{presets}/recorded.json", "--judges", "test-recorded-guide"])
    assert exit_info.value.code == 2
    assert "guided by test-recorded-guide" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad, message", [
    (["--strategies", "best-of-1:embedded"], "N >= 2"),
    (["--strategies", "refine,nonsense=1:embedded"], "does not apply"),
    (["--strategies", "refine,seed=1:embedded"], "the runner sets seed"),
    (["--strategies", "refine:embedded", "refine"], "named twice"),
    (["--strategies", "cascade,n=2,keep=1,cheap_scorer=oracle:embedded"], "guided by oracle"),  # its cheap pass
    (["--strategies", "sometimes:embedded"], "bad strategy"),
    (["--strategies", "unguided:nope"], "unknown preset"),
    (["--strategies", "unguided:embedded", "--judges", "nope"], "unknown judge"),
    (["--strategies", "unguided:embedded", "--shard", "2/2"], "bad shard"),
    (["--strategies", "unguided:embedded", "--prompt-set", "nope"], "unknown prompt set"),
])
def test_bad_input_is_one_error_line(tmp_path, bad, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--out", str(tmp_path / "y"), *bad])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and message in error and error.count("\n") == 1


def test_a_resumed_run_with_other_inputs_is_refused(tmp_path, presets, capsys):
    out = tmp_path / "cfg"
    (out / "config.json").parent.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        run_main(args(out, presets))
    assert "different config" in capsys.readouterr().err


def test_a_sampled_guide_gives_the_same_rows_whole_or_sharded(tmp_path, presets):
    strategies = [f"best-of-3:{presets}/sampled.json"]
    assert run_main(args(tmp_path / "whole", presets, strategies=strategies)) == 0
    for shard in ("1/2", "0/2"):  # the other order: each item must not depend on what ran before it
        assert run_main(args(tmp_path / "parts", presets, "--shard", shard, strategies=strategies)) == 0
    whole, parts = comparable_rows(tmp_path / "whole"), comparable_rows(tmp_path / "parts")
    assert whole[1] == parts[1]
    assert len({r["pick"] for r in whole[0]}) > 1  # the sampled guide did pick different candidates


def test_a_cached_guide_gives_the_same_rows_whole_or_sharded(tmp_path, presets):
    """Best-of-N and refinement draw the same first images: a scorer cache shared across items must not
    hand the later strategy the earlier one's scores (or make its ledger depend on the run order)."""
    strategies = [f"best-of-2:{presets}/cached.json", f"{REFINE}:{presets}/cached.json"]
    assert run_main(args(tmp_path / "whole", presets, strategies=strategies)) == 0
    for shard in ("1/2", "0/2"):
        assert run_main(args(tmp_path / "parts", presets, "--shard", shard, strategies=strategies)) == 0
    whole, parts = comparable_rows(tmp_path / "whole"), comparable_rows(tmp_path / "parts")
    assert whole[1] == parts[1]
    assert all(r["costs"]["scorer_cache_hits"] == 0 and r["costs"]["scorer_requests"] == 6 for r in whole[0])


def test_merge_refuses_two_different_rows_for_one_key():
    from benchmarks.rows import merge_rows

    row = {"strategy": "s", "prompt_set": "p", "prompt_id": "a", "image_index": 0, "correct": True}
    assert merge_rows([[row], [{**row, "timing": {"seconds": 2}}]]) == [row]  # timing aside, the same row
    with pytest.raises(ValueError, match="two different rows"):
        merge_rows([[row], [{**row, "correct": False}]])


def test_world_geneval_table_command_runs_resumes_and_refuses_a_self_judged_guide(tmp_path, presets, capsys):
    from benchmarks.world_geneval import main as geneval_main

    out = tmp_path / "table"
    command = ["table", "--out", str(out), "--preset", f"{presets}/recorded.json", "--n", "2", "--per-task", "1",
               "--images", "1", "--quiet"]
    assert geneval_main(command) == 0
    rows = read_rows(out / "rows.jsonl")
    assert sorted({r["kind"] for r in rows}) == ["best-of-n", "refine", "unguided"] and len(rows) == 18
    guided = [r for r in rows if r["kind"] != "unguided"]
    assert {r["costs"]["nfes"] for r in guided} == {2 * rows[0]["costs"]["nfes"]}  # equal compute
    report = (out / "report.md").read_text()
    assert "## GenEval-shaped table" in report and "refine,per_round=1,max_rounds=2" in report
    assert "Not independent" not in report
    assert geneval_main(command) == 0 and "0 rows written, 18 already done" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_info:  # the oracle-guided preset, judged by the oracle
        geneval_main(["table", "--out", str(tmp_path / "self"), "--preset", f"{presets}/fast.json"])
    assert exit_info.value.code == 2 and "guided by oracle" in capsys.readouterr().err


def test_a_strategy_registered_later_runs_without_a_benchmark_edit(tmp_path, presets, monkeypatch):
    from t2i_guidance.search import _STRATEGIES
    from t2i_guidance.search.base import BestOfN

    class LateStrategy(BestOfN):  # stands for one a later change registers (path search, particles, ...)
        name = "test-late"

    monkeypatch.setitem(_STRATEGIES._entries, "test-late", LateStrategy)  # removed again after the test
    out = tmp_path / "late"
    assert run_main(args(out, presets, strategies=[f"test-late,n=3:{presets}/fast.json"])) == 0
    rows = read_rows(out / "rows.jsonl")
    assert len(rows) == 6 and {r["kind"] for r in rows} == {"test-late"}
    assert all(len(r["seeds"]) == 3 and r["costs"]["candidates"] == 3 and r["costs"]["scorer_requests"] == 9
               for r in rows)


class _BreaksWhileSaving:
    """An image whose PNG encoder dies after writing part of the file (a full disk, a kill)."""

    def save(self, target, format: str) -> None:
        with open(target, "wb") as handle:
            handle.write(b"\x89PNG half a picture")
        raise OSError("No space left on device")


def test_a_png_save_that_fails_part_way_leaves_the_final_path_untouched(tmp_path):
    from PIL import Image

    from benchmarks.run_engine import _save_png

    fresh = tmp_path / "images" / "new.png"
    with pytest.raises(OSError, match="No space"):
        _save_png(_BreaksWhileSaving(), fresh)
    assert not fresh.exists()  # a resumed run must not find a half-written picture under the final name

    earlier = tmp_path / "images" / "earlier.png"
    picture = Image.new("RGB", (4, 4), (200, 10, 10))
    digest = _save_png(picture, earlier)
    with pytest.raises(OSError):
        _save_png(_BreaksWhileSaving(), earlier)
    with Image.open(earlier) as reread:
        assert reread.tobytes() == picture.tobytes()  # the complete earlier file survives the failed save
    assert digest == hashlib.sha256(picture.tobytes()).hexdigest()[:16]

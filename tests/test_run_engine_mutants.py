"""The benchmark runner's resume and writes, checked without drawing a picture: shards, seeds, the run
folder's config, the PNG save, which work is left and what a run writes. A runner whose items are
stubbed stands in for generation; the rows, the folder and the skipping are the real ones."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from benchmarks.rows import RowWriter, read_rows
from benchmarks.run_engine import (
    RunConfig,
    Runner,
    Shard,
    _save_png,
    base_seed,
    check_or_write_config,
    image_seeds,
    run_folder_rows,
)
from t2i_guidance.registries import PromptSet

# ---------------------------------------------------------------- shards and seeds


@pytest.mark.parametrize(("text", "shard"), [("0/4", Shard(0, 4)), ("3/4", Shard(3, 4)), ("0/1", Shard(0, 1))])
def test_a_shard_is_parsed_from_i_slash_n(text, shard):
    assert Shard.parse(text) == shard


@pytest.mark.parametrize(("text", "message"), [
    ("4/4", "bad shard '4/4': need 0 <= I < N"), ("-1/4", "bad shard '-1/4': need 0 <= I < N"),
    ("0/0", "bad shard '0/0': need 0 <= I < N"),
    ("a/4", "bad shard 'a/4': expected I/N, e.g. 0/4"), ("1", "bad shard '1': expected I/N, e.g. 0/4"),
    ("1/2/3", "bad shard '1/2/3': expected I/N, e.g. 0/4"),
])
def test_a_bad_shard_is_refused_in_words(text, message):
    with pytest.raises(ValueError) as refused:
        Shard.parse(text)
    assert str(refused.value) == message
    # one line, not the int() failure behind it
    assert refused.value.__context__ is None or refused.value.__suppress_context__


def test_each_shard_writes_its_own_rows_file():
    assert Shard() == Shard(0, 1) and Shard().file_name() == "rows.jsonl"
    assert Shard(1, 4).file_name() == "rows.shard-1-of-4.jsonl"


def test_a_prompts_first_seed_is_fixed_by_run_seed_set_and_id():
    # Pinned: rows written by an earlier version must pair up with resumed ones on the same noise.
    assert base_seed(0, "world-geneval", "p1") == 280954000 and base_seed(3, "set", "a") == 689775000
    seeds = {base_seed(s, n, i) for s in (0, 1) for n in ("a", "b") for i in ("x", "y")}
    assert len(seeds) == 8 and all(s % 1000 == 0 and 0 <= s < 10**9 for s in seeds)


def test_an_images_seeds_are_consecutive_and_a_hundred_apart_per_image():
    assert image_seeds(5000, 0, 3) == [5000, 5001, 5002]
    assert image_seeds(5000, 2, 2) == [5200, 5201]
    assert image_seeds(5000, 1, 0) == []


# ---------------------------------------------------------------- the run folder


def config(**changes) -> RunConfig:
    return RunConfig(**{"prompt_set": "set", "strategies": ["a"], "judges": ["oracle"], **changes})


def test_the_config_is_written_once_and_a_different_one_refused(tmp_path):
    out = tmp_path / "new" / "run"
    check_or_write_config(out, config())
    written = (out / "config.json").read_text()
    assert written == json.dumps(config().to_dict(), indent=2) + "\n"
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # no temporary file left
    check_or_write_config(out, config())  # the same run resumed: accepted, untouched
    assert (out / "config.json").read_text() == written
    with pytest.raises(ValueError) as refused:
        check_or_write_config(out, config(seed=1))
    assert str(refused.value) == f"{out} holds a run with a different config ({out / 'config.json'}); use another --out"
    assert (out / "config.json").read_text() == written


def test_shards_writing_the_config_at_once_use_temporary_files_of_their_own(tmp_path, monkeypatch):
    moved = []
    monkeypatch.setattr(os, "replace", lambda source, target: moved.append((Path(source), Path(target))))
    for pid in (101, 202):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        check_or_write_config(tmp_path, config())
    assert [source.name for source, _ in moved] == ["config.101.tmp", "config.202.tmp"]
    assert {target for _, target in moved} == {tmp_path / "config.json"}
    assert json.loads((tmp_path / "config.202.tmp").read_text()) == config().to_dict()


def test_a_png_is_saved_whole_into_new_folders_and_named_by_its_pixels(tmp_path):
    picture = Image.new("RGB", (3, 2), (1, 2, 3))
    path = tmp_path / "images" / "s" / "p-0.png"
    digest = _save_png(picture, path)
    with Image.open(path) as reread:
        assert reread.format == "PNG" and reread.tobytes() == picture.tobytes()
    assert os.listdir(path.parent) == ["p-0.png"]
    other = _save_png(Image.new("RGB", (3, 2), (1, 2, 4)), tmp_path / "q.png")
    assert len(digest) == 16 and digest != other and int(digest, 16) >= 0


def test_the_run_folders_rows_are_read_from_every_rows_file_in_name_order(tmp_path):
    for name, rows in (("rows.shard-1-of-2.jsonl", [{"k": 2}]), ("rows.jsonl", [{"k": 0}, {"k": 1}]),
                       ("notes.jsonl", [{"k": 9}])):
        with RowWriter(tmp_path / name) as writer:
            for row in rows:
                writer.append(row)
    assert run_folder_rows(tmp_path) == [{"k": 0}, {"k": 1}, {"k": 2}]
    assert run_folder_rows(tmp_path / "missing") == []


# ---------------------------------------------------------------- which work is left, and a run


@dataclass
class Spec:
    name: str


RECORDS = [{"id": "p1", "task": "t", "prompt": "a red circle"}, {"id": "p2", "task": "t", "prompt": "a blue square"}]


class StubRunner(Runner):
    """Every item's row is its key and the torch threads it ran with; no model is loaded."""

    def run_item(self, spec, record, image_index):
        return {"strategy": spec.name, "prompt_set": self.prompt_set.name, "prompt_id": record["id"],
                "image_index": image_index, "threads": torch.get_num_threads()}


def runner(out: Path, shard: Shard | None = None, images: int = 2, **options) -> StubRunner:
    return StubRunner(config(images_per_prompt=images), PromptSet("set", RECORDS), [Spec("a"), Spec("b")], out,
                      shard=shard or Shard(), progress=False, **options)


def keys(rows) -> list[str]:
    return [f"{r['strategy']}:{r['prompt_id']}:{r['image_index']}" for r in rows]


ALL = ["a:p1:0", "a:p1:1", "a:p2:0", "a:p2:1", "b:p1:0", "b:p1:1", "b:p2:0", "b:p2:1"]


def test_work_is_strategies_then_prompts_then_images_and_a_shard_takes_every_nth(tmp_path):
    items = lambda shard: [f"{s.name}:{r['id']}:{k}" for s, r, k in runner(tmp_path, shard).work()]  # noqa: E731
    assert items(Shard()) == ALL
    assert items(Shard(1, 3)) == ALL[1::3] and items(Shard(0, 3)) == ALL[0::3]


def test_a_run_writes_every_item_then_a_resumed_run_writes_nothing(tmp_path):
    assert runner(tmp_path).run() == {"items": 8, "skipped": 0, "written": 8}
    assert keys(read_rows(tmp_path / "rows.jsonl")) == ALL and (tmp_path / "config.json").exists()
    assert runner(tmp_path).missing_keys() == []
    assert runner(tmp_path).run() == {"items": 8, "skipped": 8, "written": 0}
    assert keys(read_rows(tmp_path / "rows.jsonl")) == ALL


def test_a_resumed_run_does_only_what_no_rows_file_holds(tmp_path):
    with RowWriter(tmp_path / "rows.shard-1-of-2.jsonl") as writer:  # another shard's finished work counts too
        for key in ("a:p1:1", "b:p2:0"):
            strategy, prompt_id, index = key.split(":")
            writer.append({"strategy": strategy, "prompt_set": "set", "prompt_id": prompt_id,
                           "image_index": int(index)})
        writer.append({"strategy": "a", "prompt_set": "other set", "prompt_id": "p1", "image_index": 0})
    missing = [k for k in ALL if k not in ("a:p1:1", "b:p2:0")]
    assert runner(tmp_path).missing_keys() == [f"{k.split(':')[0]}:set:{k.split(':', 1)[1]}" for k in missing]
    assert runner(tmp_path).run() == {"items": 8, "skipped": 2, "written": 6}
    assert keys(read_rows(tmp_path / "rows.jsonl")) == missing
    assert runner(tmp_path).missing_keys() == []


def test_a_shard_writes_its_own_file_and_nothing_when_it_has_nothing_to_do(tmp_path):
    assert runner(tmp_path, Shard(1, 3)).run() == {"items": 3, "skipped": 0, "written": 3}
    assert keys(read_rows(tmp_path / "rows.shard-1-of-3.jsonl")) == ALL[1::3]
    assert runner(tmp_path, Shard(1, 3)).run() == {"items": 3, "skipped": 3, "written": 0}
    assert not (tmp_path / "rows.jsonl").exists()
    assert runner(tmp_path / "empty", images=0).run() == {"items": 0, "skipped": 0, "written": 0}
    assert not (tmp_path / "empty" / "rows.jsonl").exists()  # no empty rows file beside a merged one


def test_a_run_uses_the_threads_it_was_given_and_refuses_another_runs_folder(tmp_path):
    before = torch.get_num_threads()
    try:
        runner(tmp_path, threads=2).run()
    finally:
        torch.set_num_threads(before)
    assert {row["threads"] for row in read_rows(tmp_path / "rows.jsonl")} == {2}
    with pytest.raises(ValueError, match="different config"):
        runner(tmp_path, images=3).run()


class RecordingBar:
    """tqdm's stand-in: keeps how each bar was asked for, and passes the items through."""

    made: list[dict] = []

    def __init__(self, items, **options) -> None:
        self.items = items
        type(self).made.append(options)

    def __iter__(self):
        return iter(self.items)


def test_a_run_shows_one_images_bar_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr("tqdm.auto.tqdm", RecordingBar)
    monkeypatch.setattr(RecordingBar, "made", [])
    runner(tmp_path / "quiet").run()
    shown = runner(tmp_path / "shown")
    shown.progress = True
    shown.run()
    assert RecordingBar.made == [{"desc": "images", "unit": "img", "disable": True},
                                 {"desc": "images", "unit": "img", "disable": False}]

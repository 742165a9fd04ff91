"""Past one GPU, rehearsed on CPU: the benchmark runner and the CoT build launched as 2 processes
(torchrun), one shard each, merged by rank 0, equal the single-process results."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from benchmarks.rows import RowWriter, comparable, read_rows, row_key
from benchmarks.run import main as run_main
from reward_model.cot.rejection import RejectionConfig, build_cot_dataset, shard_path
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord, write_records

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "t2i_guidance" / "world" / "weights" / "generator"
ENV = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
for _name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):  # a launcher's variables would shard the reference runs
    ENV.pop(_name, None)


def launch(*command, timeout=240):
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 -m ...` (gloo-free: no process group)."""
    full = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", *command]
    result = subprocess.run(full, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def runner_args(out, preset):
    return ["--out", str(out), "--per-task", "1", "--images", "1", "--strategies", f"unguided:{preset}",
            f"best-of-2:{preset}", "--judges", "oracle", "--allow-self-judged", "--quiet"]


def test_two_launched_processes_shard_merge_and_report_like_one(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    preset = tmp_path / "fast.json"
    preset.write_text(json.dumps({"description": "test", "generator": str(GENERATOR), "scorer": "oracle",
                                  "num_inference_steps": 2, "guidance_scale": 3.0,
                                  "weights": "technical=1,aesthetic=1,alignment=2"}))
    assert run_main(runner_args(tmp_path / "one", preset)) == 0  # 6 prompts x 2 strategies x 1 image
    launched = tmp_path / "launched"
    # Shard 1 of an earlier launch was killed after 3 of its 6 rows (the single run wrote its rows in
    # work order, shard 1 takes every other item): the launch resumes it.
    launched.mkdir()
    (launched / "config.json").write_text((tmp_path / "one" / "config.json").read_text())
    with RowWriter(launched / "rows.shard-1-of-2.jsonl") as writer:
        for row in read_rows(tmp_path / "one" / "rows.jsonl")[1::2][:3]:
            writer.append(row)

    result = launch("benchmarks.run", *runner_args(launched, preset))
    assert "3 rows written, 3 already done, of 6 in shard 1/2" in result.stdout
    assert "6 rows written, 0 already done, of 6 in shard 0/2" in result.stdout
    assert "2 shards merged: 12 rows" in result.stdout
    assert sorted(p.name for p in launched.glob("rows*.jsonl")) == ["rows.jsonl"]
    assert (launched / "report.md").exists() and (launched / "summary.json").exists()
    one, two = read_rows(tmp_path / "one" / "rows.jsonl"), read_rows(launched / "rows.jsonl")
    assert sorted(map(row_key, one)) == sorted(map(row_key, two)) and len(two) == 12
    view = [sorted(json.dumps(comparable(r), sort_keys=True) for r in rows) for rows in (one, two)]
    assert view[0] == view[1]  # same seeds, picks, guide and judge scores, image hashes


def make_records(folder, n=9):
    records = [IQARecord(image=f"{i}.png", task=("technical", "aesthetic")[i % 2], label=1.0 + 0.4 * i, source="syn",
                         facts={"seen": [f"a shape number {i}"], "issues": ["the edges are blurred"] if i % 3 else []})
               for i in range(n)]
    path = folder / "train.jsonl"
    write_records(path, records)
    return path


TEACHER = {"noise_std": 0.5, "p_overlook": 0.2, "seed": 0}


def test_the_cot_build_launched_as_two_processes_writes_the_single_process_files(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    source = make_records(tmp_path)
    one = tmp_path / "one" / "cot.jsonl"
    summary = build_cot_dataset(source, one, RuleBasedTeacher(**TEACHER), RejectionConfig(k=4), progress=False)
    config = tmp_path / "config.yaml"
    two = tmp_path / "two" / "cot.jsonl"
    config.write_text(yaml.safe_dump({"threads": 1, "data": {"train": str(source)},
                                      "cot": {"teacher": "rule-based", "teacher_options": TEACHER, "k": 4,
                                              "out": str(two)}}))
    launch("reward_model.train", "cot", "--config", str(config))
    assert two.read_text() == one.read_text()  # the same lines, in record order
    for suffix in (".state.jsonl", ".summary.json"):
        assert Path(str(two) + suffix).read_text() == Path(str(one) + suffix).read_text()
    assert json.loads(Path(str(two) + ".summary.json").read_text()) == summary
    assert sorted(p.name for p in two.parent.iterdir()) == ["cot.jsonl", "cot.jsonl.state.jsonl",
                                                            "cot.jsonl.summary.json"]


class CountingTeacher(RuleBasedTeacher):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def write(self, record, image_path, k):
        self.seen.append(record.image)
        return super().write(record, image_path, k)


def build_in_threads(source, out, teachers, world=2):
    results = {}

    def rank(r):
        results[r] = build_cot_dataset(source, out, teachers[r], RejectionConfig(k=4), progress=False, rank=r,
                                       world_size=world, merge_timeout=60)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_sharded_cot_build_resumes_each_shard_and_skips_merged_records(tmp_path):
    source = make_records(tmp_path)
    one = tmp_path / "one" / "cot.jsonl"
    build_cot_dataset(source, one, RuleBasedTeacher(**TEACHER), RejectionConfig(k=4), progress=False)
    out = tmp_path / "two" / "cot.jsonl"
    # Shard 1 was killed after 2 of its 4 records: its files hold those two.
    records = [json.loads(line) for line in one.with_name("cot.jsonl.state.jsonl").read_text().splitlines()]
    done_keys = {e["key"] for e in records[1::2][:2]}
    part = shard_path(out, 1, 2)
    part.parent.mkdir(parents=True)
    part.write_text("".join(line + "\n" for line in one.read_text().splitlines()
                            if json.loads(line)["key"] in done_keys))
    Path(str(part) + ".state.jsonl").write_text("".join(json.dumps(e) + "\n" for e in records
                                                        if e["key"] in done_keys))
    teachers = [CountingTeacher(**TEACHER), CountingTeacher(**TEACHER)]
    results = build_in_threads(source, out, teachers)
    assert teachers[0].seen == ["0.png", "2.png", "4.png", "6.png", "8.png"]
    assert teachers[1].seen == ["5.png", "7.png"]  # 1 and 3 were done before the kill
    assert out.read_text() == one.read_text() and results[0] == results[1]
    again = [CountingTeacher(**TEACHER), CountingTeacher(**TEACHER)]
    build_in_threads(source, out, again)  # all merged: nothing is done again, nothing is left beside it
    assert again[0].seen == again[1].seen == [] and out.read_text() == one.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["cot.jsonl", "cot.jsonl.state.jsonl",
                                                            "cot.jsonl.summary.json"]

"""Rejection sampling: keep the teacher trajectories whose score lands close to the label.

Output: one JSONL line per kept trajectory, with the record's fields plus `target` (the SFT target, plan
removed), `trajectory` (the teacher's full text), `prediction`, `accepted` / `k` and `difficulty`
(easy / hard by acceptance rate). A state file lists every processed record, so an interrupted run
resumes where it stopped and the summary (acceptance rate per task) covers all of them.

Under torchrun / accelerate launch (world_size > 1) process `rank` takes every world_size-th record from
the rank-th, into its own output and state (`train.shard-R-of-N.jsonl`, resumable like the whole); rank 0
waits for every shard, merges them into the output and state, in record order (the single-process files),
and writes the summary; the other ranks wait for that merge, so a stage after the build sees it whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from reward_model.cot.teachers import Teacher, record_key, split_plan
from reward_model.data.schema import IQARecord, read_records, resolve_image_path
from reward_model.interface import has_strict_format, parse_answer


@dataclass
class RejectionConfig:
    k: int = 8  # trajectories per record
    tolerance: float = 0.5  # accepted when |prediction - label| <= tolerance
    keep: str = "best"  # "best" (closest accepted) or "all" accepted
    easy_threshold: float = 0.5  # acceptance rate at or above which a record is "easy"
    split: str | None = "train"  # only records of this split (None: all), so test images never leak into SFT

    def __post_init__(self) -> None:
        if self.keep not in ("best", "all"):
            raise ValueError("keep must be 'best' or 'all'")
        if self.k < 1 or self.tolerance < 0:
            raise ValueError("k must be >= 1 and tolerance >= 0")


def sft_target(trajectory: str) -> str | None:
    """The SFT target (the trajectory without its plan), or None when that target is not well formed:
    exactly one think block with some reasoning left in it, then one answer block."""
    target = split_plan(trajectory)[1]
    if not has_strict_format(target) or not parse_answer(target).rationale:
        return None
    return target


def judge(trajectory: str, label: float, tolerance: float) -> float | None:
    """The trajectory's absolute error when its SFT target is well formed and within tolerance, else None."""
    target = sft_target(trajectory)
    if target is None:
        return None
    score = parse_answer(target).score
    if score is None or abs(score - label) > tolerance:
        return None
    return abs(score - label)


def _state_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".state.jsonl")


def _load_state(out_path: Path) -> dict[str, dict]:
    """Processed records; output lines of records missing from the state (a crash mid-write) are dropped."""
    state_path = _state_path(out_path)
    state = {}
    if state_path.exists():
        for line in state_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                state[entry["key"]] = entry
    if out_path.exists():
        lines = out_path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["key"] in state]
        if len(kept) != len([line for line in lines if line.strip()]):
            tmp = out_path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            tmp.replace(out_path)
    return state


def _read_state(out_path: Path) -> dict[str, dict]:
    """The state file's entries, read only (another process may be appending to it: a partial last line
    is no entry yet)."""
    state = {}
    path = _state_path(out_path)
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            state[entry["key"]] = entry
    return state


def shard_path(out_path: Path, rank: int, world_size: int) -> Path:
    return out_path.with_name(f"{out_path.stem}.shard-{rank}-of-{world_size}{out_path.suffix}")


def build_cot_dataset(
    records_path: str | Path,
    out_path: str | Path,
    teacher: Teacher,
    config: RejectionConfig,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    merge_timeout: float = 6 * 3600,
) -> dict:
    """Run the teacher over every record (this rank's share of them when world_size > 1), keep accepted
    trajectories, return (and write) the summary of all records."""
    records_path, out_path = Path(records_path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    records = [r for r in read_records(records_path) if config.split is None or r.split == config.split]
    if world_size > 1:
        return _build_shard(records_path, out_path, teacher, config, progress, records, rank, world_size,
                            merge_timeout)
    state = _process(records_path, out_path, teacher, config, progress, records)
    return _write_summary(out_path, state)


def _write_summary(out_path: Path, state: dict[str, dict]) -> dict:
    summary = summarise(state.values())
    summary_path = out_path.with_name(out_path.name + ".summary.json")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _process(records_path: Path, out_path: Path, teacher: Teacher, config: RejectionConfig, progress: bool,
             records: list[IQARecord]) -> dict[str, dict]:
    """The teacher over `records` into `out_path` and its state (resumed); returns the state."""
    state = _load_state(out_path)
    with (
        open(out_path, "a", encoding="utf-8") as out,
        open(_state_path(out_path), "a", encoding="utf-8") as state_file,
    ):
        for record in tqdm(records, desc="rejection sampling", disable=not progress):
            key = record_key(record)
            if key in state:
                continue
            image_path = resolve_image_path(record, records_path).resolve()
            trajectories = teacher.write(record, image_path, config.k)
            judged = [(judge(t, record.label, config.tolerance), t) for t in trajectories]
            accepted = sorted(((err, t) for err, t in judged if err is not None), key=lambda pair: pair[0])
            rate = len(accepted) / config.k
            difficulty = "easy" if rate >= config.easy_threshold else ("hard" if accepted else "unsolved")
            kept = accepted[:1] if config.keep == "best" else accepted
            for _, trajectory in kept:
                line = asdict(record) | {
                    "image": str(image_path),
                    "key": key,
                    "target": sft_target(trajectory),
                    "trajectory": trajectory,
                    "prediction": parse_answer(trajectory).score,
                    "accepted": len(accepted),
                    "k": config.k,
                    "difficulty": difficulty,
                    "teacher": teacher.name,
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()  # output before state: a crash in between is repaired on resume
            entry = {"key": key, "task": record.task, "accepted": len(accepted), "k": config.k,
                     "difficulty": difficulty}
            state_file.write(json.dumps(entry) + "\n")
            state_file.flush()
            state[key] = entry
    return state


def _build_shard(records_path: Path, out_path: Path, teacher: Teacher, config: RejectionConfig, progress: bool,
                 records: list[IQARecord], rank: int, world_size: int, merge_timeout: float) -> dict:
    from reward_model.launch import wait_until

    keys = [record_key(r) for r in records]
    merged = _read_state(out_path)  # what an earlier launch already merged is not done again
    mine = [r for r, key in list(zip(records, keys, strict=True))[rank::world_size] if key not in merged]
    if mine:  # nothing to do makes no empty files beside a merged output
        _process(records_path, shard_path(out_path, rank, world_size), teacher, config, progress, mine)
    if rank != 0:  # rank 0 merges; a stage after this one must see the whole output
        wait_until(lambda: [k for k in keys if k not in _read_state(out_path)], merge_timeout,
                   f"rank 0 to merge the CoT shards into {out_path}", interval=2.0)
        return summarise(_read_state(out_path).values())
    shards = [shard_path(out_path, r, world_size) for r in range(world_size)]

    def missing() -> list[str]:
        done = set(merged).union(*(_read_state(path) for path in shards))
        return [k for k in keys if k not in done]

    wait_until(missing, merge_timeout, f"the other CoT shards of {out_path}", interval=2.0)
    state, lines = dict(merged), []
    for path in [out_path, *shards]:
        entries = merged if path == out_path else _read_state(path)
        state.update(entries)
        if path.exists():
            lines += [line for line in path.read_text(encoding="utf-8").splitlines()
                      if line.strip() and json.loads(line)["key"] in entries]
    order = {key: i for i, key in enumerate(keys)}
    lines.sort(key=lambda line: order.get(json.loads(line)["key"], len(order)))  # stable: a record's lines stay
    entries = sorted(state.values(), key=lambda e: order.get(e["key"], len(order)))
    _write_atomically(out_path, lines)  # output before state, as in one process
    _write_atomically(_state_path(out_path), [json.dumps(e) for e in entries])
    for path in shards:
        for part in (path, _state_path(path)):
            part.unlink(missing_ok=True)
    return _write_summary(out_path, state)


def _write_atomically(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def summarise(entries) -> dict:
    """Per task: records, trajectories accepted / written, records kept, easy / hard / unsolved counts."""
    per_task: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        stats = per_task[entry["task"]]
        stats["records"] += 1
        stats["accepted"] += entry["accepted"]
        stats["written"] += entry["k"]
        stats["kept_records"] += entry["accepted"] > 0
        stats[entry["difficulty"]] += 1
    summary = {}
    for task, stats in sorted(per_task.items()):
        summary[task] = dict(stats) | {"acceptance_rate": stats["accepted"] / max(1, stats["written"])}
    return summary

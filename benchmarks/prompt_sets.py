"""Prompt sets registered by name, each a data file: distinct prompts with ids, tasks and metadata.

- `world-geneval`: GenEval's six tasks in the embedded world (`benchmarks/world_geneval.py`), judged
  correct or not by the world's oracles.
- `file:PATH`: a set of the user's — JSONL (`prompt`, optional `id`, `task`; GenEval's own
  `evaluation_metadata.jsonl`, whose `tag` becomes the task), TSV with a `Prompt` column and optional
  `Category` (PartiPrompts' layout), CSV with a `Prompts` or `Prompt` column and optional `Category`
  (DrawBench's layout), or plain text with one prompt per line. Such sets have no correctness judge here
  (GenEval's needs its COCO detector); the runner's judges score them.

No registry package ships GenEval's metadata, DrawBench or PartiPrompts with a licence (checked: hpsv2 1.2.0,
image-reward 1.5, t2v-metrics 3.0 on PyPI), so none is bundled: bring the file and use `file:PATH`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PromptSet:
    name: str
    records: list[dict]  # {id, task, prompt, ...metadata}
    correctness: Callable | None = None  # (record, image) -> (correct, reason)
    correctness_judge: str | None = None  # the registered scorer whose perception decides correctness
    tasks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen_ids, seen_prompts = set(), set()
        for record in self.records:
            if record["id"] in seen_ids:
                raise ValueError(f"prompt set {self.name!r} repeats the id {record['id']!r}")
            if record["prompt"] in seen_prompts:
                raise ValueError(f"prompt set {self.name!r} repeats the prompt {record['prompt']!r}")
            seen_ids.add(record["id"])
            seen_prompts.add(record["prompt"])
        self.tasks = list(dict.fromkeys(r["task"] for r in self.records))

    def limited(self, per_task: int | None) -> PromptSet:
        """The first `per_task` prompts of every task (the file order is already shuffled)."""
        if per_task is None:
            return self
        counts: dict[str, int] = {}
        kept = []
        for record in self.records:
            counts[record["task"]] = counts.get(record["task"], 0) + 1
            if counts[record["task"]] <= per_task:
                kept.append(record)
        return PromptSet(self.name, kept, self.correctness, self.correctness_judge)


_LOADERS: dict[str, Callable[[], PromptSet]] = {}


def register_prompt_set(name: str, loader: Callable[[], PromptSet]) -> None:
    _LOADERS[name] = loader


def available_prompt_sets() -> list[str]:
    return sorted(_LOADERS) + ["file:PATH"]


def load_prompt_set(name: str) -> PromptSet:
    if name.startswith("file:"):
        return load_prompt_file(name[len("file:"):], name)
    if name not in _LOADERS:
        raise KeyError(f"unknown prompt set {name!r}; available: {', '.join(available_prompt_sets())}")
    return _LOADERS[name]()


def load_prompt_file(path: str | Path, name: str | None = None) -> PromptSet:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = [{**r, "task": r.get("task", r.get("tag", "all"))} for r in rows]  # GenEval calls it `tag`
    elif path.suffix in (".tsv", ".csv"):
        rows = []
        for r in csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv" else ","):
            prompt = r.get("Prompt") or r.get("Prompts")
            if prompt is None:
                raise ValueError(f"{path} has no Prompt or Prompts column")
            rows.append({"prompt": prompt, "task": r.get("Category") or "all"})
    else:
        rows = [{"prompt": line.strip()} for line in text.splitlines() if line.strip()]
    records = [{"id": str(r.get("id", f"p{i:05d}")), "task": r.get("task", "all"), **r} for i, r in enumerate(rows)]
    return PromptSet(name or f"file:{path}", records)


def _world_geneval() -> PromptSet:
    from benchmarks.world_geneval import PROMPT_FILE

    records = [json.loads(line) for line in PROMPT_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return PromptSet("world-geneval", records, world_geneval_correctness, "oracle")


def world_geneval_correctness(record: dict, image) -> tuple[bool, str]:
    from benchmarks.world_geneval import judge
    from t2i_guidance.world.oracles import observe

    verdict = judge(record, observe(image))
    return verdict.correct, verdict.reason


register_prompt_set("world-geneval", _world_geneval)

__all__ = ["PromptSet", "available_prompt_sets", "load_prompt_file", "load_prompt_set",
           "register_prompt_set"]

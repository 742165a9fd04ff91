"""Prompt sets by name: distinct prompts with ids, tasks and metadata, for benchmarks and batch runs.

- Registered sets: each a lazy loader on the one registry mechanism (`reward_model.registry.LazyRegistry`);
  a package brings its own with `register_prompt_set(name, "module:loader")` (the embedded world's are in
  `t2i_guidance.world.prompt_sets`).
- `file:PATH`: a set of the user's — JSONL (`prompt`, optional `id`, `task`; GenEval's own
  `evaluation_metadata.jsonl`, whose `tag` becomes the task), TSV with a `Prompt` column and optional
  `Category` (PartiPrompts' layout), CSV with a `Prompts` or `Prompt` column and optional `Category`
  (DrawBench's layout), or plain text with one prompt per line. Such sets have no correctness judge here
  (GenEval's needs its COCO detector); the benchmark's judges score them.

No registry package ships GenEval's metadata, DrawBench or PartiPrompts with a licence (checked: hpsv2 1.2.0,
image-reward 1.5, t2v-metrics 3.0 on PyPI), so none is bundled: bring the file and use `file:PATH`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reward_model.registry import LazyRegistry
from t2i_guidance.registries import load_plugins

FILE_PREFIX = "file:"


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


PromptSetLoader = Callable[[], PromptSet]

_PROMPT_SETS = LazyRegistry("prompt set")
_PROMPT_SETS.add_loader(load_plugins)  # plugins bring their sets, like their scorers and pipelines


def register_prompt_set(name: str, loader: PromptSetLoader | str) -> None:
    """Register `loader` (a function, or "module:function" imported on first use) under `name`."""
    if name.startswith(FILE_PREFIX):
        raise ValueError(f"prompt set names must not start with {FILE_PREFIX!r}: {name!r}")
    _PROMPT_SETS.add(name, loader)


def available_prompt_sets() -> list[str]:
    return _PROMPT_SETS.names() + [f"{FILE_PREFIX}PATH"]


def load_prompt_set(name: str) -> PromptSet:
    if name.startswith(FILE_PREFIX):
        return load_prompt_file(name[len(FILE_PREFIX):], name)
    if name not in _PROMPT_SETS.names():  # the registry's error would not name `file:PATH`
        raise KeyError(f"unknown prompt set {name!r}; available: {', '.join(available_prompt_sets())}")
    return _PROMPT_SETS.get(name)()


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
    return PromptSet(name or f"{FILE_PREFIX}{path}", records)


__all__ = ["PromptSet", "available_prompt_sets", "load_prompt_file", "load_prompt_set", "register_prompt_set"]

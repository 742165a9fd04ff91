"""The engine behind `python -m benchmarks.run`: strategies x prompts x images, one durable JSONL row per finished image.

Work items are (strategy, prompt, image index) in a fixed order; `--shard i/n` takes every n-th item from
the i-th. Image k of a prompt draws its candidates from consecutive seeds starting at a seed fixed by the
prompt id and the run seed, so candidate 0 of a best-of-N image is exactly the unguided image with the same
index: guided and unguided rows pair up on the same initial noise. A resumed run skips every key already
written by any file of the run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.rows import RowWriter, read_rows, row_key
from benchmarks.strategy_specs import StrategySpec, guide_of, guides_of, make_search
from t2i_guidance.registries import PromptSet

MAX_CANDIDATES = 100  # seeds of consecutive images are 100 apart


class SelfJudgedError(ValueError):
    """A judge also guided one of the strategies: its numbers would measure reward hacking."""


@dataclass
class RunConfig:
    prompt_set: str
    strategies: list[str]
    judges: list[str]
    images_per_prompt: int = 4
    per_task: int | None = None
    seed: int = 0
    allow_self_judged: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(p) for p in text.split("/"))
        except ValueError:
            raise ValueError(f"bad shard {text!r}: expected I/N, e.g. 0/4") from None
        if not 0 <= index < count:
            raise ValueError(f"bad shard {text!r}: need 0 <= I < N")
        return cls(index, count)

    def file_name(self) -> str:
        return "rows.jsonl" if self.count == 1 else f"rows.shard-{self.index}-of-{self.count}.jsonl"


def base_seed(run_seed: int, prompt_set: str, prompt_id: str) -> int:
    """The first seed of a prompt: fixed by the prompt's id, not by its position in the set."""
    return (zlib.crc32(f"{run_seed}:{prompt_set}:{prompt_id}".encode()) % 1_000_000) * 1_000


def image_seeds(first: int, image_index: int, n: int) -> list[int]:
    start = first + image_index * MAX_CANDIDATES
    return list(range(start, start + n))


def self_judged_pairs(strategies: list[StrategySpec], judges: list[str], correctness_judge: str | None) -> list:
    """(strategy, judge) pairs where the judge is one of the strategy's guides."""
    pairs = []
    for spec in strategies:
        guides = guides_of(spec)
        for judge in [*judges, *([correctness_judge] if correctness_judge else [])]:
            if judge in guides:
                pairs.append((spec.name, judge))
    return pairs


def check_independence(strategies: list[StrategySpec], judges: list[str], prompt_set: PromptSet,
                       allow_self_judged: bool) -> None:
    pairs = self_judged_pairs(strategies, judges, prompt_set.correctness_judge)
    if pairs and not allow_self_judged:
        text = ", ".join(f"{s} is guided by {j}" for s, j in dict.fromkeys(pairs))
        raise SelfJudgedError(
            f"a judge also guides the run ({text}); pick another judge, or pass --allow-self-judged to record "
            "those numbers marked as not independent")


def drawable_prompt_set(prompt_set: PromptSet, strategies: list[StrategySpec]) -> PromptSet:
    """The set with every prompt normalised as the command lines normalise theirs, after checking that each
    strategy's generator can draw each one (a user's prompt file may hold anything); ValueError otherwise."""
    from t2i_guidance.input_checks import UsageError, check_drawable, check_prompt
    from t2i_guidance.registries import load_preset

    locations = dict.fromkeys(s.plan.generator_location if s.guided else load_preset(s.preset).generator
                              for s in strategies)
    records = []
    for record in prompt_set.records:
        try:
            prompt = check_prompt(record["prompt"])
            for location in locations:
                check_drawable(prompt, location)
        except UsageError as exc:
            raise ValueError(f"prompt {record['id']} of {prompt_set.name} ({str(record['prompt'])[:80]!r}): "
                             f"{exc}") from None
        records.append({**record, "prompt": prompt})
    return PromptSet(prompt_set.name, records, prompt_set.correctness, prompt_set.correctness_judge)


def run_folder_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("rows*.jsonl")):
        rows.extend(read_rows(path))
    return rows


def check_or_write_config(out: Path, config: RunConfig) -> None:
    path = out / "config.json"
    data = config.to_dict()
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != data:
            raise ValueError(f"{out} holds a run with a different config ({path}); use another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"config.{os.getpid()}.tmp")  # launched shards may write it at the same moment
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _save_png(image, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return hashlib.sha256(image.tobytes()).hexdigest()[:16]


@dataclass
class Runner:
    config: RunConfig
    prompt_set: PromptSet
    strategies: list[StrategySpec]
    out: Path
    shard: Shard = field(default_factory=Shard)
    threads: int = 1
    device: str | None = None  # None: cuda when present
    progress: bool = True
    _generators: dict = field(default_factory=dict)
    _scorers: dict = field(default_factory=dict)
    _searches: dict = field(default_factory=dict)

    def work(self) -> list[tuple[StrategySpec, dict, int]]:
        items = [(s, r, k) for s in self.strategies for r in self.prompt_set.records
                 for k in range(self.config.images_per_prompt)]
        return items[self.shard.index :: self.shard.count]

    # ---- lazily loaded models (only what pending work needs)

    def _generator(self, path: str):
        if path not in self._generators:
            from t2i_guidance.generator import Generator

            self._generators[path] = Generator.from_pretrained(path, device=self.device)
        return self._generators[path]

    def _scorer(self, name: str, **kwargs):
        key = (name, json.dumps(kwargs, sort_keys=True))
        if key not in self._scorers:
            from t2i_guidance import registries as scorers
            from t2i_guidance.input_checks import accepts_keyword

            # The run's device reaches every scorer that takes one (a guide's options may still name
            # another): one process per GPU puts its generator and its scorers on its own GPU.
            if self.device is not None and accepts_keyword(scorers.get_scorer_factory(name), "device"):
                kwargs = {"device": self.device, **kwargs}
            self._scorers[key] = scorers.build_scorer(name, **kwargs)
        return self._scorers[key]

    def _search(self, spec: StrategySpec):
        if spec.name not in self._searches:
            from t2i_guidance.registries import load_preset

            if spec.guided:  # the run builder's resolution of generator and scorer (overrides included)
                location = spec.plan.generator_location
                scorer = self._scorer(spec.plan.scorer_name, **spec.plan.scorer_kwargs)
            else:
                location, scorer = load_preset(spec.preset).generator, None
            self._searches[spec.name] = make_search(spec, self._generator(location), scorer)
        return self._searches[spec.name]

    # ---- one work item

    def _judge(self, image, record: dict, guides: list[str]) -> tuple[dict, dict]:
        """Every judge scores the image against the record's prompt: the user's, never a rewrite of it."""
        from reward_model.interface import DIMENSIONS, ImageItem

        verdicts, independent = {}, {}
        for name in self.config.judges:
            judge = self._scorer(name)
            dimensions = list(getattr(judge, "dimensions", DIMENSIONS))
            table = judge.score([ImageItem("image", image)], record["prompt"], dimensions)["image"]
            verdicts[name] = {d: {"status": s.status.value, "score": s.score, "reason": s.rationale or s.error}
                              for d, s in table.items()}
            independent[name] = name not in guides
        return verdicts, independent

    def run_item(self, spec: StrategySpec, record: dict, image_index: int) -> dict:
        import torch

        from t2i_guidance.registries import load_preset

        first = base_seed(self.config.seed, self.prompt_set.name, record["id"])
        (seed,) = image_seeds(first, image_index, 1)
        # Anything that draws from torch's global generator (a sampled scorer without its own seed) draws
        # the same numbers for this item whatever ran before it: resumed, sharded or whole runs agree.
        search = self._search(spec)  # loaded first: loading is not the item's cost, nor may it draw its numbers
        # A scorer's in-memory cache would carry scores from earlier items (best-of-N and refinement draw
        # the same first images): each item starts without it, so its rows and its ledger do not depend on
        # what ran before it in this process.
        for scorer in self._scorers.values():
            cache = getattr(scorer, "cache", None)
            if hasattr(cache, "clear_memory"):
                cache.clear_memory()
        torch.manual_seed(seed)
        cpu_start = time.process_time()
        outcome = search(record["prompt"], seed)
        cpu_seconds = time.process_time() - cpu_start
        if len(outcome.seeds) > MAX_CANDIDATES:
            raise RuntimeError(f"{spec.name} drew {len(outcome.seeds)} candidates for one image; at most "
                               f"{MAX_CANDIDATES} keep the images' seeds apart")
        guide, guides = guide_of(spec), guides_of(spec)
        generator = spec.plan.generator_location if spec.guided else load_preset(spec.preset).generator
        row = {
            "strategy": spec.name, "prompt_set": self.prompt_set.name, "prompt_id": record["id"],
            "image_index": image_index, "task": record["task"], "prompt": record["prompt"],
            "kind": spec.kind, "n": spec.n, "options": spec.options, "preset": spec.preset, "guide": guide,
            "guides": guides, "generator": Path(generator).name, "seeds": outcome.seeds, "pick": outcome.pick,
            "guide_score": outcome.guide_score, "costs": outcome.costs, "search": outcome.search,
        }
        start = time.perf_counter()
        if outcome.image is None:
            row.update(image=None, image_sha256=None, judges={}, independent={}, correct=None,
                       reason="no candidate could be scored by the guide")
        else:
            relative = f"images/{spec.name.replace(':', '_')}/{record['id']}-{image_index}.png"
            row["image_sha256"] = _save_png(outcome.image, self.out / relative)
            row["image"] = relative
            row["judges"], row["independent"] = self._judge(outcome.image, record, guides)
            if self.prompt_set.correctness is not None:
                row["correct"], row["reason"] = self.prompt_set.correctness(record, outcome.image)
                row["correctness_judge"] = self.prompt_set.correctness_judge
                row["independent"][f"correctness:{self.prompt_set.correctness_judge}"] = (
                    self.prompt_set.correctness_judge not in guides)
        # Wall-clock numbers (the ledger's seconds per stage among them) live apart: they differ between runs.
        # cpu_seconds: what one idle core would take, whatever else shares the machine.
        row["timing"] = {"strategy_seconds": outcome.seconds, "stage_seconds": outcome.stage_seconds,
                         "strategy_cpu_seconds": cpu_seconds, "judge_seconds": time.perf_counter() - start}
        return row

    def missing_keys(self) -> list[str]:
        """Keys of the whole run (every shard) that no rows file of the run folder holds yet."""
        done = {row_key(r) for r in run_folder_rows(self.out)}
        items = [(s.name, self.prompt_set.name, r["id"], k) for s in self.strategies for r in self.prompt_set.records
                 for k in range(self.config.images_per_prompt)]
        return [":".join(map(str, key)) for key in items if key not in done]

    def run(self) -> dict:
        """Do every pending item of this shard; returns counts."""
        import torch
        from tqdm.auto import tqdm

        torch.set_num_threads(self.threads)
        check_or_write_config(self.out, self.config)
        done = {row_key(r) for r in run_folder_rows(self.out)}
        items = self.work()
        pending = [(s, r, k) for s, r, k in items
                   if (s.name, self.prompt_set.name, r["id"], k) not in done]
        if pending:  # no empty shard file beside a merged rows.jsonl
            with RowWriter(self.out / self.shard.file_name()) as writer:
                for spec, record, k in tqdm(pending, desc="images", unit="img", disable=not self.progress):
                    writer.append(self.run_item(spec, record, k))
        return {"items": len(items), "skipped": len(items) - len(pending), "written": len(pending)}

"""The core's registries by name, and the plugins that fill them; prompt sets and presets by name.

A plugin (the embedded world is one) is a package that declares, in the entry-point group
`t2i_guidance.plugins`, a function that registers what it brings: scorers, strategies, rewriters, prompt
sets and the pipeline families it ships. Plugins are loaded once, the first time any of these registries is
asked for a name or a listing, so importing the core loads no plugin code.

Strategies: every strategy implements `SearchStrategy` (t2i_guidance.search.base) and is registered by name
(`register_strategy`); a new one is one class in its own module plus one call, no core file changes.

Prompt sets: distinct prompts with ids, tasks and metadata, for benchmarks and batch runs.
- Registered sets: each a lazy loader; a plugin brings its own with `register_prompt_set(name,
  "module:loader")` from its registration function, like the embedded world's.
- `file:PATH`: a set of the user's — JSONL (`prompt`, optional `id`, `task`; GenEval's own
  `evaluation_metadata.jsonl`, whose `tag` becomes the task), TSV with a `Prompt` column and optional
  `Category` (PartiPrompts' layout), CSV with a `Prompts` or `Prompt` column and optional `Category`
  (DrawBench's layout), or plain text with one prompt per line. Such sets have no correctness judge here
  (GenEval's needs its COCO detector); the benchmark's judges score them.
No registry package ships GenEval's metadata, DrawBench or PartiPrompts with a licence (checked: hpsv2 1.2.0,
image-reward 1.5, t2v-metrics 3.0 on PyPI), so none is bundled: bring the file and use `file:PATH`.

Presets: a generator, a scorer and settings, each described by one JSON file in `t2i_guidance/presets/`.
A new preset is a new JSON file; no code changes. A relative `generator` path is taken relative to that
folder, so presets that point at shipped weights work from any working directory.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from reward_model.interface import (
    SCORERS,
    VERDICT_RULES,
    LazyRegistry,
    available_scorers,
    build_scorer,
    get_scorer_factory,
    register_scorer,
    resolve,
)

PLUGIN_GROUP = "t2i_guidance.plugins"
# The scorer registry is reward_model's (scorers are its interface); plugins fill it like the others.
__all__ = ["SCORERS", "available_scorers", "build_scorer", "get_scorer_factory", "register_scorer"]

STRATEGIES = LazyRegistry("strategy")
REWRITERS = LazyRegistry("rewriter")  # "NAME" or "NAME:MODEL": the class is called with MODEL when given
PIPELINES = LazyRegistry("pipeline family")  # keyed by a pipeline's class name (model_index.json `_class_name`)


@dataclass(frozen=True)
class PipelineFamily:
    """What a plugin tells the core about a pipeline class it ships. Every field is a "module:attribute"
    string, imported only when used."""

    pipeline: str  # the class, with diffusers' `from_pretrained(location, dtype=...)`
    # (prompt, location) -> one line saying why this model cannot draw the prompt, or None when it can
    prompt_problem: str | None = None
    # (original prompt, rewritten prompt) -> why a rewrite is refused, or None (instead of the word check)
    rewrite_problem: str | None = None
    # (location, height, width) -> why this model cannot draw pictures of that size, or None when it can
    size_problem: str | None = None
    default_rewriter: str | None = None  # the refinement's rewriter when none is asked for


def pipeline_family(class_name: str | None) -> PipelineFamily | None:
    """The family a plugin registered for this pipeline class; None for any other (diffusers') pipeline."""
    return PIPELINES.get(class_name) if class_name in PIPELINES else None


def family_function(class_name: str | None, field_name: str):
    """A family's prompt_problem, rewrite_problem or size_problem function, or None when it has none."""
    family = pipeline_family(class_name)
    target = getattr(family, field_name) if family is not None else None
    return resolve(target) if target else None


_loaded = False


def load_plugins() -> None:
    """Run every declared plugin's registration function (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for target in declared_plugins():
        resolve(target)()


def declared_plugins() -> list[str]:
    """The "module:function" of each plugin in the entry-point group. A source checkout installed before
    its pyproject declared the group has no such metadata: then the declaration is read from pyproject."""
    found = [entry.value for entry in entry_points(group=PLUGIN_GROUP)]
    if found:
        return found
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return []
    declared = tomllib.loads(pyproject.read_text()).get("project", {}).get("entry-points", {})
    return list(declared.get(PLUGIN_GROUP, {}).values())


for _registry in (SCORERS, VERDICT_RULES, STRATEGIES, REWRITERS, PIPELINES):
    _registry.add_loader(load_plugins)


def register_strategy(name: str, target: Any) -> None:
    """Register a strategy class (or a "module:Class" string) under `name`."""
    STRATEGIES.add(name, target)


def available_strategies() -> list[str]:
    return STRATEGIES.names()


def strategy_class(name: str) -> type:
    return STRATEGIES.get(name)


def build_strategy(name: str, generator: Any, scorer: Any, **options: Any) -> Any:
    """`build_strategy("best-of-n", generator, scorer, weights=..., n=8)`; call the result with
    (prompt, settings, seed=..., budget=...)."""
    return strategy_class(name)(generator, scorer, **options)


# Prompt sets by name
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


# Presets by name
PRESET_DIR = Path(__file__).parent / "presets"
DEFAULT_PRESET = "embedded"  # the world's generator judged by the shipped tiny OmniQuality-R


# The knobs of one generation call; a preset holds their defaults (generator.py uses and re-exports them).
@dataclass
class GenerationSettings:
    num_inference_steps: int
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    negative_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # pipeline-specific, e.g. FLUX's true_cfg_scale

    def pipeline_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_inference_steps": self.num_inference_steps}
        for name in ("guidance_scale", "height", "width", "negative_prompt"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return {**kwargs, **self.extra}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    generator: str
    scorer: str
    num_inference_steps: int
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    weights: str = "technical=1,aesthetic=1,alignment=1"
    scorer_kwargs: dict = field(default_factory=dict)
    # The cheap pass (cascade pruning, particles' checkpoints); empty means the scorer's own cheap default.
    cheap_scorer_kwargs: dict = field(default_factory=dict)
    pipeline_kwargs: dict = field(default_factory=dict)  # family-specific, e.g. {"true_cfg_scale": 4.0}

    def generation_settings(self, **overrides) -> GenerationSettings:
        """The preset's GenerationSettings; keyword arguments that are not None override it."""
        values = {
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "height": self.height,
            "width": self.width,
            "extra": dict(self.pipeline_kwargs),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return GenerationSettings(**values)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


# Each field's JSON type; a user's preset file is checked against it before anything reads a value.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "description": (str,), "generator": (str,), "scorer": (str,), "num_inference_steps": (int,),
    "guidance_scale": (int, float, type(None)), "height": (int, type(None)), "width": (int, type(None)),
    "weights": (str,), "scorer_kwargs": (dict,), "cheap_scorer_kwargs": (dict,), "pipeline_kwargs": (dict,),
}
_JSON_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", dict: "an object",
                    type(None): "null"}


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def preset_problem(data: object) -> str | None:
    """Why `data` (a preset file's JSON) is not a preset, in a few words; None when it is one."""
    if not isinstance(data, dict):
        return "expected a JSON object with generator, scorer, num_inference_steps ..."
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        return f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
    missing = [name for name in ("description", "generator", "scorer", "num_inference_steps") if name not in data]
    if missing:
        return f"missing {', '.join(missing)}"
    for name, value in data.items():
        types = _FIELD_TYPES[name]
        if isinstance(value, bool) or not isinstance(value, types):  # JSON true is not a number here
            expected = " or ".join(_JSON_TYPE_NAMES[t] for t in types)
            return f"{name} must be {expected}, got {json.dumps(value)}"
    for name in ("num_inference_steps", "height", "width"):
        if data.get(name) is not None and data[name] < 1:
            return f"{name} must be at least 1, got {data[name]}"
    if not data["generator"].strip() or not data["scorer"].strip():
        return "generator and scorer must not be empty"
    return None


def load_preset(name: str) -> Preset:
    """A shipped preset by name, or a preset JSON file of the user's by path; ValueError with one line
    naming the file when it is not a preset."""
    path = Path(name) if name.endswith(".json") else PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(available_presets())} or a .json file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"preset file {str(path)!r} is not readable JSON: {exc}") from None
    problem = preset_problem(data)
    if problem:
        raise ValueError(f"preset file {str(path)!r} is not a valid preset: {problem}")
    generator = data.pop("generator")
    if generator.startswith("."):
        generator = str((path.parent / generator).resolve())
    return Preset(name=path.stem, generator=generator, **data)


# What the core itself ships. Plugins add theirs the same way, from their registration function.
STRATEGIES.add("best-of-n", "t2i_guidance.search.base:BestOfN")
STRATEGIES.add("refine", "t2i_guidance.search.prompt_refinement:PromptRefinement")
STRATEGIES.add("zero-order", "t2i_guidance.search.noise_search:ZeroOrderSearch")
STRATEGIES.add("cascade", "t2i_guidance.search.cascade:Cascade")
STRATEGIES.add("particles", "t2i_guidance.search.particles:ParticleResampling")
STRATEGIES.add("path-search", "t2i_guidance.search.path_search:PathSearch")
REWRITERS.add("transformers:MODEL", "t2i_guidance.search.llm_rewriter:TransformersRewriter")
REWRITERS.add("vllm:MODEL", "t2i_guidance.search.llm_rewriter:VLLMRewriter")

"""The core's registries by name, and the plugins that fill them.

A plugin (the embedded world is one) is a package that declares, in the entry-point group
`t2i_guidance.plugins`, a function that registers what it brings: scorers, strategies, rewriters and the
pipeline families it ships. Plugins are loaded once, the first time any of these registries is asked for
a name or a listing, so importing the core loads no plugin code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from reward_model.registry import (
    SCORERS,
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


for _registry in (SCORERS, STRATEGIES, REWRITERS, PIPELINES):
    _registry.add_loader(load_plugins)


# What the core itself ships. Plugins add theirs the same way, from their registration function.
STRATEGIES.add("best-of-n", "t2i_guidance.search.best_of_n_search:BestOfN")
STRATEGIES.add("refine", "t2i_guidance.search.prompt_refinement:PromptRefinement")
STRATEGIES.add("zero-order", "t2i_guidance.search.noise_search:ZeroOrderSearch")
STRATEGIES.add("cascade", "t2i_guidance.search.cascade:Cascade")
STRATEGIES.add("particles", "t2i_guidance.search.particles:ParticleResampling")
STRATEGIES.add("path-search", "t2i_guidance.search.path_search:PathSearch")
REWRITERS.add("transformers:MODEL", "t2i_guidance.search.llm_rewriter:TransformersRewriter")
REWRITERS.add("vllm:MODEL", "t2i_guidance.search.llm_rewriter:VLLMRewriter")

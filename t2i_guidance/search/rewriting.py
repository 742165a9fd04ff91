"""What a prompt rewriter is given and returns, and the checks every rewrite passes before it is drawn.

A rewriter sees the user's original prompt, the current prompt, the best candidates of the last round
with their per-dimension scores and rationales, and the history of what was tried. It returns a new
prompt (and optionally a negative prompt and a guidance scale). The refinement loop, not the rewriter,
decides whether a rewrite is usable (`check_rewrite`): empty, runaway, out-of-grammar rewrites and
rewrites that drop an element of the original are rejected and logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from t2i_guidance.world.captions import PromptParseError, PromptSpec, parse_prompt
from t2i_guidance.world.scene import INVERSE_RELATION

MAX_PROMPT_CHARS = 400  # a rewrite longer than this (or 4x the original) has run away
_STOPWORDS = frozenset(
    ["a", "an", "the", "of", "on", "in", "at", "to", "and", "with", "by", "for", "from", "is", "are", "be", "this", "that", "it", "its", "as", "into", "onto", "over", "under", "near", "picture", "image", "photo"]
)


@dataclass
class CandidateFeedback:
    """One judged candidate, as the rewriter sees it."""

    id: str
    prompt: str  # the prompt that drew it (alignment was judged against the original)
    value: float | None  # its selection value (weighted score)
    scores: dict[str, float | None]
    rationales: dict[str, str]


@dataclass
class RewriteRequest:
    original_prompt: str
    current_prompt: str
    best: list[CandidateFeedback]  # the last round's best candidates, best first
    history: list[dict] = field(default_factory=list)  # per round: prompt, best value, rewrite accepted
    negative_prompt: str | None = None
    guidance_scale: float | None = None


@dataclass
class Rewrite:
    prompt: str
    negative_prompt: str | None = None
    guidance_scale: float | None = None
    note: str = ""  # why the rewriter chose it, for the report
    raw: str = ""  # the rewriter's full output, kept for audits


@runtime_checkable
class Rewriter(Protocol):
    name: str

    def rewrite(self, request: RewriteRequest) -> Rewrite | None: ...


# ---------------------------------------------------------------- checks


def world_elements(spec: PromptSpec) -> set[tuple]:
    """The elements a world prompt asks for, phrasing-independent ("A above B" == "B below A")."""
    elements: set[tuple] = set()
    for obj in spec.objects:
        elements.add(("object", obj.colour, obj.shape, obj.count))  # "three circles" is not "a circle"
        if obj.size:
            elements.add(("size", obj.colour, obj.size))
    if spec.relation is not None:
        first, second, relation = spec.objects[0], spec.objects[1], spec.relation
        if relation in ("right_of", "below"):
            first, second, relation = second, first, INVERSE_RELATION[relation]
        elements.add(("relation", first.colour, relation, second.colour))
    if spec.position is not None:
        elements.add(("position", spec.position))
    if spec.background is not None:
        elements.add(("background", spec.background))
    elements.update(("tag", t) for t in spec.tags if t in ("blurry", "noisy"))  # asked-for damage is content
    return elements


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def check_rewrite(original: str, rewrite: Rewrite | None, world_grammar: bool) -> str | None:
    """None when the rewrite is usable, else the reason it is rejected (one line)."""
    if rewrite is None or not isinstance(rewrite.prompt, str) or not rewrite.prompt.strip():
        return "the rewriter returned nothing"
    text = rewrite.prompt.strip()
    if len(text) > max(MAX_PROMPT_CHARS, 4 * len(original)):
        return f"runaway rewrite ({len(text)} characters)"
    if rewrite.guidance_scale is not None and not 0.0 <= rewrite.guidance_scale <= 30.0:
        return f"guidance scale {rewrite.guidance_scale} is out of range"
    if not world_grammar:
        dropped = sorted(content_words(original) - content_words(text))
        return f"the rewrite drops {', '.join(dropped)}" if dropped else None
    try:
        wanted = world_elements(parse_prompt(original))
    except PromptParseError:
        return None  # the original itself is outside the grammar: nothing to hold the rewrite to
    try:
        got_spec = parse_prompt(text)
    except PromptParseError as error:
        return f"the rewrite leaves the caption grammar: {error}"
    got = world_elements(got_spec)
    dropped = wanted - got
    if dropped:
        return "the rewrite drops " + ", ".join(" ".join(map(str, e)) for e in sorted(dropped))
    if len(got_spec.objects) != len(parse_prompt(original).objects):
        return "the rewrite changes the number of objects"
    return None


def build_rewriter(spec: str, **kwargs: Any) -> Rewriter:
    """"world", "transformers:MODEL" or "vllm:MODEL" (MODEL a hub id or a folder)."""
    if spec == "world":
        from t2i_guidance.search.world_rewriter import WorldRewriter

        return WorldRewriter()
    backend, _, model = spec.partition(":")
    if backend in ("transformers", "vllm") and model:
        from t2i_guidance.search import llm_rewriter

        cls = llm_rewriter.TransformersRewriter if backend == "transformers" else llm_rewriter.VLLMRewriter
        return cls(model, **kwargs)
    raise ValueError(f"unknown rewriter {spec!r}: use world, transformers:MODEL or vllm:MODEL")


def check_rewriter_spec(spec: str) -> str:
    """Validate a rewriter name without loading anything (for the command line)."""
    backend, _, model = spec.partition(":")
    if spec != "world" and not (backend in ("transformers", "vllm") and model):
        raise ValueError(f"unknown rewriter {spec!r}: use world, transformers:MODEL or vllm:MODEL")
    return spec

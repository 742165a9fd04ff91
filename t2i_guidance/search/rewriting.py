"""What a prompt rewriter is given and returns, and the checks every rewrite passes before it is drawn.

A rewriter sees the user's original prompt, the current prompt, the best candidates of the last round
with their per-dimension scores and rationales, and the history of what was tried. It returns a new
prompt (and optionally a negative prompt and a guidance scale). The refinement loop, not the rewriter,
decides whether a rewrite is usable (`check_rewrite`): empty, runaway, out-of-grammar rewrites and
rewrites that drop an element of the original are rejected and logged. A pipeline family may hold
rewrites to its own grammar (its `rewrite_problem`); otherwise every content word must stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from t2i_guidance.registries import REWRITERS

RUNAWAY_REWRITE_CHARS = 400  # a rewrite longer than this (or 4x the original) has run away
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


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def dropped_content_words(original: str, rewritten: str) -> str | None:
    dropped = sorted(content_words(original) - content_words(rewritten))
    return f"the rewrite drops {', '.join(dropped)}" if dropped else None


def check_rewrite(original: str, rewrite: Rewrite | None,
                  rewrite_problem: Callable[[str, str], str | None] | None = None) -> str | None:
    """None when the rewrite is usable, else the reason it is rejected (one line). `rewrite_problem` holds
    the rewrite to the generator's grammar (see PipelineFamily); without it every content word must stay."""
    if rewrite is None or not isinstance(rewrite.prompt, str) or not rewrite.prompt.strip():
        return "the rewriter returned nothing"
    text = rewrite.prompt.strip()
    if len(text) > max(RUNAWAY_REWRITE_CHARS, 4 * len(original)):
        return f"runaway rewrite ({len(text)} characters)"
    if rewrite.guidance_scale is not None and not 0.0 <= rewrite.guidance_scale <= 30.0:
        return f"guidance scale {rewrite.guidance_scale} is out of range"
    return (rewrite_problem or dropped_content_words)(original, text)


# ---------------------------------------------------------------- rewriters by name
# A rewriter that runs a model is registered as "NAME:MODEL" and built with MODEL (a hub id or a folder).


def _registered_name(spec: str) -> str:
    backend, _, model = spec.partition(":")
    name = f"{backend}:MODEL" if model else backend
    if name not in REWRITERS.names():
        raise ValueError(f"unknown rewriter {spec!r}: use {', '.join(REWRITERS.names())}")
    return name


def build_rewriter(spec: str, **kwargs: Any) -> Rewriter:
    """A registered rewriter by name: "NAME" or "NAME:MODEL" ("transformers:MODEL", "vllm:MODEL", ...)."""
    cls = REWRITERS.get(_registered_name(spec))
    model = spec.partition(":")[2]
    return cls(model, **kwargs) if model else cls(**kwargs)


def check_rewriter_spec(spec: str) -> str:
    """Validate a rewriter name without loading anything (for the command line)."""
    _registered_name(spec)
    return spec

"""What the embedded world brings to the core, registered the way any third-party plugin registers:
its pipeline family (the pipeline class, what it can draw, how a rewrite is held to its grammar, its
rewriter), the rewriter itself and the oracle scorer. Declared in pyproject.toml's `t2i_guidance.plugins`.

The prompt checks read only the caption grammar and the generator's saved tokenizer, so a prompt the
world cannot draw is refused before any model is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from reward_model.registry import register_scorer
from t2i_guidance.registries import PIPELINES, REWRITERS, PipelineFamily

WORLD_PIPELINE = "WorldDiffusionPipeline"  # the embedded world's generator: it draws only its grammar


def register() -> None:
    from t2i_guidance.world.prompt_sets import register_prompt_sets

    register_scorer("oracle", "t2i_guidance.world.oracles:OracleScorer")
    REWRITERS.add("world", "t2i_guidance.world.rewriter:WorldRewriter")
    PIPELINES.add(WORLD_PIPELINE, PipelineFamily(
        pipeline="t2i_guidance.world.pipeline:WorldDiffusionPipeline",
        prompt_problem="t2i_guidance.world.plugin:cannot_draw",
        rewrite_problem="t2i_guidance.world.rewriter:grammar_problem",
        default_rewriter="world",
    ))
    register_prompt_sets()


def world_grammar_summary(counts: bool = False) -> str:
    """What the embedded world's model can draw, in one line (`counts`: its tokenizer knows the count words)."""
    from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, SHAPES

    counted = "; or two to four of one kind, e.g. 'three red squares'" if counts else ""
    return (
        f"one or two shapes ({', '.join(SHAPES)}) coloured {', '.join(COLOURS)}, small or large, "
        "at a place (on the left, at the top, in the center ...) or one left of / right of / above / below "
        f"the other{counted}, on a {', '.join(BACKGROUNDS)} background; "
        "e.g. 'a red circle above a small blue square on a white background'"
    )


def generator_words(generator_location: str | None) -> set[str] | None:
    """The words a world generator's saved tokenizer knows, read from its tokenizer.json (no model load);
    None when there is no such file to read (a hub id, or no location)."""
    if generator_location is None:
        return None
    path = Path(generator_location) / "tokenizer" / "tokenizer.json"
    try:
        vocab = json.loads(path.read_text())["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {word for word in vocab if isinstance(word, str)} if isinstance(vocab, dict) else None


def draws_counts(generator_location: str | None) -> bool:
    """Whether the world generator in this folder was built for counting prompts ("three red squares")."""
    from t2i_guidance.world.captions import extended_vocabulary

    words = generator_words(generator_location)
    return words is not None and set(extended_vocabulary()) <= words


def world_prompt_problem(prompt: str, generator_location: str | None = None) -> str | None:
    """Why the world's generator cannot draw `prompt`, in a few words, or None when it can.

    A word is known when the generator's saved tokenizer has it (without a readable tokenizer: the
    training grammar's words). So counting prompts ("three red squares", the extended grammar) pass
    exactly when the generator was built with the count words, and are refused by one built before."""
    from t2i_guidance.world.captions import PromptParseError, extended_vocabulary, parse_prompt, vocabulary

    known = generator_words(generator_location) or set(vocabulary())
    words = re.findall(r"\w+", prompt.lower())
    unknown = list(dict.fromkeys(w for w in words if w not in known))
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        problem = f"unknown word{'s' if len(unknown) > 1 else ''}: {shown}"
        if set(unknown) <= set(extended_vocabulary()):
            problem += "; this generator was not trained on counts"
        return problem
    try:
        parse_prompt(prompt)
    except PromptParseError as error:
        return str(error).split(":")[0].split(" in ")[0]
    return None


def cannot_draw(prompt: str, generator_location: str) -> str | None:
    """The world generator knows only its caption grammar: anything else would be drawn as the
    unknown-word token (and a scorer might still call that a match). One line, or None when drawable."""
    problem = world_prompt_problem(prompt, generator_location)
    if problem is None:
        return None
    return (f"the embedded model cannot draw this prompt ({problem}); "
            f"it draws only {world_grammar_summary(draws_counts(generator_location))}")

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

from reward_model.interface import normalise_prompt, register_scorer, register_verdict_rule
from t2i_guidance.registries import PIPELINES, REWRITERS, PipelineFamily

WORLD_PIPELINE = "WorldDiffusionPipeline"  # the embedded world's generator: it draws only its grammar


def register() -> None:
    from t2i_guidance.world.prompt_sets import register_prompt_sets

    register_scorer("oracle", "t2i_guidance.world.oracles:OracleScorer")
    register_verdict_rule("world-grounded", "t2i_guidance.world.grounded_verdict:grounded_answer")
    REWRITERS.add("world", "t2i_guidance.world.rewriter:WorldRewriter")
    PIPELINES.add(WORLD_PIPELINE, PipelineFamily(
        pipeline="t2i_guidance.world.pipeline:WorldDiffusionPipeline",
        prompt_problem="t2i_guidance.world.plugin:cannot_draw",
        rewrite_problem="t2i_guidance.world.rewriter:grammar_problem",
        size_problem="t2i_guidance.world.plugin:size_problem",
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
    exactly when the generator was built with the count words, and are refused by one built before.

    The prompt is read as `check_prompt` hands it on (NFC, invisible marks removed). Visible characters the
    grammar does not use (".", "!", emoji ...) are refused, not dropped: the tokenizer would draw each as its
    unknown token, and what the user typed stays what is drawn and recorded."""
    from t2i_guidance.world.captions import PromptParseError, extended_vocabulary, parse_prompt, vocabulary

    prompt = normalise_prompt(prompt)
    # The tokenizer splits text as \w+ | [^\w\s]+ (its Whitespace pre-tokenizer): a run like ",," or "."
    # is one token, and any but "," is unknown to it.
    foreign = list(dict.fromkeys(t for t in re.findall(r"[^\w\s]+", prompt) if t != ","))
    if foreign:
        shown = " ".join(repr(c) for c in foreign[:5])
        many = len(foreign) > 1
        return f"it does not know {'these' if many else 'the'} mark{'s' if many else ''} {shown}; leave " \
               f"{'them' if many else 'it'} out"
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
        spec = parse_prompt(prompt)
    except PromptParseError as error:
        return str(error).split(":")[0].split(" in ")[0]
    return _background_problem(words) or _stray_word_problem(words, spec) or _contradiction_problem(prompt, spec)


def _stray_word_problem(words: list[str], spec) -> str | None:
    """The parser skips words it cannot attach ("a red circle on a blue", "a small large red circle"), and
    the picture would quietly ignore them: every colour and size word must belong to a shape."""
    from t2i_guidance.world.captions import SIZE_SYNONYMS
    from t2i_guidance.world.scene import COLOURS

    for kind, vocabulary, attached in (("colour", COLOURS, [o.colour for o in spec.objects]),
                                       ("size", SIZE_SYNONYMS, [o.size for o in spec.objects])):
        stray = [w for w in words if w in vocabulary]
        if len(stray) != sum(value is not None for value in attached):
            return f"a {kind} word that belongs to no shape ({', '.join(stray)})"
    return None


def _contradiction_problem(prompt: str, spec) -> str | None:
    """A relation with nothing to relate ("a red circle above"), or two quality words that exclude each
    other ("sharp blurry"): the parser keeps one reading, the picture cannot show the rest."""
    from t2i_guidance.world.captions import QUALITY_TAGS, RELATION_WORDS

    text = " ".join(re.findall(r"\w+", prompt.lower()))
    if spec.relation is None:
        said = [p for ps in RELATION_WORDS.values() for p in ps if re.search(rf"\b{p}\b", text)]
        if said:
            return f"'{said[0]}' needs a second shape"
    kinds = {kind for kind, words in QUALITY_TAGS.items() for tag in spec.tags if tag in words}
    if len(kinds) > 1:
        return f"quality words that exclude each other ({', '.join(spec.tags)})"
    return None


def _background_problem(words: list[str]) -> str | None:
    """The parser reads "on a blue background" as no background at all (the picture comes out on gray):
    each "background" must follow one the world has, and only one may be named."""
    from t2i_guidance.world.scene import BACKGROUNDS

    choices = f"{', '.join(list(BACKGROUNDS)[:-1])} or {list(BACKGROUNDS)[-1]}"
    for before, word in zip(["", *words[:-1]], words, strict=True):
        if word == "background" and before not in BACKGROUNDS:
            named = f", not {before}" if before.isalpha() and before not in ("a", "an", "on", "the") else ""
            return f"the background can be {choices}{named}"
    if sum(w in BACKGROUNDS for w in words) > 1:
        return "name one background"
    return None


def size_problem(generator_location: str, height: int | None, width: int | None) -> str | None:
    """The world's generator draws squares of its UNet's sample size only (None: that size)."""
    try:
        config = json.loads((Path(generator_location) / "unet" / "config.json").read_text())
        size = int(config["sample_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable here: the pipeline itself refuses a wrong size
    asked = [value for value in (height, width) if value is not None and value != size]
    if asked:
        return f"the embedded model draws {size} x {size} pixel pictures only; leave out --height and --width"
    return None


def cannot_draw(prompt: str, generator_location: str) -> str | None:
    """The world generator knows only its caption grammar: anything else would be drawn as the
    unknown-word token (and a scorer might still call that a match). One line, or None when drawable."""
    problem = world_prompt_problem(prompt, generator_location)
    if problem is None:
        return None
    return (f"the embedded model cannot draw this prompt ({problem}); "
            f"it draws only {world_grammar_summary(draws_counts(generator_location))}")

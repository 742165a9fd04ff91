"""The caption grammar: several phrasings of one scene, and the parser that reads any of them back.

The parser is what the alignment oracle uses to know what a prompt asks for. It accepts every phrasing
the grammar produces (plus some slack in articles and punctuation) and raises PromptParseError otherwise.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, INVERSE_RELATION, SHAPES, SIZES, Scene, SceneObject

RELATION_WORDS = {
    "left_of": ("to the left of", "left of"),
    "right_of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
}
POSITION_WORDS = {
    "left": ("on the left", "at the left"),
    "right": ("on the right", "at the right"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "center": ("in the center", "in the middle"),
}
QUALITY_TAGS = {"blurry": ("blurry",), "noisy": ("noisy",), "clean": ("sharp", "clean", "sharp and clean")}
SIZE_SYNONYMS = {"small": "small", "tiny": "small", "large": "large", "big": "large"}
TAG_WORDS = ("blurry", "noisy", "sharp", "clean")


class PromptParseError(ValueError):
    """The prompt is not in the world's caption grammar."""


@dataclass(frozen=True)
class ObjectRequest:
    colour: str | None  # None only in the extended grammar ("a circle", "three squares")
    shape: str
    size: str | None = None  # None when the prompt does not say
    count: int = 1  # more than one only in the extended grammar ("two red circles")

    def phrase(self) -> str:
        return " ".join(w for w in (self.size, self.colour, self.shape) if w)

    def counted_phrase(self) -> str:
        """"three small red squares", or "a red square" for one."""
        if self.count == 1:
            return _article(self.phrase())
        return f"{NUMBER_NAMES[self.count]} {self.phrase()}s"


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt asks for: one object at a position, or two objects in a relation."""

    objects: tuple[ObjectRequest, ...]
    background: str | None = None
    position: str | None = None
    relation: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_extended(self) -> bool:
        """Outside the training grammar: a count, an object without colour, or two objects joined by "and"."""
        return (
            any(o.count != 1 or o.colour is None for o in self.objects)
            or (len(self.objects) == 2 and self.relation is None)
        )


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _object_phrase(obj: SceneObject, rng: random.Random) -> str:
    with_size = rng.random() < 0.5
    size_word = rng.choice(("small", "tiny")) if obj.size == "small" else rng.choice(("large", "big"))
    words = ([size_word] if with_size else []) + [obj.colour, obj.shape]
    return _article(" ".join(words))


def caption(scene: Scene, rng: random.Random, tag_probability: float = 0.7) -> str:
    """One phrasing of the scene, chosen by `rng`; degraded scenes carry their quality tag most of the time."""
    background = rng.choice((f"on a {scene.background} background", f"{scene.background} background"))
    if scene.relation is None:
        subject = _object_phrase(scene.objects[0], rng)
        body = f"{subject} {rng.choice(POSITION_WORDS[scene.position])}"
    else:
        first, second, relation = scene.objects[0], scene.objects[1], scene.relation
        if rng.random() < 0.5:  # "A above B" and "B below A" say the same
            first, second, relation = second, first, INVERSE_RELATION[relation]
        body = f"{_object_phrase(first, rng)} {rng.choice(RELATION_WORDS[relation])} {_object_phrase(second, rng)}"
    if rng.random() < 0.2:
        body = "a picture of " + body
    if background.startswith("on") and rng.random() < 0.3:
        text = f"{background}, {body}"
    else:
        text = f"{body} {background}" if background.startswith("on") else f"{body}, {background}"
    tagged = scene.quality != "clean" or rng.random() < 0.5
    if tagged and rng.random() < tag_probability:
        text += ", " + rng.choice(QUALITY_TAGS[scene.quality])
    return text


def canonical_caption(scene: Scene) -> str:
    """The fixed phrasing used for reports: sizes always named, no quality tag."""
    objects = [_article(o.phrase(with_size=True)) for o in scene.objects]
    if scene.relation is None:
        body = f"{objects[0]} {POSITION_WORDS[scene.position][0]}"
    else:
        body = f"{objects[0]} {RELATION_WORDS[scene.relation][0]} {objects[1]}"
    return f"{body} on a {scene.background} background"


def vocabulary() -> list[str]:
    """Every word the grammar can produce (the generator's word-level tokenizer is built from this)."""
    words = {"a", "an", "of", "picture", "background", "on", ",", "and"}
    for table in (RELATION_WORDS, POSITION_WORDS, QUALITY_TAGS):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    words.update(SHAPES, COLOURS, BACKGROUNDS, SIZES, SIZE_SYNONYMS)
    return sorted(words)


_OBJECT = re.compile(
    r"\b(?:(small|tiny|large|big)\s+)?(" + "|".join(COLOURS) + r")\s+(" + "|".join(SHAPES) + r")s?\b"
)


def _find_phrase(text: str, table: dict[str, tuple[str, ...]]) -> list[tuple[int, str]]:
    """(offset, key) for every phrase of `table` found in `text`, longest phrases first, no overlaps."""
    found, taken = [], set()
    candidates = sorted(((p, k) for k, ps in table.items() for p in ps), key=lambda pk: -len(pk[0]))
    for phrase, key in candidates:
        for match in re.finditer(r"\b" + re.escape(phrase) + r"\b", text):
            span = set(range(*match.span()))
            if not span & taken:
                taken |= span
                found.append((match.start(), key))
    return sorted(found)


def parse_prompt(prompt: str) -> PromptSpec:
    """Read what the prompt asks for; raise PromptParseError if it is outside the grammar.

    Prompts of the training grammar parse exactly as they always did; a prompt with a count word or an
    object without colour goes to the extended grammar, and so does one the training grammar refuses: it
    is then tried against the extended grammar (`parse_extended_prompt`).
    """
    if _COUNT_WORD.search(_normalise(prompt)) or _COLOURLESS.search(_normalise(prompt)):
        return parse_extended_prompt(prompt)
    try:
        return _parse_training_grammar(prompt)
    except PromptParseError as error:
        try:
            return parse_extended_prompt(prompt)
        except PromptParseError:
            raise error from None


def _normalise(prompt: str) -> str:
    return " ".join(re.sub(r"[^a-z, ]", " ", prompt.lower()).split())


_BACKGROUND_PHRASE = r"\b(" + "|".join(BACKGROUNDS) + r")\s+background\b"


def _split_background(prompt: str, text: str) -> tuple[str | None, str]:
    """(the background named, the text without it); several different backgrounds are refused."""
    backgrounds = re.findall(_BACKGROUND_PHRASE, text)
    if len(set(backgrounds)) > 1:
        raise PromptParseError(f"the prompt names several backgrounds: {prompt!r}")
    return (backgrounds[0] if backgrounds else None), re.sub(_BACKGROUND_PHRASE, " ", text)


def _one_or_two(pattern: re.Pattern, body: str, prompt: str, cue: str, plural: str) -> list[re.Match]:
    """The object phrases `pattern` finds in `body`: one or two, or a PromptParseError naming the `cue`."""
    matches = list(pattern.finditer(body))
    if not matches:
        raise PromptParseError(f"no object ({cue}) found in {prompt!r}")
    if len(matches) > 2:
        raise PromptParseError(f"more than two {plural} in {prompt!r}")
    return matches


def _parse_training_grammar(prompt: str) -> PromptSpec:
    text = _normalise(prompt)
    background, text_wo_background = _split_background(prompt, text)
    matches = _one_or_two(_OBJECT, text_wo_background, prompt, "colour + shape", "objects")
    objects = tuple(
        ObjectRequest(m.group(2), m.group(3), SIZE_SYNONYMS[m.group(1)] if m.group(1) else None) for m in matches
    )
    tags = tuple(t for t in TAG_WORDS if re.search(r"\b" + t + r"\b", text))
    if len(objects) == 2:
        between = text_wo_background[matches[0].end():matches[1].start()]
        relations = _find_phrase(between, RELATION_WORDS)
        if len(relations) != 1:
            raise PromptParseError(f"expected one relation between the two objects in {prompt!r}")
        if objects[0].colour == objects[1].colour:
            raise PromptParseError(f"two objects of the same colour cannot be told apart: {prompt!r}")
        return PromptSpec(objects, background, relation=relations[0][1], tags=tags)
    positions = _find_phrase(text_wo_background, POSITION_WORDS)
    if len(positions) > 1:
        raise PromptParseError(f"several positions named in {prompt!r}")
    return PromptSpec(objects, background, position=positions[0][1] if positions else None, tags=tags)


# ---------------------------------------------------------------- extended grammar (counts, GenEval tasks)
# Never produced by `caption`, so the generator was not trained on it: "two red circles", "three small
# squares", "a circle", "a circle and a red square", "a circle above a square". Each object group starts
# with an article or a number; counts of more than one take no position or relation.

NUMBER_NAMES = {1: "one", 2: "two", 3: "three", 4: "four"}
COUNT_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_COUNT_WORD = re.compile(r"\b(two|three|four)\b")
_COLOURLESS = re.compile(r"\b(a|an|one|two|three|four)\s+(?:(small|tiny|large|big)\s+)?(" + "|".join(SHAPES) + r")s?\b")
_GROUP = re.compile(
    r"\b(a|an|one|two|three|four)\s+(?:(small|tiny|large|big)\s+)?(?:(" + "|".join(COLOURS) + r")\s+)?("
    + "|".join(SHAPES) + r")(s?)\b"
)


def count_caption(
    shape: str, count: int, colour: str | None = None, size: str | None = None, background: str | None = None
) -> str:
    """The extended grammar's phrasing of `count` objects, e.g. "three small red squares on a white background"."""
    text = ObjectRequest(colour, shape, size, count).counted_phrase()
    return f"{text} on a {background} background" if background else text


def extended_vocabulary() -> list[str]:
    """The words of the extended grammar beyond `vocabulary()` (which the shipped generator's tokenizer uses)."""
    extra = {"one", "two", "three", "four"} | {f"{shape}s" for shape in SHAPES}
    return sorted(extra - set(vocabulary()))


def parse_extended_prompt(prompt: str) -> PromptSpec:
    """Parse the extended grammar; raise PromptParseError outside it."""
    text = _normalise(prompt)
    background, body = _split_background(prompt, text)
    matches = _one_or_two(_GROUP, body, prompt, "article or number + shape", "object groups")
    objects = []
    for m in matches:
        count = COUNT_NUMBERS[m.group(1)]
        if (count > 1) != (m.group(5) == "s"):
            raise PromptParseError(f"the number and the noun disagree in {m.group(0)!r}")
        size = SIZE_SYNONYMS[m.group(2)] if m.group(2) else None
        objects.append(ObjectRequest(m.group(3), m.group(4), size, count))
    tags = tuple(t for t in TAG_WORDS if re.search(r"\b" + t + r"\b", text))
    counted = any(o.count > 1 for o in objects)
    if len(objects) == 2:
        first, second = objects
        if first == second or (first.colour and second.colour and first.colour == second.colour) or (
            not (first.colour and second.colour) and first.shape == second.shape
        ):
            raise PromptParseError(f"the two object groups cannot be told apart: {prompt!r}")
        between = body[matches[0].end():matches[1].start()].strip(" ,")
        if between == "and":
            return PromptSpec(tuple(objects), background, tags=tags)
        relations = _find_phrase(between, RELATION_WORDS)
        if len(relations) != 1 or counted:
            raise PromptParseError(f"expected 'and' or one relation between the two objects in {prompt!r}")
        return PromptSpec(tuple(objects), background, relation=relations[0][1], tags=tags)
    positions = _find_phrase(body, POSITION_WORDS)
    if len(positions) > 1 or (positions and counted):
        raise PromptParseError(f"several positions, or a position for several objects, in {prompt!r}")
    return PromptSpec(tuple(objects), background, position=positions[0][1] if positions else None, tags=tags)

"""Is a rationale true? Every checkable sentence of a scorer's reasoning, checked against the world's truth.

Sentences are sorted into three bins, none dropped:
- claims, each checked and marked true or false:
  - perception: "I see a <size> <colour> <shape> <position>." (size and position may be missing, the
    older form), "No <size> <colour> <shape or object> is visible." (absent), "I see a <bg> background.",
    "I see N small stray blob(s).", "I see no clear object.", "(seen instead: <object>)",
    and "Blur level B, noise level N, compression level J." (one claim per kind);
  - prompt: "The prompt asks for <phrase>." (a restatement: the whole request) and the clause
    "... the prompt asks for <X> but ..." of an unmet element (X must be part of the request);
- unparsed: sentences that start like a claim ("I see", "the prompt asks for", "... level ...") but do not
  follow its form: the parse failures;
- other: judgements and verdicts ("The edges are blurred.", "Overall ... is good.").

The truth is the oracles' perception (`oracles.observe`, `oracles.degradation_levels`) and the grammar's
parse of the original prompt (`captions.parse_prompt`), never generation metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from t2i_guidance.world.captions import (
    POSITION_WORDS,
    SIZE_SYNONYMS,
    ObjectRequest,
    PromptParseError,
    PromptSpec,
    parse_prompt,
)
from t2i_guidance.world.oracles import Observation, SeenObject, position_phrase
from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, INVERSE_RELATION, SHAPES

PERCEPTION_KINDS = ("object", "absent", "background", "strays", "no_object", "degradation")
PROMPT_KINDS = ("restatement", "asked")
DEGRADATION_TOLERANCE = 1.0  # a claimed level within 1 of the measured one is true

_POSITION_KEY = {phrase: key for key, phrases in POSITION_WORDS.items() for phrase in phrases}
_NUMBER_WORDS = {"no": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ALT = lambda words: "|".join(sorted(map(re.escape, words), key=len, reverse=True))  # noqa: E731

_OBJECT = re.compile(
    rf"^i see (?:a|an) (?:(?P<size>{_ALT(SIZE_SYNONYMS)}) )?(?P<colour>{_ALT(COLOURS)}) "
    rf"(?P<shape>{_ALT(SHAPES)})(?: (?P<position>{_ALT(_POSITION_KEY)}))?$"
)
_ABSENT = re.compile(
    rf"^no (?:(?P<size>{_ALT(SIZE_SYNONYMS)}) )?(?P<colour>{_ALT(COLOURS)}) "
    rf"(?:(?P<shape>{_ALT(SHAPES)})|object) is visible$"
)
_BACKGROUND = re.compile(rf"^i see (?:a|an) (?P<background>{_ALT(BACKGROUNDS)}) background$")
_STRAYS = re.compile(rf"^i see (?P<count>\d+|{_ALT(_NUMBER_WORDS)}) small stray blobs?$")
_NO_OBJECT = re.compile(r"^i see no (?:clear )?objects?$")
_DEGRADATION = re.compile(
    r"^blur level (?P<blur>\d+(?:\.\d+)?), noise level (?P<noise>\d+(?:\.\d+)?),? "
    r"(?:and )?compression level (?P<jpeg>\d+(?:\.\d+)?)$"
)
_RESTATEMENT = re.compile(r"^the prompt asks for (?P<phrase>.+)$")
_ASKED = re.compile(r"\bthe prompt asks for (?P<phrase>.+?) but\b")
_SEEN_INSTEAD = re.compile(r"\(seen instead: (?P<object>[^)]+)\)")
_BACKGROUND_ONLY = re.compile(rf"^(?:a|an|the) (?P<background>{_ALT(BACKGROUNDS)}) background$")
_CLAIM_LIKE = re.compile(r"^i see\b|\bprompt asks for\b|\blevel \d|^no .* is visible$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Claim:
    kind: str  # one of PERCEPTION_KINDS or PROMPT_KINDS
    sentence: str
    true: bool
    attributes: dict[str, bool] = field(default_factory=dict)  # per-attribute truth, where it applies
    subject: str = ""  # which attribute a degradation claim is about ("blur", "noise", "jpeg")


@dataclass
class RationaleCheck:
    claims: list[Claim]
    unparsed: list[str]  # claim-like sentences that do not follow any claim form
    other: list[str]  # judgements, verdicts: not claims about the picture or the prompt
    seen_objects: int = 0  # objects the oracle sees
    named_objects: int = 0  # of those, how many a true object claim names

    def of_kind(self, *kinds: str) -> list[Claim]:
        return [claim for claim in self.claims if claim.kind in kinds]


def sentences(rationale: str) -> list[str]:
    """The rationale's sentences, reasoning tags and the answer block removed."""
    text = re.sub(r"<answer>.*?</answer>", " ", rationale, flags=re.DOTALL)
    text = re.sub(r"</?think>", " ", text)
    return [part.strip() for part in _SENTENCE_END.split(" ".join(text.split())) if part.strip()]


def _normal(sentence: str) -> str:
    return " ".join(sentence.lower().rstrip(".!?").replace("grey", "gray").split())


# ---------------------------------------------------------------- perception


def _position_key(obj: SeenObject) -> str:
    return _POSITION_KEY[position_phrase(obj.cx, obj.cy)]


def check_object(colour: str, shape: str, size: str | None, position: str | None, seen: Observation) -> Claim:
    """True iff some seen object has the claimed colour, shape, size and position (those named)."""

    def agrees(obj: SeenObject) -> dict[str, bool]:
        result = {"colour": obj.colour == colour, "shape": obj.shape == shape}
        if size is not None:
            result["size"] = obj.size == size
        if position is not None:
            result["position"] = _position_key(obj) == position
        return result

    verdicts = [agrees(obj) for obj in seen.objects]
    true = any(all(v.values()) for v in verdicts)
    # Per attribute, against the object the claim is about: the one of that colour, else the closest.
    named = ["colour", "shape"] + (["size"] if size else []) + (["position"] if position else [])
    attributes = max(verdicts, key=lambda v: (v["colour"], sum(v.values()))) if verdicts else dict.fromkeys(named, False)
    return Claim("object", "", true, dict(attributes))


def _strays(count: str) -> int:
    return int(count) if count.isdigit() else _NUMBER_WORDS[count]


def _perception(text: str, seen: Observation, levels: dict[str, float] | None) -> list[Claim] | None:
    if match := _OBJECT.match(text):
        size = SIZE_SYNONYMS[match["size"]] if match["size"] else None
        position = _POSITION_KEY[match["position"]] if match["position"] else None
        return [check_object(match["colour"], match["shape"], size, position, seen)]
    if match := _ABSENT.match(text):
        size = SIZE_SYNONYMS[match["size"]] if match["size"] else None
        present = any(
            o.colour == match["colour"] and match["shape"] in (None, o.shape) and size in (None, o.size)
            for o in seen.objects
        )
        return [Claim("absent", "", not present)]
    if match := _BACKGROUND.match(text):
        return [Claim("background", "", match["background"] == seen.background)]
    if match := _STRAYS.match(text):
        return [Claim("strays", "", _strays(match["count"]) == seen.strays)]
    if _NO_OBJECT.match(text):
        return [Claim("no_object", "", not seen.objects)]
    if (match := _DEGRADATION.match(text)) and levels is not None:
        return [
            Claim("degradation", "", abs(float(match[kind]) - levels[kind]) <= DEGRADATION_TOLERANCE, subject=kind)
            for kind in ("blur", "noise", "jpeg")
        ]
    return None


# ---------------------------------------------------------------- the prompt


def _object_matches(claimed: ObjectRequest, wanted: ObjectRequest, size_required: bool) -> bool:
    """Colour and shape agree; size agrees where the original names one (and, when `size_required`,
    the claim must name it too); where the original names no size, the claim's size is not judged."""
    if (claimed.colour, claimed.shape) != (wanted.colour, wanted.shape):
        return False
    if wanted.size is None:
        return True
    return claimed.size == wanted.size or (claimed.size is None and not size_required)


def _pairs_match(claimed: PromptSpec, wanted: PromptSpec, size_required: bool) -> bool:
    """Two objects in a relation: the same order and relation, or swapped with the inverse relation."""
    a, b = claimed.objects
    x, y = wanted.objects
    if claimed.relation == wanted.relation:
        return _object_matches(a, x, size_required) and _object_matches(b, y, size_required)
    if claimed.relation == INVERSE_RELATION[wanted.relation]:
        return _object_matches(a, y, size_required) and _object_matches(b, x, size_required)
    return False


def restatement_is_true(claimed: PromptSpec, wanted: PromptSpec) -> bool:
    """The whole request restated: objects, position or relation, and background."""
    if claimed.background != wanted.background or len(claimed.objects) != len(wanted.objects):
        return False
    if wanted.relation is None:
        return (
            claimed.relation is None
            and claimed.position == wanted.position
            and _object_matches(claimed.objects[0], wanted.objects[0], size_required=True)
        )
    return claimed.relation is not None and _pairs_match(claimed, wanted, size_required=True)


def part_is_asked(claimed: PromptSpec, wanted: PromptSpec) -> bool:
    """A part of the request (an unmet element): every object, relation, position and background it names
    is in the request; what it leaves out does not count against it."""
    if claimed.background is not None and claimed.background != wanted.background:
        return False
    if claimed.position is not None and claimed.position != wanted.position:
        return False
    if claimed.relation is not None:
        return wanted.relation is not None and _pairs_match(claimed, wanted, size_required=False)
    return all(
        any(_object_matches(c, w, size_required=False) for w in wanted.objects) for c in claimed.objects
    )


def _read_phrase(phrase: str) -> PromptSpec | None:
    """The grammar's parse of a claimed phrase; a lone background becomes a spec without objects."""
    if match := _BACKGROUND_ONLY.match(phrase):
        return PromptSpec((), match["background"])
    try:
        return parse_prompt(phrase)
    except PromptParseError:
        return None


def _prompt_claims(text: str, wanted: PromptSpec | None, seen: Observation) -> list[Claim] | None:
    if match := _ASKED.search(text):
        claimed = _read_phrase(match["phrase"])
        if claimed is None:
            return None
        found = [Claim("asked", "", wanted is not None and part_is_asked(claimed, wanted))]
        # "... but no red object is visible (seen instead: a small purple triangle on the right)"
        if (instead := _SEEN_INSTEAD.search(text)) and (obj := _OBJECT.match("i see " + instead["object"])):
            found += _perception(obj.string, seen, None) or []
        return found
    if match := _RESTATEMENT.match(text):
        claimed = _read_phrase(match["phrase"])
        if claimed is None or not claimed.objects:
            return None
        return [Claim("restatement", "", wanted is not None and restatement_is_true(claimed, wanted))]
    return None


# ---------------------------------------------------------------- a whole rationale


def check_rationale(
    rationale: str,
    seen: Observation,
    levels: dict[str, float] | None = None,
    prompt: str | None = None,
) -> RationaleCheck:
    """Check every sentence of `rationale` against what the oracle sees and what `prompt` asks for.

    `levels` are the oracle's degradation levels (degradation claims are unparsed without them); `prompt`
    is the original generation prompt (a restatement when no prompt was given to the model is false).
    """
    wanted = parse_prompt(prompt) if prompt else None  # the original must be in the grammar
    claims, unparsed, other = [], [], []
    for sentence in sentences(rationale):
        text = _normal(sentence)
        found = _perception(text, seen, levels) or _prompt_claims(text, wanted, seen)
        if found:
            claims.extend(Claim(c.kind, sentence, c.true, c.attributes, c.subject) for c in found)
        elif _CLAIM_LIKE.search(text):
            unparsed.append(sentence)
        else:
            other.append(sentence)
    named = 0
    for obj in seen.objects:
        described = [
            _OBJECT.match(_normal(c.sentence)) for c in claims if c.kind == "object" and c.true
        ]
        if any(m and m["colour"] == obj.colour and m["shape"] == obj.shape for m in described):
            named += 1
    return RationaleCheck(claims, unparsed, other, len(seen.objects), named)

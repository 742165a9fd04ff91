"""A deterministic rewriter for the embedded world: new phrasings inside the caption grammar, chosen by
the unmet elements the rationales name.

Every phrasing it writes keeps every element of the original (objects, sizes, the relation or position,
the background) and only changes how they are said: which object comes first ("A above B" or "B below
A"), the relation or position words, where the background goes, a quality tag ("sharp and clean"), a
"picture of" lead. It reads the best candidate's rationales for what went wrong (the oracle names the
unmet elements; a model's rationale is read for the same words), ranks the phrasings by how directly
they address those problems, and returns the best one not tried yet. It keeps the guidance scale: for the
world's generator more guidance lowers alignment (3 against 1.5 costs 0.52 oracle points; see
docs/embedded-world.md), so a stalled round is answered with wording, not guidance. Same
inputs, same rewrite.
"""

from __future__ import annotations

import itertools
import re

from t2i_guidance.search.rewriting import Rewrite, RewriteRequest
from t2i_guidance.search.rewriting import check_rewrite as check_rewrite_with
from t2i_guidance.world.captions import (
    NUMBER_NAMES,
    POSITION_WORDS,
    RELATION_WORDS,
    ObjectRequest,
    PromptParseError,
    PromptSpec,
    parse_prompt,
)
from t2i_guidance.world.scene import INVERSE_RELATION

TAGS = ("", "sharp", "sharp and clean")


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


def grammar_problem(original: str, rewritten: str) -> str | None:
    """Why a rewrite of a world prompt is refused: it leaves the caption grammar, drops an element of the
    original or changes the number of objects; None when it keeps them all."""
    try:
        wanted_spec = parse_prompt(original)
    except PromptParseError:
        return None  # the original itself is outside the grammar: nothing to hold the rewrite to
    try:
        got_spec = parse_prompt(rewritten)
    except PromptParseError as error:
        return f"the rewrite leaves the caption grammar: {error}"
    dropped = world_elements(wanted_spec) - world_elements(got_spec)
    if dropped:
        return "the rewrite drops " + ", ".join(" ".join(map(str, e)) for e in sorted(dropped))
    if len(got_spec.objects) != len(wanted_spec.objects):
        return "the rewrite changes the number of objects"
    return None


def check_rewrite(original: str, rewrite: Rewrite | None, world_grammar: bool) -> str | None:
    """The refinement loop's check, held to the world's grammar when `world_grammar`."""
    return check_rewrite_with(original, rewrite, grammar_problem if world_grammar else None)


def detect_issues(spec: PromptSpec, rationales: dict[str, str]) -> set[str]:
    """What the rationales say is wrong, as coarse kinds: relation, position, background, missing, shape,
    size, extra, quality."""
    text = " ".join(rationales.values()).lower()
    issues = set()
    if spec.relation is not None and ("cannot be" in text or re.search(r"\b(left of|right of|above|below)\b[^.;]*but it is not", text)):
        issues.add("relation")
    if spec.position is not None and re.search(r"(on the|at the|near the|in the)[^.;]*but it is", text):
        issues.add("position")
    if "background but it is" in text or "wrong background" in text:
        issues.add("background")
    if re.search(r"no \w+ object is visible|is missing|none of the requested", text):
        issues.add("missing")
    if re.search(r"object is a (circle|square|triangle)", text) or "wrong shape" in text:
        issues.add("shape")
    if re.search(r"but it is (small|large)", text):
        issues.add("size")
    if "does not ask for" in text or "stray" in text or "extra" in text:
        issues.add("extra")
    if re.search(r"\b(blur\w*|nois\w*|jpeg|block\w*|compress\w*)\b", rationales.get("technical", "").lower()):
        issues.add("quality")
    return issues


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _object(obj: ObjectRequest, size_variant: int) -> str:
    size = obj.size
    if size is not None:
        size = ("small", "tiny")[size_variant] if size == "small" else ("large", "big")[size_variant]
    if obj.count != 1:  # "three small red squares": the count is part of what was asked
        return " ".join(w for w in (NUMBER_NAMES[obj.count], size, obj.colour, obj.shape + "s") if w)
    return _article(" ".join(w for w in (size, obj.colour, obj.shape) if w))


def phrasings(spec: PromptSpec) -> list[tuple[str, dict]]:
    """Every phrasing of the spec this rewriter can write, with the knobs that made it."""
    out = []
    orders = (False, True) if len(spec.objects) == 2 else (False,)
    backgrounds = ("end", "front") if spec.background else ("none",)
    kept_tags = [t for t in spec.tags if t in ("blurry", "noisy")]  # asked-for damage stays asked for
    tags = ("",) if kept_tags else TAGS
    for inverted, words, where, tag, lead, size_variant in itertools.product(
        orders, (0, 1), backgrounds, tags, (False, True), (0, 1)
    ):
        if spec.relation is not None:
            first, second, relation = spec.objects[0], spec.objects[1], spec.relation
            if inverted:
                first, second, relation = second, first, INVERSE_RELATION[relation]
            body = f"{_object(first, size_variant)} {RELATION_WORDS[relation][words]} {_object(second, size_variant)}"
        elif len(spec.objects) == 2:  # "A and B" (the extended grammar): only the order can change
            first, second = spec.objects[::-1] if inverted else spec.objects
            body = f"{_object(first, size_variant)} and {_object(second, size_variant)}"
        else:
            body = _object(spec.objects[0], size_variant)
            if spec.position is not None:
                body += " " + POSITION_WORDS[spec.position][words]
        if lead:
            body = "a picture of " + body
        text = body
        if where == "front":
            text = f"on a {spec.background} background, {body}"
        elif where == "end":
            text = f"{body} on a {spec.background} background"
        tag_text = tag or (", ".join(kept_tags) if kept_tags else "")
        if tag_text:
            text += ", " + tag_text
        knobs = {"inverted": inverted, "words": words, "background": where, "tag": tag, "lead": lead,
                 "size_words": size_variant}
        out.append((text, knobs))
    return out


def relevance(knobs: dict, issues: set[str]) -> float:
    """How directly a phrasing addresses the issues; small preferences break ties toward plain text."""
    score = 0.0
    if knobs["inverted"] and issues & {"relation", "missing", "shape"}:
        score += 2.0
    if knobs["words"] and issues & {"relation", "position"}:
        score += 1.5
    if knobs["background"] == "front" and "background" in issues:
        score += 2.0
    if knobs["tag"] and issues & {"quality", "extra"}:
        score += 1.5 if knobs["tag"] == "sharp and clean" else 1.0
    if knobs["size_words"] and "size" in issues:
        score += 1.5
    score -= 0.1 * knobs["lead"] + 0.05 * bool(knobs["tag"]) + 0.05 * knobs["size_words"]
    return score


class WorldRewriter:
    """Deterministic, in-grammar rewrites for the embedded world (see the module docstring)."""

    name = "world"

    def rewrite(self, request: RewriteRequest) -> Rewrite | None:
        spec = parse_prompt(request.original_prompt)
        rationales = request.best[0].rationales if request.best else {}
        issues = detect_issues(spec, rationales)
        tried = {h["prompt"] for h in request.history} | {request.current_prompt, request.original_prompt}
        options = [(relevance(knobs, issues), -k, text) for k, (text, knobs) in enumerate(phrasings(spec))]
        fresh = [o for o in sorted(options, reverse=True) if o[2] not in tried]
        if not fresh:
            return None
        note = f"issues: {', '.join(sorted(issues)) or 'none named'}"
        return Rewrite(prompt=fresh[0][2], guidance_scale=request.guidance_scale, note=note)

"""Verdicts read from the judge's own description: the alignment checks rewritten from its "I see" claims.

The look-first judge describes the picture first ("I see a small green triangle at the top. ..."), and
that description is the truest part of its answer (whole objects about 84 % true); what it writes after
the prompt's restatement copies the prompt ("Seen: a small green circle ..." under "I see a small green
triangle ..."), and training did not stop that. Here the checks are not taken from the judge. Its
description is read back into an observation (`consistency.claimed_observation`: each object at the
middle of the region it names), and the world's alignment rule writes every check, count and the score
from that observation alone, in the judge's own form; the judge's generation stops where its description
ends, since nothing after it would be read. The verdict then follows from the stated claims by
construction, as the CoT teacher's did; what is judged is only what the judge said it saw. A description
that cannot be read (no "I see" object, no background, or an "I see" sentence in no claim form) leaves
the judge's answer as it was; one that can be read decides even when the rest of the answer is cut short
or malformed.

    OmniQualityScorer(model="embedded", verdicts="world-grounded")   # registered by the world plugin
"""

from __future__ import annotations

import itertools

from reward_model.cot.rejection import sft_target
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord
from reward_model.interface import parse_answer
from t2i_guidance.world.captions import PromptParseError, parse_prompt
from t2i_guidance.world.claims import _BACKGROUND, _OBJECT, _STRAYS, _normal, sentences
from t2i_guidance.world.consistency import claimed_observation
from t2i_guidance.world.describe import PictureFacts, alignment_fields, seen_phrases

DESCRIPTION_END = "The prompt asks for"
TEACHER = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True,
                           look_first=True)


def described_sentences(text: str) -> list[str] | None:
    """The description a judge's answer opens with: its leading "I see" sentences, each in a claim form
    this world reads (an object with its size and place, the background, stray blobs); None when there is
    none, when one of them is not in such a form, or when no background is named."""
    described = list(itertools.takewhile(lambda sentence: sentence.startswith("I see "), sentences(text)))
    for sentence in described:
        claim = _normal(sentence)
        if (match := _OBJECT.match(claim)) and match["size"] and match["position"]:
            continue
        if not (_BACKGROUND.match(claim) or _STRAYS.match(claim)):
            return None
    if not any(_BACKGROUND.match(_normal(sentence)) for sentence in described):
        return None
    return described or None


def grounded_answer(prompt: str, rationale: str) -> tuple[str, float] | None:
    """(rationale, score): the judge's description kept word for word, every check after it written from
    that description alone; None when the prompt is outside the grammar or the description cannot be read
    (then the judge's own answer stands). What follows the description in the judge's text is not read:
    a check it copied from the prompt, an answer cut short or a rationale written for another dimension
    changes nothing."""
    described = described_sentences(rationale)
    try:
        spec = parse_prompt(prompt)
    except PromptParseError:
        return None
    if described is None or spec.is_extended:
        return None
    description = " ".join(described)
    seen = claimed_observation(description)
    if seen is None or not seen.objects:
        return None
    facts = PictureFacts(seen_phrases(seen), {}, 0.0, [], 0.0, [], **alignment_fields(spec, seen))
    record = IQARecord(image="described.png", task="alignment", label=facts.label("alignment"), prompt=prompt,
                       facts=facts.teacher_facts("alignment"))
    target = sft_target(TEACHER.write_one(record, 0))
    answer = parse_answer(target) if target else None
    if answer is None or answer.score is None or DESCRIPTION_END not in answer.rationale:
        raise ValueError(f"the world's teacher wrote no readable alignment answer for {prompt!r}")
    checks = answer.rationale[answer.rationale.index(DESCRIPTION_END):]
    return f"{description} {checks}", answer.score


grounded_answer.reads_until = DESCRIPTION_END  # nothing after the description is read: generation stops there

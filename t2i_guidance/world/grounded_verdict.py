"""Verdicts read from the judge's own description: the alignment checks rewritten from its "I see" claims.

The look-first judge describes the picture first ("I see a small green triangle at the top. ..."), and
that description is the truest part of its answer (whole objects about 84 % true); what it writes after
the prompt's restatement copies the prompt ("Seen: a small green circle ..." under "I see a small green
triangle ..."), and training did not stop that. Here the checks are not taken from the judge: its
description is read back into an observation (`consistency.claimed_observation`: each object at the
middle of the region it names), and the world's rule writes every check, count and the score from that observation
alone, in the judge's own form. The verdict then follows from the stated claims by construction, as the
teacher's did; what is judged is only what the judge said it saw. A description that cannot be read
(no "I see" object or no background) leaves the judge's answer as it was.

    OmniQualityScorer(model="embedded", verdicts="world-grounded")   # registered by the world plugin
"""

from __future__ import annotations

from reward_model.cot.rejection import sft_target
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord
from reward_model.interface import parse_answer
from t2i_guidance.world.captions import PromptParseError, parse_prompt
from t2i_guidance.world.consistency import claimed_observation
from t2i_guidance.world.describe import PictureFacts, alignment_fields, seen_phrases

DESCRIPTION_END = "The prompt asks for"
TEACHER = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=True,
                           look_first=True)


def grounded_answer(prompt: str, rationale: str) -> tuple[str, float] | None:
    """(rationale, score): the judge's description kept word for word, every check after it written from
    that description; None when the prompt is outside the grammar or the description cannot be read."""
    if DESCRIPTION_END not in rationale:
        return None
    description = rationale[: rationale.index(DESCRIPTION_END)]
    seen = claimed_observation(description)
    try:
        spec = parse_prompt(prompt)
    except PromptParseError:
        return None
    if seen is None or not seen.objects or not seen.background or spec.is_extended:
        return None
    facts = PictureFacts(seen_phrases(seen), {}, 0.0, [], 0.0, [], **alignment_fields(spec, seen))
    record = IQARecord(image="described.png", task="alignment", label=facts.label("alignment"), prompt=prompt,
                       facts=facts.teacher_facts("alignment"))
    target = sft_target(TEACHER.write_one(record, 0))
    answer = parse_answer(target) if target else None
    if answer is None or answer.score is None:
        return None
    checks = answer.rationale[answer.rationale.index(DESCRIPTION_END):]
    return f"{description.strip()} {checks}", answer.score

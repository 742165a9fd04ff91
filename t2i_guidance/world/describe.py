"""Sentences about world pictures and prompts, written from the oracles' perception.

One vocabulary for three users: the world base VLM learns to say them (dense descriptions, prompt
restatements), the rule-based CoT teacher builds the scorer's rationales from them, and the faithfulness
benchmark parses them back and checks them against the oracles. Forms:

    I see a large red circle at the top.          (one per object, in reading order)
    I see a white background.
    I see 2 small stray blobs.                    (only when there are some)
    Blur level 2, noise level 0, compression level 1.
    The prompt asks for a red circle above a small blue square on a white background.
    4 of 6 elements are met.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from t2i_guidance.world.captions import POSITION_WORDS, RELATION_WORDS, PromptSpec, parse_prompt
from t2i_guidance.world.oracles import (
    Observation,
    alignment_checks,
    compared_checks,
    composition_score,
    observe,
    requested_pairs,
    technical_score,
    to_array,
)

LEVEL_NAMES = (("blur", "Blur"), ("noise", "noise"), ("jpeg", "compression"))


READING_GRID = 4  # the scorer's 4 x 4 grid of visual tokens


def reading_order(seen: Observation) -> Observation:
    """Objects in reading order of the grid cell their centre falls in (top row first, then left to right).

    A small language model describes a picture more truly when it can scan the visual tokens in order
    than when it must first compare the sizes of all objects (the oracle's own order is largest first).
    """
    def cell(obj) -> tuple[int, int, float]:
        row = min(READING_GRID - 1, int(obj.cy * READING_GRID))
        return row, min(READING_GRID - 1, int(obj.cx * READING_GRID)), obj.cx
    return replace(seen, objects=tuple(sorted(seen.objects, key=cell)))


def seen_phrases(seen: Observation) -> list[str]:
    """What the oracle sees, as noun phrases: objects in reading order, the background, stray blobs."""
    return reading_order(seen).describe()


def levels_sentence(levels: dict[str, float]) -> str:
    """Degradation levels rounded to whole steps of the renderer's 0..5 scale."""
    parts = [f"{word} level {int(round(min(5.0, max(0.0, levels[key]))))}" for key, word in LEVEL_NAMES]
    return ", ".join(parts) + "."


def restate(spec: PromptSpec) -> str:
    """What a parsed prompt asks for, in one canonical in-grammar phrase (parse_prompt reads it back)."""
    objects = [("an " if o.phrase()[0] in "aeiou" else "a ") + o.phrase() for o in spec.objects]
    if spec.relation is not None:
        body = f"{objects[0]} {RELATION_WORDS[spec.relation][0]} {objects[1]}"
    else:
        body = objects[0] + (f" {POSITION_WORDS[spec.position][0]}" if spec.position else "")
    if spec.background:
        body += f" on a {spec.background} background"
    return body


def elements_sentence(met: int, total: int) -> str:
    return f"{met} of {total} elements are met."


@dataclass(frozen=True)
class PictureFacts:
    """Everything the oracles know about one picture (and its prompt, when there is one)."""

    seen: list[str]
    levels: dict[str, float]
    technical: float
    technical_issues: list[str]
    aesthetic: float
    aesthetic_issues: list[str]
    alignment: float | None = None
    asks: str | None = None
    unmet: list[str] | None = None
    elements: int | None = None
    met: list[str] | None = None
    checks: list[tuple[bool, str]] | None = None  # every element in the prompt's order: (met, sentence)
    pairs: list[tuple[str, str | None, int]] | None = None  # each asked object, what answers it, its checks
    compared: list[tuple[str, str, str, bool]] | None = None  # each check as (element, asked, seen, met)

    def description(self) -> str:
        """The base model's dense description target."""
        sentences = [f"I see {phrase}." for phrase in self.seen]
        return " ".join(sentences + [levels_sentence(self.levels)])

    def teacher_facts(self, task: str) -> dict:
        """The record `facts` the rule-based teacher turns into a rationale for `task`."""
        facts: dict = {"seen": list(self.seen), "issues": [], "unmet": []}
        if task == "technical":
            facts["levels"] = levels_sentence(self.levels)
            facts["issues"] = list(self.technical_issues)
        elif task == "aesthetic":
            facts["issues"] = list(self.aesthetic_issues)
        elif task == "alignment":
            facts["asks"] = self.asks
            facts["unmet"] = list(self.unmet or [])
            facts["met"] = list(self.met or [])
            facts["elements"] = self.elements
            facts["checks"] = [[ok, sentence] for ok, sentence in self.checks or []]
            if self.pairs is not None:
                facts["pairs"] = [list(pair) for pair in self.pairs]
            if self.compared is not None:
                facts["compared"] = [list(row) for row in self.compared]
        return facts

    def label(self, task: str) -> float:
        value = {"technical": self.technical, "aesthetic": self.aesthetic, "alignment": self.alignment}[task]
        if value is None:
            raise ValueError(f"no {task} label: the picture has no prompt")
        return round(float(value), 3)


def picture_facts(image: Image.Image | np.ndarray, prompt: str | None = None) -> PictureFacts:
    """Read one picture with the oracles; alignment facts only when a prompt is given."""
    pixels = to_array(image)
    seen = observe(pixels)
    technical = technical_score(pixels)
    aesthetic = composition_score(seen)
    fields = alignment_fields(parse_prompt(prompt), seen) if prompt is not None else {}
    return PictureFacts(seen_phrases(seen), technical.levels, technical.score, technical.issues,
                        aesthetic.score, aesthetic.issues, **fields)


def alignment_fields(spec: PromptSpec, seen: Observation) -> dict:
    """PictureFacts' alignment fields for a prompt against what is seen."""
    checks = alignment_checks(spec, seen)
    met, unmet = [s for ok, s in checks if ok], [s for ok, s in checks if not ok]
    return {"alignment": 5.0 * len(met) / len(checks), "asks": restate(spec), "unmet": unmet,
            "elements": len(checks), "met": met, "checks": checks, "pairs": requested_pairs(spec, seen),
            "compared": compared_checks(spec, seen)}

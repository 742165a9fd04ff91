"""Misreading drills: rationales whose description is given, and whose checks must follow from it.

A judge trained only on true rationales never has to read its own words: the picture and the words
always agree, so it can decide each check from the picture and write whatever the prompt asks (measured:
the verdict did not change when the written seen value did). A drill breaks that tie. It takes a
training picture, misreads one asked object's shape or size (towards what the prompt asks, or away from
it), and writes the look-first rationale of that misreading. The description ("I see ...") is given as
context, with no loss; everything after it is taught: the "Seen:" restatement, each check's seen value,
its verdict, the counts and the score all follow the written description, not the picture.

    drills = misread_drills(entries, teacher, random.Random(0))   # CoT entries -> extra SFT entries

A check drill (`kind="check"`) is narrower: the description and the "Seen:" lines stay true, one word
check's seen value is written wrong (an equal value made unequal, an unequal one made the asked one), and
everything up to that check's values is given; its verdict and every count after it are taught, so the
verdict must follow the two words just written.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from functools import partial

from PIL import Image

from reward_model.cot.rejection import sft_target
from reward_model.cot.teachers import RuleBasedTeacher
from reward_model.data.schema import IQARecord
from t2i_guidance.world.captions import PromptSpec, parse_prompt
from t2i_guidance.world.describe import PictureFacts, alignment_fields, seen_phrases
from t2i_guidance.world.oracles import Observation, observe, to_array
from t2i_guidance.world.oracles.alignment import pick_requested
from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, SHAPES

DESCRIPTION_END = " The prompt asks for"  # look-first: the description is everything before the restatement


def misreadings(spec, seen: Observation) -> list[tuple[int, str, str]]:
    """Every single misreading of an asked object: (object index, field, the value misread). A value the
    prompt asks for and the picture lacks is misread as asked; one the picture has is misread as another."""
    options = []
    for request in spec.objects:
        found = pick_requested(request, seen.objects)
        if found is None:
            continue
        index = seen.objects.index(found)
        if found.shape != request.shape:
            options.append((index, "shape", request.shape))
        else:
            options += [(index, "shape", shape) for shape in SHAPES if shape != found.shape]
        if request.size is not None:
            options.append((index, "size", "large" if found.size == "small" else "small"))
    return options


def misread(seen: Observation, index: int, field: str, value: str) -> Observation:
    objects = list(seen.objects)
    objects[index] = replace(objects[index], **{field: value})
    return replace(seen, objects=tuple(objects))


def drill_facts(spec, seen: Observation) -> dict:
    """The alignment teacher facts of a picture read as `seen`."""
    facts = PictureFacts(seen_phrases(seen), {}, 0.0, [], 0.0, [], **alignment_fields(spec, seen))
    return facts.teacher_facts("alignment")


def drill_spec(prompt: str, teacher: RuleBasedTeacher) -> PromptSpec | None:
    """The parsed prompt a drill can be written for (None outside the training grammar)."""
    if not (teacher.look_first and teacher.compare):
        raise ValueError("a drill gives the description as context: it needs the look-first, compared rationale")
    spec = parse_prompt(prompt)
    return None if spec.is_extended else spec


def drill_for_picture(image: Image.Image, prompt: str, teacher: RuleBasedTeacher,
                      rng: random.Random) -> dict | None:
    """A drill for one picture and its prompt: {facts, target, context, label}, or None when the prompt
    has no object to misread."""
    spec = drill_spec(prompt, teacher)
    if spec is None:
        return None
    seen = observe(to_array(image.convert("RGB")))
    options = misreadings(spec, seen)
    if not options:
        return None
    facts = drill_facts(spec, misread(seen, *rng.choice(options)))
    label = round(5.0 * len(facts["met"]) / facts["elements"], 3)
    record = IQARecord(image="drill.png", task="alignment", label=label, prompt=prompt, source="misread-drill",
                       split="train", facts=facts)
    target = sft_target(teacher.write_one(record, 0))
    if target is None or DESCRIPTION_END not in target:
        raise ValueError(f"the teacher wrote no well-formed look-first rationale for {prompt!r}")
    return {"facts": facts, "target": target, "context": target[: target.index(DESCRIPTION_END)], "label": label}


WORD_VALUES = {"colour": tuple(COLOURS), "shape": SHAPES, "size": ("small", "large"), "background": tuple(BACKGROUNDS)}


def check_drill_for_picture(image: Image.Image, prompt: str, teacher: RuleBasedTeacher,
                            rng: random.Random, balanced: bool = False) -> dict | None:
    """A check drill for one picture: {facts, target, context, label}, or None without a word check.
    `balanced`: first draw the verdict the drill teaches, "met" or "not met" with equal odds, then a
    check that can teach it (None when the picture has none), so that neither the picture nor a leaning
    towards one verdict fits the drills: only comparing the two written words does."""
    spec = drill_spec(prompt, teacher)
    if spec is None:
        return None
    facts = drill_facts(spec, observe(to_array(image.convert("RGB"))))
    words = [i for i, (element, _, seen, _) in enumerate(facts["compared"]) if element in WORD_VALUES and seen != "none"]
    if balanced:
        teach_met = rng.random() < 0.5  # "met" is taught over a truly unmet check, written equal
        words = [i for i in words if (facts["compared"][i][1] != facts["compared"][i][2]) == teach_met]
    if not words:
        return None
    index = rng.choice(words)
    element, asked, seen, _ = facts["compared"][index]
    written = asked if seen != asked else rng.choice([v for v in WORD_VALUES[element] if v != asked])
    facts["compared"][index] = [element, asked, written, written == asked]
    facts["checks"][index] = [written == asked, facts["checks"][index][1]]
    label = round(5.0 * sum(ok for ok, _ in facts["checks"]) / len(facts["checks"]), 3)
    target = sft_target(teacher.write_one(IQARecord(image="drill.png", task="alignment", label=label,
                                                    prompt=prompt, facts=facts), 0))
    # the check's verdict is the one followed by its running count "(N of index + 1)"
    verdict = re.search(rf", (?:met|not met) \(\d+ of {index + 1}\)", target or "")
    if verdict is None:
        raise ValueError(f"the teacher wrote no well-formed rationale for {prompt!r}")
    context = target[: verdict.start() + 1]  # "... Shape: seen circle, asked square," (the verdict comes next)
    return {"facts": facts, "target": target, "context": context, "label": label, "teaches": written == asked}


DRILLS = {"description": drill_for_picture, "check": check_drill_for_picture,
          "balanced-check": partial(check_drill_for_picture, balanced=True)}


def drill_entry(entry: dict, teacher: RuleBasedTeacher, rng: random.Random, kind: str = "description") -> dict | None:
    """One drill (an SFT entry) for an accepted alignment CoT entry, or None (see drill_for_picture)."""
    with Image.open(entry["image"]) as image:
        drill = DRILLS[kind](image, entry["prompt"], teacher, rng)
    if drill is None:
        return None
    return {"image": entry["image"], "task": "alignment", "prompt": entry["prompt"], "source": f"{kind}-drill",
            **drill}


def misread_drills(entries: list[dict], teacher: RuleBasedTeacher, rng: random.Random,
                   share: float = 1.0, kind: str = "description") -> list[dict]:
    """Drills of one `kind` for a `share` of the alignment pictures, in order. A share above 1 draws
    several drills per picture (2.5: two each, and a third for half of them)."""
    drills, pictures = [], set()
    for entry in entries:
        if entry["task"] != "alignment" or entry["image"] in pictures:
            continue
        draws = int(share) + (rng.random() < share - int(share))
        if not draws:
            continue
        pictures.add(entry["image"])
        for _ in range(draws):
            drill = drill_entry(entry, teacher, rng, kind)
            if drill is not None:
                drills.append(drill)
    if kind == "balanced-check":  # fewer pictures have an unmet check to write equal: keep as many of each
        met = [d for d in drills if d["teaches"]]
        unmet = [d for d in drills if not d["teaches"]]
        keep = {id(d) for d in met[: len(unmet)] + rng.sample(unmet, min(len(met), len(unmet)))}
        drills = [d for d in drills if id(d) in keep]
    return drills

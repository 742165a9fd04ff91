"""The embedded world's prompt sets: GenEval's six tasks in the world, and the judge that scores them.

GenEval (Ghosh et al. 2023) asks a detector whether each image holds the objects its prompt names, in
the right number, colour and place. Here the world's oracle perception (`oracles.observe`: pixels only)
is the detector, and a world "object class" is a shape; colour is an attribute, as in GenEval. Each
prompt carries GenEval-style metadata: `include` groups {shape, count, colour?, position?: [relation,
index of the group it relates to]} that must be seen, and `exclude` groups {shape, count} of which fewer
than `count` may be seen (counting: not more than asked). Like GenEval, groups are matched to the
largest objects of the class (area plays the detector's confidence).

Every prompt is outside the generator's training grammar (no position for one object, "and", counts,
objects without colour), so every prompt is held out by construction. Each names a background, as every
training caption does; the judge ignores it, as GenEval has no background.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_guidance.registries import PromptSet, available_prompt_sets, register_prompt_set
from t2i_guidance.world.captions import NUMBER_NAMES, RELATION_WORDS
from t2i_guidance.world.scene import BACKGROUNDS, COLOURS, COUNTS, SHAPES

if TYPE_CHECKING:
    from t2i_guidance.world.oracles import Observation

TASKS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
GENEVAL_PROMPTS_PER_TASK = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
                            "color_attr": 100}
PROMPT_FILE = Path(__file__).resolve().parent / "prompts" / "geneval_suite.jsonl"
WORLD_GENEVAL = "world-geneval"
WORLD_FRESH = "world-fresh"  # the fresh held-out prompts (world/fresh_prompts.py): for reports only


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _task_prompts(task: str) -> list[dict]:
    """Every distinct prompt of one task, with its metadata."""
    rows = []
    for background in BACKGROUNDS:
        on = f" on a {background} background"
        if task == "single_object":
            for shape in SHAPES:
                rows.append({"prompt": _a(shape) + on, "include": [{"shape": shape, "count": 1}]})
        elif task == "two_object":
            for a, b in itertools.permutations(SHAPES, 2):
                rows.append({"prompt": f"{_a(a)} and {_a(b)}{on}",
                             "include": [{"shape": a, "count": 1}, {"shape": b, "count": 1}]})
        elif task == "counting":
            for shape, count in itertools.product(SHAPES, COUNTS):
                rows.append({"prompt": f"{NUMBER_NAMES[count]} {shape}s{on}",
                             "include": [{"shape": shape, "count": count}],
                             "exclude": [{"shape": shape, "count": count + 1}]})
        elif task == "colors":
            for shape, colour in itertools.product(SHAPES, COLOURS):
                rows.append({"prompt": _a(f"{colour} {shape}") + on,
                             "include": [{"shape": shape, "count": 1, "colour": colour}]})
        elif task == "position":
            for (a, b), relation in itertools.product(itertools.permutations(SHAPES, 2), RELATION_WORDS):
                words = RELATION_WORDS[relation][0]
                # GenEval's order: the reference object first, the placed one relates to group 0.
                rows.append({"prompt": f"{_a(a)} {words} {_a(b)}{on}",
                             "include": [{"shape": b, "count": 1},
                                         {"shape": a, "count": 1, "position": [relation, 0]}]})
        elif task == "color_attr":
            for (a, b), (ca, cb) in itertools.product(itertools.permutations(SHAPES, 2),
                                                      itertools.permutations(COLOURS, 2)):
                rows.append({"prompt": f"{_a(f'{ca} {a}')} and {_a(f'{cb} {b}')}{on}",
                             "include": [{"shape": a, "count": 1, "colour": ca},
                                         {"shape": b, "count": 1, "colour": cb}]})
        else:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return rows


def build_suite(seed: int = 0) -> list[dict]:
    """All tasks, each shuffled by `seed` and cut at GenEval's prompt count for that task; ids are stable."""
    suite = []
    for task in TASKS:
        rows = _task_prompts(task)
        random.Random(f"{seed}:{task}").shuffle(rows)
        for index, row in enumerate(rows[: GENEVAL_PROMPTS_PER_TASK[task]]):
            suite.append({"id": f"{task}-{index:03d}", "task": task, "exclude": [], **row})
    return suite


def write_suite(path: Path = PROMPT_FILE, seed: int = 0) -> int:
    suite = build_suite(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in suite), encoding="utf-8")
    return len(suite)


@dataclass
class Verdict:
    correct: bool
    reason: str


def judge(metadata: dict, seen: Observation) -> Verdict:
    """GenEval's rule on what the oracle saw: correct or not, with the reasons it is not."""
    from t2i_guidance.world.oracles import relation_holds

    by_shape: dict[str, list] = {}
    for obj in seen.objects:  # already sorted by area, largest first
        by_shape.setdefault(obj.shape, []).append(obj)
    reasons: list[str] = []
    matched: list[list | None] = []
    for group in metadata["include"]:
        shape, count = group["shape"], group["count"]
        found = by_shape.get(shape, [])[:count]
        ok = len(found) >= count
        if not ok:
            reasons.append(f"expected {shape} >= {count}, found {len(found)}")
        else:
            colour = group.get("colour")
            if colour is not None and sum(o.colour == colour for o in found) < count:
                ok = False
                seen_colours = ", ".join(o.colour for o in found)
                reasons.append(f"expected {colour} {shape} >= {count}, found {seen_colours} {shape}")
            if "position" in group and ok:
                relation, target = group["position"]
                words = RELATION_WORDS[relation][0]
                if matched[target] is None:
                    ok = False
                    reasons.append(f"no target for the {shape} to be {words}")
                else:
                    for obj in found:
                        for other in matched[target]:
                            if not relation_holds(relation, obj, other):
                                ok = False
                                reasons.append(f"expected the {shape} {words} the {other.shape}, it is not")
        matched.append(found if ok else None)
    for group in metadata.get("exclude", []):
        seen_count = len(by_shape.get(group["shape"], []))
        if seen_count >= group["count"]:
            reasons.append(f"expected {group['shape']} < {group['count']}, found {seen_count}")
    return Verdict(not reasons, "; ".join(reasons) or "correct")


def world_geneval_correctness(record: dict, image) -> tuple[bool, str]:
    from t2i_guidance.world.oracles import observe

    verdict = judge(record, observe(image))
    return verdict.correct, verdict.reason


def load_world_geneval() -> PromptSet:
    records = [json.loads(line) for line in PROMPT_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return PromptSet(WORLD_GENEVAL, records, world_geneval_correctness, "oracle")


def load_world_fresh() -> PromptSet:
    """The fresh held-out prompts; a picture is correct when the oracle finds every element met."""
    from t2i_guidance.world.fresh_prompts import fresh_prompts

    records = [{"id": f"fresh-{index:03d}", "task": "alignment", "prompt": prompt}
               for index, prompt in enumerate(fresh_prompts())]
    return PromptSet(WORLD_FRESH, records, fully_aligned, "oracle", ["alignment"])


def fully_aligned(record: dict, image) -> tuple[bool, str]:
    from t2i_guidance.world.oracles import alignment_score

    result = alignment_score(image, record["prompt"])
    return result.score >= 5.0, "; ".join(result.unmet) or "every element is met"


def register_prompt_sets() -> None:
    """Register the world's prompt sets by name. Safe to call again: a set already there is kept."""
    for name, loader in ((WORLD_GENEVAL, "load_world_geneval"), (WORLD_FRESH, "load_world_fresh")):
        if name not in available_prompt_sets():
            register_prompt_set(name, f"t2i_guidance.world.prompt_sets:{loader}")

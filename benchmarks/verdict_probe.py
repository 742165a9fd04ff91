"""Does a judge's verdict follow the values it has just written? A teacher-forced probe of compared checks.

    python -m benchmarks.verdict_probe --model DIR --records 30 [--seen-first] [--look-first]

For judges trained on compared checks ("Size: asked large, seen small, not met"). Each held-out alignment
record's reference rationale (the rule-based teacher's, in the judge's own form) is cut right before the
verdict of every word check (colour, shape, size, background), and the judge is asked, teacher-forced,
whether " met" or " not met" is more likely next:

- as written: the true seen value; right when the verdict is the truth;
- swapped: only the seen value in that check is changed (an equal one to a wrong one, an unequal one to
  the asked one), the picture and everything before it unchanged; right when the verdict follows the two
  values now written. A judge whose verdict is computed from the words it writes gets this right; one
  that decides from the picture (or from habit) gets it wrong.

With --look-first, a third probe: the description itself is misread (one asked object's shape or size,
`world/training/misread_drills.py`) and every check of the rationale that follows from that description
is teacher-forced as above; right when the verdict follows the description, not the picture. The judge
then continues from the misread description on its own (sampled), and its closing "N of M" is compared
with the count the description implies.

Then the judge writes its own rationale for each record (sampled, as the scorer runs), and each word check
it writes is compared with the record's truth: is the seen value true, does a wrong one copy the asked
value, are two unequal values called met, is a truly unmet check called met.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

WORD_ELEMENTS = {"Colour": ("red", "green", "blue", "yellow", "orange", "purple"),
                 "Shape": ("circle", "square", "triangle"), "Size": ("small", "large"),
                 "Background": ("white", "gray", "black")}


@dataclass(frozen=True)
class ProbeItem:
    condition: str  # "as written" or "swapped"
    prefix: str  # the reasoning up to and including the comma before the verdict
    equal: bool  # the two values written in this check are equal: the verdict that follows them is "met"
    truly_met: bool  # the element is met in the picture


def _word_checks(seen_first: bool) -> re.Pattern:
    """A written word check: element, first value, second value, verdict."""
    first, second = ("seen", "asked") if seen_first else ("asked", "seen")
    return re.compile(rf"({'|'.join(WORD_ELEMENTS)}): {first} (\w+), {second} (\w+), (met|not met) \(")


def probe_items(reasoning: str, seen_first: bool, rng: random.Random) -> list[ProbeItem]:
    """Two items per word check of `reasoning` (the think block's text): as written, and with the seen value
    swapped. The prefix ends with "<element>: <first> <value>, <second> <value>," so the next word is the
    verdict."""
    items = []
    for match in _word_checks(seen_first).finditer(reasoning):
        element, one, two, verdict = match.groups()
        seen, asked = (one, two) if seen_first else (two, one)
        swapped = asked if seen != asked else rng.choice([v for v in WORD_ELEMENTS[element] if v != asked])
        for condition, written in (("as written", seen), ("swapped", swapped)):
            values = f"seen {written}, asked {asked}" if seen_first else f"asked {asked}, seen {written}"
            items.append(ProbeItem(condition, f"{reasoning[:match.start()]}{element}: {values},", written == asked,
                                   verdict == "met"))
    return items


def written_checks(text: str, seen_first: bool) -> list[tuple[str, str, str, bool]]:
    """(element, asked, seen, says met) for every word check a rationale writes, in order."""
    checks = []
    for element, one, two, verdict in _word_checks(seen_first).findall(text):
        seen, asked = (one, two) if seen_first else (two, one)
        checks.append((element, asked, seen, verdict == "met"))
    return checks


def stated_count(text: str) -> tuple[int, int] | None:
    """The last "N of M elements are met." of a rationale."""
    found = re.findall(r"(\d+) of (\d+) elements are met", text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def check_truth(written: list[tuple[str, str, str, bool]], truth: list) -> dict[str, int]:
    """Counts over the written word checks that line up with the record's own (same element, in order)."""
    counts = dict.fromkeys(("checks", "seen true", "seen wrong", "wrong seen copies asked", "unequal written",
                            "unequal written called met", "truly unmet", "truly unmet called met"), 0)
    words = [row for row in truth if row[0].capitalize() in WORD_ELEMENTS]
    for (element, asked, seen, met), (true_element, true_asked, true_seen, ok) in zip(written, words, strict=False):
        if element.lower() != true_element.lower() or asked != true_asked:
            continue  # the rationale checks another element here: nothing to compare it with
        counts["checks"] += 1
        counts["seen true"] += seen == true_seen
        counts["seen wrong"] += seen != true_seen
        counts["wrong seen copies asked"] += seen != true_seen and seen == asked
        counts["unequal written"] += seen != asked
        counts["unequal written called met"] += seen != asked and met
        counts["truly unmet"] += not ok
        counts["truly unmet called met"] += (not ok) and met
    return counts


def held_out_records(count: int, seed: int = 7) -> list[tuple[Image.Image, dict]]:
    """Alignment records of held-out scenes (the render test split), with their facts."""
    from t2i_guidance.world.training import iqa_export

    rng = random.Random(seed)
    return [iqa_export.alignment_example(rng, "test", 32) for _ in range(count)]


def run(model: str, records: int, seen_first: bool, look_first: bool, threads: int = 1) -> dict:
    import torch

    from reward_model.backends import Decoding, Request, resolve_model
    from reward_model.backends.transformers_backend import TransformersBackend
    from reward_model.cot.rejection import sft_target
    from reward_model.cot.teachers import RuleBasedTeacher
    from reward_model.data.schema import IQARecord
    from t2i_guidance.world.training.misread_drills import drill_for_picture

    torch.set_num_threads(threads)
    teacher = RuleBasedTeacher(element_checks=True, tally=True, paired=True, compare=True, seen_first=seen_first,
                               look_first=look_first)
    backend = TransformersBackend(resolve_model(model), device="cpu")
    rng, drill_rng = random.Random(0), random.Random(1)

    @torch.no_grad()
    def says_met(image: Image.Image, prompt: str, prefix: str) -> bool:
        head = backend.render(Request(image, "alignment", prompt)) + prefix
        start = backend.processor(text=[head], images=[image], return_tensors="pt")["input_ids"].shape[1]
        scores = []
        for continuation in (" met", " not met"):
            inputs = backend.processor(text=[head + continuation], images=[image], return_tensors="pt")
            logits = backend.model(**inputs).logits[0].float().log_softmax(-1)
            ids = inputs["input_ids"][0]
            scores.append(sum(logits[i - 1, ids[i]].item() for i in range(start, len(ids))))
        return scores[0] > scores[1]

    counts: dict[str, list[int]] = {}

    def add(key: str, right: bool) -> None:
        counts.setdefault(key, [0, 0])
        counts[key][0] += right
        counts[key][1] += 1

    written = dict.fromkeys(check_truth([], []), 0)
    for index, (image, fields) in enumerate(held_out_records(records)):
        record = IQARecord(image="probe.png", task="alignment", label=fields["label"], prompt=fields["prompt"],
                           source="world-render", split="test", facts=fields["facts"])
        reasoning = sft_target(teacher.write_one(record, 0))  # as the judge writes it: "<think> I see ..."
        for item in probe_items(reasoning, seen_first, rng):
            met = says_met(image, fields["prompt"], item.prefix)
            add(item.condition, met == item.equal)
            add(f"{item.condition}, values {'equal' if item.equal else 'unequal'}", met == item.equal)
        if look_first and (drill := drill_for_picture(image, fields["prompt"], teacher, drill_rng)) is not None:
            true_verdicts = [item.truly_met for item in probe_items(reasoning, seen_first, drill_rng)[::2]]
            misread_items = probe_items(drill["target"], seen_first, drill_rng)[::2]  # as written: the description's
            for item, truly in zip(misread_items, true_verdicts, strict=False):
                met = says_met(image, fields["prompt"], item.prefix)
                add("description misread", met == item.truly_met)
                if item.truly_met != truly:
                    add("description misread, its changed checks", met == item.truly_met)
            (went_on,) = backend.generate([Request(image, "alignment", fields["prompt"], prefix=drill["context"],
                                                   seed=index)], Decoding(max_new_tokens=512, seed=0))
            said = stated_count(went_on.completions[0].text if went_on.completions else "")
            add("description misread, the judge's own count follows it", said == stated_count(drill["target"]))
        (result,) = backend.generate([Request(image, "alignment", fields["prompt"], seed=index)],
                                     Decoding(max_new_tokens=512, seed=0))
        text = result.completions[0].text if result.completions else ""
        for key, value in check_truth(written_checks(text, seen_first), fields["facts"]["compared"]).items():
            written[key] += value
    shares = {key: {"right": right, "of": total, "share": right / total} for key, (right, total) in counts.items()}
    return {"command": "python -m benchmarks.verdict_probe", "model": model, "records": records,
            "seen_first": seen_first, "look_first": look_first, "checks": shares, "own_rationales": written}


def markdown(report: dict) -> str:
    lines = [f"# Does the verdict follow the written values? `{report['model']}`", "",
             f"{report['records']} held-out alignment records, every word check teacher-forced (benchmarks/verdict_probe.py).",
             "Right: as written and swapped, the verdict follows the two values written in its check; description "
             "misread, it follows the misread description (the picture says otherwise).",
             "", "| condition | right |", "|---|---|"]
    for key, row in report["checks"].items():
        lines.append(f"| {key} | {row['share']:.0%} of {row['of']} |")
    own = report["own_rationales"]
    lines += ["", f"Its own rationales (sampled): {own['checks']} word checks line up with the record's.", "",
              "| | count |", "|---|---|",
              f"| seen value true | {own['seen true']} of {own['checks']} |",
              f"| wrong seen values that copy the asked value | {own['wrong seen copies asked']} of {own['seen wrong']} |",
              f"| two unequal values written, called met | {own['unequal written called met']} of {own['unequal written']} |",
              f"| truly unmet checks called met | {own['truly unmet called met']} of {own['truly unmet']} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a judge trained on compared checks")
    parser.add_argument("--records", type=int, default=30)
    parser.add_argument("--seen-first", action="store_true", help="the judge writes the seen value first")
    parser.add_argument("--look-first", action="store_true", help="the judge describes the picture first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    report = run(args.model, args.records, args.seen_first, args.look_first, args.threads)
    text = markdown(report)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n")
        Path(f"{args.out}.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

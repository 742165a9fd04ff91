"""Are the scorer's rationales true? Every claim of every rationale, checked against the world's truth.

    python -m benchmarks.faithfulness                                   # the shipped tiny scorer
    python -m benchmarks.faithfulness --model runs/new_scorer --prompts 40 --renders 40

Pictures: the world generator's outputs for held-out in-grammar prompts (one per prompt), and 32 px renders
of other held-out scenes with a random damage (blur, noise or JPEG at level 0..5), each with its canonical
caption as the prompt. The scorer judges every picture on the three dimensions in its default decoding
(sampled: temperature 0.7, top-p 0.8, top-k 20; one sample, seeded by --seed for a reproducible report).
`t2i_guidance.world.claims` parses every sentence of each rationale and checks it against the oracle's
perception (`observe`, `degradation_levels`) and the grammar's parse of the prompt (alignment is the only
dimension that is given the prompt, so a restatement elsewhere is false). Per dimension: the fraction of
true perception claims (objects, background, strays, damage levels; per attribute for objects), of true
prompt restatements and "asked for" clauses, claims per rationale, objects named truly out of those seen,
the claim parse-failure rate (claim-like sentences that follow no claim form) and the answer
parse-failure rate, with example rationales next to the truth.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict

from benchmarks.common import (
    add_scorer_model_arguments,
    fmt,
    generate,
    model_name,
    report_prompts,
    report_render_scenes,
    run_scorer_instrument,
)
from t2i_guidance.world.claims import PERCEPTION_KINDS, PROMPT_KINDS

DIMENSIONS = ("technical", "aesthetic", "alignment")
EXAMPLES = 3


def pictures(args: argparse.Namespace) -> list[dict]:
    """[{source, image, prompt}]: generator outputs first, then damaged renders."""
    from t2i_guidance.world.captions import canonical_caption
    from t2i_guidance.world.render import DEGRADATIONS, degrade, render_clean
    items = []
    prompts = report_prompts(args.prompts, args.fresh)
    if prompts:
        for prompt, image in zip(prompts, generate(prompts, seed=args.seed), strict=True):
            items.append({"source": "generator", "image": image, "prompt": prompt})
    rng = random.Random(args.seed)
    for index, scene in enumerate(report_render_scenes(args.renders, args.fresh)):
        kind, level = rng.choice(DEGRADATIONS), rng.randint(0, 5)
        image = degrade(render_clean(scene, 32), kind, level, seed=index)
        items.append({"source": "render", "image": image, "prompt": canonical_caption(scene),
                      "damage": f"{kind} {level}" if level else "clean"})
    return items


def rationale_text(result) -> str:
    """The reasoning of a result, also for an answer that could not be parsed."""
    from reward_model.interface import parse_answer

    return result.rationale or parse_answer(result.raw).rationale or result.raw


def run(args: argparse.Namespace) -> dict:
    import torch
    from tqdm.auto import tqdm

    from reward_model.interface import ImageItem
    from reward_model.scorer import OmniQualityScorer
    from t2i_guidance.world.claims import check_rationale
    from t2i_guidance.world.consistency import check_consistency
    from t2i_guidance.world.oracles import degradation_levels, observe

    torch.set_num_threads(args.threads)
    scorer = OmniQualityScorer(model=args.model, backend="transformers", decoding="sampled", seed=args.seed,
                               batch_size=16, max_new_tokens=args.max_new_tokens, verdicts=args.verdicts)
    items = pictures(args)
    rows = []
    for index, item in enumerate(tqdm(items, desc="pictures", unit="picture")):
        table = scorer.score([ImageItem(str(index), item["image"])], item["prompt"], DIMENSIONS)[str(index)]
        seen, levels = observe(item["image"]), degradation_levels(item["image"])
        for dimension in DIMENSIONS:
            result = table[dimension]
            text = rationale_text(result)
            check = check_rationale(text, seen, levels, item["prompt"] if dimension == "alignment" else None)
            consistency = check_consistency(text, result.score, item["prompt"]) if dimension == "alignment" else None
            rows.append({
                "source": item["source"], "dimension": dimension, "prompt": item["prompt"],
                "damage": item.get("damage"), "status": result.status.value, "score": result.score,
                "rationale": text,
                "truth": {"seen": seen.describe(), "levels": {k: round(v, 2) for k, v in levels.items()}},
                "claims": [{"kind": c.kind, "sentence": c.sentence, "true": c.true, "attributes": c.attributes,
                            "subject": c.subject} for c in check.claims],
                "unparsed": check.unparsed, "other": check.other,
                "seen_objects": check.seen_objects, "named_objects": check.named_objects,
                "consistency": None if consistency is None else {
                    "implied": consistency.implied, "stated": consistency.stated, "says_every": consistency.says_every,
                    "verdict_agrees": consistency.verdict_agrees, "band_agrees": consistency.band_agrees},
            })
    summary = {d: summarise([r for r in rows if r["dimension"] == d]) for d in DIMENSIONS}
    by_source = {
        source: {d: summarise([r for r in rows if r["dimension"] == d and r["source"] == source])
                 for d in DIMENSIONS}
        for source in ("generator", "render")
    }
    examples = {d: [r for r in rows if r["dimension"] == d][:EXAMPLES] for d in DIMENSIONS}
    return {
        "command": args.command, "model": model_name(args.model), "verdicts": args.verdicts,
        "pictures": {"generator": args.prompts, "render": args.renders}, "decoding": "sampled",
        "prompt_set": "fresh held-out" if args.fresh else "held-out",
        "seed": args.seed, "threads": args.threads, "summary": summary, "by_source": by_source,
        "examples": examples, "rows": rows,
    }


def _fraction(claims: list[dict]) -> float | None:
    return sum(c["true"] for c in claims) / len(claims) if claims else None


def summarise(rows: list[dict]) -> dict:
    claims = [c for r in rows for c in r["claims"]]
    perception = [c for c in claims if c["kind"] in PERCEPTION_KINDS]
    objects = [c for c in claims if c["kind"] == "object"]
    attributes = defaultdict(list)
    for claim in objects:
        for name, true in claim["attributes"].items():
            attributes[name].append(true)
    unparsed = sum(len(r["unparsed"]) for r in rows)
    claim_like = len({(id(r), c["sentence"]) for r in rows for c in r["claims"]}) + unparsed
    seen = sum(r["seen_objects"] for r in rows)
    return {
        "rationales": len(rows),
        "answer_parse_failures": sum(r["status"] != "ok" for r in rows),
        "claims": len(claims),
        "claims_per_rationale": len(claims) / len(rows) if rows else None,
        "perception_claims": len(perception),
        "perception_true": _fraction(perception),
        "per_kind": {kind: {"n": len(of), "true": _fraction(of)} for kind in
                     (*PERCEPTION_KINDS, *PROMPT_KINDS)
                     if (of := [c for c in claims if c["kind"] == kind])},
        "object_attributes_true": {name: sum(v) / len(v) for name, v in attributes.items()},
        "objects_named_truly": sum(r["named_objects"] for r in rows) / seen if seen else None,
        "restatements": len([c for c in claims if c["kind"] == "restatement"]),
        "restatements_true": _fraction([c for c in claims if c["kind"] == "restatement"]),
        "asked_true": _fraction([c for c in claims if c["kind"] == "asked"]),
        "unparsed_sentences": unparsed,
        "claim_parse_failure_rate": unparsed / claim_like if claim_like else None,
        "other_sentences": sum(len(r["other"]) for r in rows),
        **self_consistency(rows),
    }


def self_consistency(rows: list[dict]) -> dict:
    """Of the rationales with a stated verdict: the share whose verdict is what their own claims imply, whose
    score lies in the band of their stated N of M, and both (alignment only; see world/consistency.py)."""
    checked = [r["consistency"] for r in rows if r.get("consistency") is not None]
    if not checked:
        return {}
    verdicts = [c["verdict_agrees"] for c in checked if c["verdict_agrees"] is not None]
    bands = [c["band_agrees"] for c in checked if c["band_agrees"] is not None]
    both = [bool(c["verdict_agrees"]) and bool(c["band_agrees"]) for c in checked
            if c["verdict_agrees"] is not None or c["band_agrees"] is not None]
    return {"with_verdict": len(both) / len(checked),
            "verdict_agrees": sum(verdicts) / len(verdicts) if verdicts else None,
            "band_agrees": sum(bands) / len(bands) if bands else None,
            "self_consistent": sum(both) / len(both) if both else None}


VERDICTS_SAID = {"own": "the judge's own", "world-grounded": "read from the judge's description (world-grounded)"}


def markdown(report: dict) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.0f} %"  # noqa: E731
    pictures_ = report["pictures"]
    lines = [
        f"# Faithfulness of the rationales: `{report['model']}`",
        "",
        f"{pictures_['generator']} world-generator pictures of {report.get('prompt_set', 'held-out')} prompts + "
        f"{pictures_['render']} damaged 32 px renders of {report.get('prompt_set', 'held-out')} scenes, three dimensions each, default sampled decoding (seed "
        f"{report['seed']}), {report['threads']} thread(s). Alignment verdicts: "
        f"{VERDICTS_SAID.get(report.get('verdicts', 'own'), report.get('verdicts'))}.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| dimension | rationales | claims / rationale | perception claims true | prompt restatements true "
        "| \"the prompt asks for X but\" true | claim parse failures | answer parse failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    kind = lambda s, k: f"{pct(s['per_kind'][k]['true'])} of {s['per_kind'][k]['n']}" if k in s["per_kind"] else "–"  # noqa: E731
    for dimension, s in report["summary"].items():
        lines.append(
            f"| {dimension} | {s['rationales']} | {fmt(s['claims_per_rationale'], 1)} | "
            f"{pct(s['perception_true'])} of {s['perception_claims']} | {kind(s, 'restatement')} | "
            f"{kind(s, 'asked')} | {s['unparsed_sentences']} ({pct(s['claim_parse_failure_rate'])}) | "
            f"{s['answer_parse_failures']} |"
        )
    lines += [
        "",
        "Perception claims by kind (objects: per attribute against the seen object of the claimed colour):",
        "",
        "| dimension | \"I see\" objects | colour | shape | size | position | objects named truly | absent "
        "| background | strays | no object | damage levels (±1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dimension, s in report["summary"].items():
        attrs = s["object_attributes_true"]
        lines.append(
            f"| {dimension} | {kind(s, 'object')} | {pct(attrs.get('colour'))} | {pct(attrs.get('shape'))} | "
            f"{pct(attrs.get('size'))} | {pct(attrs.get('position'))} | {pct(s['objects_named_truly'])} | "
            f"{kind(s, 'absent')} | {kind(s, 'background')} | {kind(s, 'strays')} | {kind(s, 'no_object')} | "
            f"{kind(s, 'degradation')} |"
        )
    alignment = report["summary"].get("alignment", {})
    if "self_consistent" in alignment:
        lines += ["", "Self-consistency of the alignment rationales (world/consistency.py: the verdict against the "
                  "count the rationale's own claims imply):", "",
                  "| with a stated verdict | verdict follows from the claims | score in the band of its N of M "
                  "| both |", "|---|---|---|---|",
                  f"| {pct(alignment['with_verdict'])} | {pct(alignment['verdict_agrees'])} | "
                  f"{pct(alignment['band_agrees'])} | {pct(alignment['self_consistent'])} |"]
    lines += ["", "Perception claims true, by picture source:", ""]
    for source, per_dimension in report["by_source"].items():
        cells = ", ".join(f"{d} {pct(s['perception_true'])} of {s['perception_claims']}"
                          for d, s in per_dimension.items())
        lines.append(f"- {source}: {cells}")
    lines += ["", "Per-attribute truth is judged against the seen object of the claimed colour (else the "
              "closest one). \"Objects named truly\": seen objects that a fully true \"I see\" claim names. "
              "Claim parse failures: sentences that start like a claim but follow no claim form "
              "(share of all claim-like sentences).", "", "## Examples", ""]
    for dimension, rows in report["examples"].items():
        for row in rows:
            lines.append(f"**{dimension}**, {row['source']}"
                         + (f" ({row['damage']})" if row.get("damage") else "") + f", prompt: *{row['prompt']}*")
            lines.append(f"- truth: {'; '.join(row['truth']['seen'])}; damage levels {row['truth']['levels']}")
            lines.append(f"- rationale ({row['status']}, score {fmt(row['score'])}): {row['rationale']}")
            verdicts = [f"{'TRUE' if c['true'] else 'FALSE'}: {c['sentence']}" for c in row["claims"]]
            verdicts += [f"UNPARSED: {s}" for s in row["unparsed"]]
            lines.append("- claims: " + (" / ".join(verdicts) if verdicts else "none"))
            lines.append("")
    return "\n".join(lines) + "\n"


def input_problem(args: argparse.Namespace) -> str | None:
    if args.prompts < 0 or args.renders < 0 or args.prompts + args.renders < 1:
        return "--prompts and --renders must be >= 0, and together at least 1"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scorer_model_arguments(parser)
    parser.add_argument("--prompts", type=int, default=24, help="held-out prompts, one generator picture each")
    parser.add_argument("--max-new-tokens", type=int, help="room for the reasoning (default: the model's)")
    parser.add_argument("--renders", type=int, default=24, help="damaged renders of other held-out scenes")
    args = parser.parse_args(argv)
    return run_scorer_instrument("faithfulness", args, argv, input_problem, run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())

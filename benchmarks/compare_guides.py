"""Two guides' best-of-N picks on the same candidates, compared prompt by prompt.

    python -m benchmarks.compare_guides BASELINE.json CHALLENGER.json [--out STEM]

Both files are `benchmarks.guided_vs_unguided` reports of the same preset, prompts, seeds and N: the
generator draws the same candidates for both, so the only difference is which candidate each guide picks.
For the weighted total and each dimension: the mean oracle score of each guide's pick, the difference
(challenger - baseline) with a 95 % paired bootstrap interval over prompts, and how often the two guides
pick the same candidate (with --own-candidates, two runs that drew different candidates, e.g. in another
precision, are compared as whole runs, still paired by prompt). This is the comparison a ship rule needs: one guide against another, paired.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.common import paired_bootstrap, write_json_and_markdown
from t2i_guidance.input_checks import OneLineParser, fail

MATCHED = ("preset", "n", "prompt_set", "weights")


def compare(baseline: dict, challenger: dict, same_candidates: bool = True) -> dict:
    for key in MATCHED:
        if baseline.get(key) != challenger.get(key):
            raise ValueError(f"the reports differ in {key}: {baseline.get(key)!r} vs {challenger.get(key)!r}")
    first = {(r["prompt"], r["seed"]): r for r in baseline["per_prompt"]}
    second = {(r["prompt"], r["seed"]): r for r in challenger["per_prompt"]}
    keys = [k for k in first if k in second]
    if not keys:
        raise ValueError("the reports share no (prompt, seed)")
    for key in keys if same_candidates else ():  # same candidates: the unguided sample and the oracle's ceiling agree
        if not np.isclose(first[key]["total"]["ceiling"], second[key]["total"]["ceiling"]):
            raise ValueError(f"different candidates for {key[0]!r} (seed {key[1]}): not the same generator run")
    metrics = [m for m in ("total", "technical", "aesthetic", "alignment") if m in first[keys[0]]]
    rows = {}
    for metric in metrics:
        a = np.array([first[k][metric]["guided"] for k in keys])
        b = np.array([second[k][metric]["guided"] for k in keys])
        low, high = paired_bootstrap(b - a)
        rows[metric] = {"baseline": float(a.mean()), "challenger": float(b.mean()), "difference": float((b - a).mean()),
                        "ci95": [low, high]}
    same = float(np.mean([first[k]["pick"] == second[k]["pick"] for k in keys]))
    return {"baseline": baseline.get("scorer_kwargs"), "challenger": challenger.get("scorer_kwargs"),
            "prompts": len(keys), "same_pick": same if same_candidates else None, "metrics": rows}


def markdown(report: dict) -> str:
    same = (f"Same pick: {report['same_pick']:.0%} of prompts." if report["same_pick"] is not None else
            "Each run drew its own candidates (e.g. another precision): the whole run is compared, paired by prompt.")
    lines = [f"# Two guides compared prompt by prompt ({report['prompts']} prompts)", "",
             f"Baseline: `{report['baseline']}`. Challenger: `{report['challenger']}`. {same}", "",
             "| oracle score of the pick | baseline | challenger | difference | 95 % paired bootstrap |",
             "|---|---|---|---|---|"]
    for metric, row in report["metrics"].items():
        low, high = row["ci95"]
        lines.append(f"| {metric} | {row['baseline']:.3f} | {row['challenger']:.3f} | {row['difference']:+.3f} | "
                     f"{low:+.3f} .. {high:+.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("challenger", type=Path)
    parser.add_argument("--own-candidates", action="store_true",
                        help="the runs drew different candidates (another precision or generator): compare whole runs")
    parser.add_argument("--out", help="path stem for .json and .md (default: print the table only)")
    args = parser.parse_args(argv)
    try:
        reports = [json.loads(p.read_text(encoding="utf-8")) for p in (args.baseline, args.challenger)]
        report = compare(*reports, same_candidates=not args.own_candidates)
    except (OSError, ValueError, KeyError) as error:
        fail(f"compare_guides: {error}")
    if args.out:
        write_json_and_markdown(report, args.out, markdown)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

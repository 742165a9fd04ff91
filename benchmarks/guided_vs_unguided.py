"""Does guidance help? Best-of-N picks by a scorer, judged by the embedded world's oracles.

    python -m benchmarks.guided_vs_unguided --preset embedded --prompts 100 --n 8
    python -m benchmarks.guided_vs_unguided --preset embedded --scorer-model runs/lpA/grpo_stage2 --prompts 20
    python -m benchmarks.guided_vs_unguided --prompts 96 --also-scorer-model runs/scorerE/grpo_stage1  # two judges' mean

Prompts are the canonical captions of held-out scenes (contents the generator never saw rendered). For
each one the preset's BestOfN makes N candidates and its scorer picks one; then the world's pixel
oracles (ground truth, never seen by the scorer) judge every candidate. Per dimension and for the
preset's weighted total:
  - unguided: the mean oracle score over the N candidates, i.e. the expected score of one sample;
  - guided:   the oracle score of the scorer's pick;
  - ceiling:  the oracle score of the oracle's own best-of-N pick;
  - gain = guided - unguided, with a 95 % paired bootstrap interval over prompts;
  - agreement: Spearman's rho between scorer and oracle over each prompt's candidates (mean over prompts).
A prompt whose candidates all failed to score has no pick; it is counted, not filled.
Writes benchmarks/results/guided_vs_unguided.{json,md} (or --out).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import (
    RESULTS,
    command_line,
    held_out_scenes,
    paired_bootstrap,
    write_json_and_markdown,
)
from reward_model.evaluate import srcc


class MeanOfScorers:
    """Two scorers as one judge: each dimension's score is the mean of theirs where both answered; where
    one failed, its failure stands (a half-judged score is not passed off as a whole one)."""

    name = "mean-of-scorers"

    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def score(self, items, prompt, dimensions):
        from dataclasses import replace

        one, two = self.first.score(items, prompt, dimensions), self.second.score(items, prompt, dimensions)
        table = {}
        for item in items:
            row = {}
            for dimension in dimensions:
                a, b = one[item.id][dimension], two[item.id][dimension]
                row[dimension] = replace(a, score=(a.score + b.score) / 2) if a.ok and b.ok else (b if a.ok else a)
            table[item.id] = row
        return table


def run(args: argparse.Namespace) -> dict:
    import torch
    from tqdm.auto import tqdm

    from reward_model.interface import ImageItem
    from t2i_guidance import registries as scorer_registry
    from t2i_guidance.result import active_dimensions, aggregate
    from t2i_guidance.search.run_builder import RunRequest, build_run
    from t2i_guidance.world.captions import canonical_caption

    torch.set_num_threads(args.threads)
    request = RunRequest(preset=args.preset, strategy="best-of-n", strategy_options={"n": args.n},
                         scorer_model=args.scorer_model, weights=args.weights, device="cpu",
                         scorer_options=scorer_options(args), dtype=args.dtype)
    judge = None
    if args.also_scorer_model:
        from t2i_guidance.placement import load_scorer
        from t2i_guidance.search.run_builder import plan_run

        plan = plan_run(request)
        second = dict(plan.scorer_kwargs, model=args.also_scorer_model, seed=(plan.scorer_kwargs.get("seed") or 0) + 1)
        judge = MeanOfScorers(load_scorer(plan), scorer_registry.build_scorer(plan.scorer_name, **second))
    search = build_run(request, scorer=judge)
    preset, weights, scorer_kwargs = search.plan.preset, search.plan.weights, search.plan.scorer_kwargs
    if args.also_scorer_model:
        scorer_kwargs = {**scorer_kwargs, "averaged_with": args.also_scorer_model}
    dims = active_dimensions(weights)
    oracle = scorer_registry.build_scorer("oracle")

    rows, no_pick, failures = [], 0, 0
    pairs: dict[str, list[tuple[float, float]]] = {d: [] for d in dims}  # (scorer, oracle) per candidate
    start = time.perf_counter()
    if args.fresh:
        from t2i_guidance.world.fresh_prompts import fresh_prompts

        prompts = fresh_prompts(args.prompts)
    else:
        prompts = [canonical_caption(scene) for scene in held_out_scenes(args.prompts)]
    runs = [(prompt, 10_000 * index + repeat) for index, prompt in enumerate(prompts) for repeat in range(args.seeds)]
    for prompt, seed in tqdm(runs, desc="prompts x seeds", unit="run"):
        result = search(prompt, seed=seed)
        candidates = result.candidates
        failures += sum(not s.ok for c in candidates for s in c.scores.values())
        truth = oracle.score([ImageItem(c.id, c.candidate.image) for c in candidates], prompt, dims)
        for c in candidates:
            for d in dims:
                if not truth[c.id][d].ok:  # the oracle is the yardstick: if it cannot judge, stop
                    raise RuntimeError(f"oracle failed on {prompt!r} / {c.id} / {d}: {truth[c.id][d].error}")
        oracle_values = {d: [truth[c.id][d].score for c in candidates] for d in dims}
        for c in candidates:
            pairs_of = [(d, c.scores[d]) for d in dims if d in c.scores and c.scores[d].ok]
            for d, mine in pairs_of:
                pairs[d].append((mine.score, truth[c.id][d].score))
        oracle_total = [aggregate(truth[c.id], weights) for c in candidates]
        best = result.best
        if best is None:
            no_pick += 1
            continue
        pick = next(k for k, c in enumerate(candidates) if c.id == best.id)
        ranked = [(k, c.aggregate) for k, c in enumerate(candidates) if c.aggregate is not None]
        row = {"prompt": prompt, "seed": seed, "pick": pick, "oracle_pick": int(np.argmax(oracle_total)),
               "agreement": srcc([t for _, t in ranked], [oracle_total[k] for k, _ in ranked])}
        for name, values in [*oracle_values.items(), ("total", oracle_total)]:
            row[name] = {"unguided": float(np.mean(values)), "guided": float(values[pick]),
                         "ceiling": float(max(values))}
        rows.append(row)
    seconds = time.perf_counter() - start

    summary = {}
    for name in [*dims, "total"]:
        gain = np.array([r[name]["guided"] - r[name]["unguided"] for r in rows])
        low, high = paired_bootstrap(gain) if len(gain) else (None, None)
        summary[name] = {
            "unguided": float(np.mean([r[name]["unguided"] for r in rows])) if rows else None,
            "guided": float(np.mean([r[name]["guided"] for r in rows])) if rows else None,
            "ceiling": float(np.mean([r[name]["ceiling"] for r in rows])) if rows else None,
            "gain": float(gain.mean()) if len(gain) else None,
            "gain_95ci": [low, high],
        }
    for name in ("total", "alignment"):
        if name in summary and rows:
            summary[name]["capture"] = capture(rows, name)
    aligned = [r for r in rows if "alignment" in r]
    agreements = [r["agreement"] for r in rows if r["agreement"] is not None]
    return {
        "command": command_line("guided_vs_unguided"),
        "preset": preset.name, "scorer": preset.scorer, "scorer_kwargs": scorer_kwargs,
        "weights": weights, "prompts": len(prompts), "seeds_per_prompt": args.seeds, "n": args.n,
        "prompt_set": "fresh held-out (t2i_guidance/world/prompts/fresh_heldout.jsonl)" if args.fresh
        else "held-out scenes from seed 900000", "threads": args.threads,
        "pick_fully_aligned": float(np.mean([r["alignment"]["guided"] >= 5.0 for r in aligned])) if aligned else None,
        "fully_aligned_exists": float(np.mean([r["alignment"]["ceiling"] >= 5.0 for r in aligned])) if aligned else None,
        "prompts_without_pick": no_pick, "scorer_failures": failures,
        "scorer_failure_rate": failures / max(1, len(runs) * args.n * len(dims)),
        "agreement_spearman_mean": float(np.mean(agreements)) if agreements else None,
        "agreement_prompts": len(agreements),
        # Pooled over every scored candidate of every prompt: the scorer's SRCC on the generator's pictures.
        "srcc_per_dimension": {d: {"n": len(p), "srcc": srcc([a for a, _ in p], [b for _, b in p])}
                               for d, p in pairs.items()},
        "seconds_per_prompt": seconds / max(1, len(runs)),
        "summary": summary, "per_prompt": rows,
    }


def capture(rows: list[dict], name: str, rounds: int = 2000, seed: int = 0) -> dict:
    """Share of the oracle pick's gain that the scorer's pick gets: sum(guided - unguided) /
    sum(ceiling - unguided) over prompt runs, with a 95 % paired bootstrap interval over the runs."""
    got = np.array([r[name]["guided"] - r[name]["unguided"] for r in rows])
    best = np.array([r[name]["ceiling"] - r[name]["unguided"] for r in rows])
    if best.sum() <= 0:
        return {"share": None, "share_95ci": [None, None]}
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), size=(rounds, len(rows)))
    denominators = best[picks].sum(axis=1)
    shares = got[picks].sum(axis=1)[denominators > 0] / denominators[denominators > 0]
    return {"share": float(got.sum() / best.sum()),
            "share_95ci": [float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))]}


def markdown(report: dict) -> str:
    cell = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [
        f"# Guided vs unguided: preset `{report['preset']}`, best-of-{report['n']}, {report['prompts']} prompts x "
        f"{report.get('seeds_per_prompt', 1)} seed(s), judged by the world's oracles",
        "",
        f"Prompts: {report.get('prompt_set', 'held-out scenes from seed 900000')}.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| dimension | unguided (one sample) | guided (scorer's pick) | ceiling (oracle's pick) | gain | 95 % CI |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in report["summary"].items():
        low, high = s["gain_95ci"]
        lines.append(f"| {name} | {cell(s['unguided'])} | {cell(s['guided'])} | {cell(s['ceiling'])} | "
                     f"{cell(s['gain'])} | {cell(low)} .. {cell(high)} |")
    shares = [(name, s["capture"]) for name, s in report["summary"].items() if "capture" in s]
    if shares:
        lines += ["", "Share of the oracle pick's gain captured by the scorer's pick (95 % paired bootstrap): "
                  + "; ".join(f"{name} {cell(c['share'])} ({cell(c['share_95ci'][0])} .. {cell(c['share_95ci'][1])})"
                              for name, c in shares) + "."]
    if report.get("pick_fully_aligned") is not None:
        lines += ["", f"The pick is fully aligned {100 * report['pick_fully_aligned']:.0f} % of the time; a fully "
                  f"aligned candidate exists {100 * report['fully_aligned_exists']:.0f} % of the time."]
    lines += [
        "",
        f"Scorer-oracle agreement (Spearman over each prompt's candidates, mean of "
        f"{report['agreement_prompts']} prompts): {cell(report['agreement_spearman_mean'])}. "
        f"Scorer failures: {report['scorer_failures']} ({100 * report['scorer_failure_rate']:.1f} % of scores); "
        f"prompts without a pick: {report['prompts_without_pick']}. "
        f"{report['seconds_per_prompt']:.1f} s per prompt with {report['threads']} threads.",
        "",
        "SRCC of the scorer against the oracle over all scored candidates (the generator's own pictures): "
        + ", ".join(f"{d} {cell(v['srcc'])} (n={v['n']})" for d, v in report.get("srcc_per_dimension", {}).items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def scorer_options(args: argparse.Namespace) -> dict:
    """How the guiding scorer answers (its preset's way when no flag is given)."""
    options = {"mode": args.scorer_mode, "decoding": args.decoding, "samples": args.samples,
               "verdicts": args.verdicts}
    return {key: value for key, value in options.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="embedded")
    parser.add_argument("--scorer-model", help="scorer weights to use instead of the preset's (a local folder)")
    parser.add_argument("--also-scorer-model", help="a second scorer folder: each dimension is judged by the "
                        "mean of the two scorers (a judge ensemble)")
    parser.add_argument("--weights", help="e.g. technical=1,aesthetic=1,alignment=2 (preset default otherwise)")
    parser.add_argument("--scorer-mode", choices=("reason", "prob-weighted", "answer-only"),
                        help="how the scorer answers (default: the preset's)")
    parser.add_argument("--decoding", choices=("sampled", "greedy"), help="the scorer's decoding (default: the preset's)")
    parser.add_argument("--samples", type=int, help="completions per request, their scores averaged")
    parser.add_argument("--dtype", default="fp32", help="precision of the generator and the scorer (bf16: AMX CPUs)")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1, help="runs per prompt, each from its own seed")
    parser.add_argument("--verdicts", help="'own' (the judge's checks and score) or a verdict rule, e.g. "
                        "'world-grounded' (alignment checks read from the judge's description); preset default otherwise")
    parser.add_argument("--fresh", action="store_true", help="the fresh held-out prompts (world/fresh_prompts.py)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "guided_vs_unguided"), help="path stem for .json and .md")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.n < 2 or args.seeds < 1:
        parser.error("--prompts and --seeds must be >= 1 and --n >= 2")
    write_json_and_markdown(run(args), args.out, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

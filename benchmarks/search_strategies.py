"""Every search strategy at equal compute, on held-out world prompts, judged by the world's oracles.

    python -m benchmarks.search_strategies --prompts 32 --budgets 160,320,480 --presets embedded-oracle,embedded

For each guiding preset (its generator, scorer and weights, built by the run builder, so a retrained
scorer is picked up by rerunning) and each held-out prompt, every registered strategy runs at each
compute budget (denoiser evaluations, NFEs). The world's pixel oracles judge the strategy's pick:
the preset's weighted total, and alignment alone. Differences against best-of-N at the same budget are
paired over prompts, with 95 % bootstrap intervals.

Guided by `embedded-oracle`, the guide IS the judge: that column shows what a perfect judge gets out of
each strategy (a ceiling), not an independent evaluation. The generator runs at the preset's own
settings (steps, guidance), whatever the run builder gives; the report records them. Guided by `embedded` (the tiny OmniQuality-R),
the oracles are independent of the guide.

Compute is shared where the strategies would redo the same work: a candidate (prompt, seed, settings,
initial noise) is generated once per prompt and reused by any strategy or budget that asks for it again,
with its measured NFEs (scorers cache by image content). NFEs are therefore what each strategy WOULD
spend; wall seconds are not comparable. Time-to-quality is modelled instead: each process first measures
the generator's seconds per NFE and the guide's seconds per scorer request on fresh candidates, and a
strategy's time is NFEs x s/NFE + scorer requests x s/request (`benchmarks/strategy_report.py`). The strategies that work inside the
denoising loop (particles, path-search) share nothing: their populations are denoised afresh each time. Rows are appended to a JSONL file, so an
interrupted run resumes where it stopped; a prompt whose row lacks a strategy or budget of this run (rows
made before a strategy was added) is run again whole and its new row replaces the old one. Writes
benchmarks/results/search_strategies.{json,md,png}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RESULTS,
    command_line,
    held_out_scenes,
    write_json_and_markdown,
)
from benchmarks.strategy_report import markdown, plot, summarise

STRATEGIES = {
    # name: strategy options (the budget bounds every one of them)
    "best-of-n": {"n": None},
    "refine": {"rewriter": "world", "per_round": 4, "max_rounds": 32, "patience": 2},
    # the same with round 0's seeds redrawn every round: only the prompt changes, so a gain over best-of-N is
    # the rewrite's and not fresh noise's
    "refine-fixed-seeds": {"rewriter": "world", "per_round": 4, "max_rounds": 32, "patience": 2, "round_seeds": "fixed"},
    # best-of-N that stops early (same seeds, same pictures as best-of-n, one candidate at a time). Scores are
    # 0..5: 4.75 is a pick with every weighted dimension near flawless, nothing visible left to gain; a min_gain
    # of 0.02 points per extra candidate (40 NFEs) is a tenth of the smallest differences this table resolves
    # (~0.2), and under the normal model stops around 6-8 candidates when the picks' spread is ~0.5.
    "best-of-n-adaptive": {"n": None, "target": 4.75, "min_gain": 0.02},
    "zero-order": {"n": 4, "neighbours": 4, "rounds": 32, "patience": 2, "step_size": 0.5},
    "cascade": {"n": None, "keep": 2},
    # inside the denoising loop: the budget sets the population (40 NFEs a particle at 20 steps with
    # guidance); the guide judges the x0 predictions at 2 checkpoints (extra scorer requests, no NFEs)
    "particles": {"n": None, "checkpoints": 2, "resample_lambda": 4.0},
    "path-search": {"n": None, "checkpoints": 2, "keep": 2},
}
CALIBRATION_CANDIDATES = 4  # one batch, as best-of-N draws at the smallest budget
STRATEGY_OF = {"refine-fixed-seeds": "refine", "best-of-n-adaptive": "best-of-n"}  # table row -> registered strategy


class SharedGenerator:
    """A Generator that makes each distinct candidate once and hands out copies (see the module docstring)."""

    def __init__(self, generator) -> None:
        self.inner = generator
        self.pipeline = generator.pipeline
        self.cache: dict[str, object] = {}
        self.made = 0

    def latent_shape(self, settings):
        return self.inner.latent_shape(settings)

    def initial_noise(self, seed, settings):
        return self.inner.initial_noise(seed, settings)

    def generate(self, prompt, seeds, settings, batch_size=None, progress=False, first_index=0, latents=None):
        prompts = [prompt] * len(seeds) if isinstance(prompt, str) else list(prompt)
        keys = []
        for k, (text, seed) in enumerate(zip(prompts, seeds, strict=True)):
            # Seeded noise and the same noise passed explicitly draw the same image: one key for both.
            z = latents[k] if latents is not None else self.inner.initial_noise(seed, settings)
            noise = hashlib.sha1(z.numpy().tobytes()).hexdigest()
            keys.append(json.dumps([text, seed, repr(settings), noise]))
        missing = [k for k, key in enumerate(keys) if key not in self.cache]
        if missing:
            made = self.inner.generate(
                [prompts[k] for k in missing], [seeds[k] for k in missing], settings, batch_size=batch_size,
                latents=[latents[k] for k in missing] if latents is not None else None,
            )
            self.made += len(made)
            for k, candidate in zip(missing, made, strict=True):
                self.cache[keys[k]] = candidate
        out = []
        for k, key in enumerate(keys):
            cached = self.cache[key]
            out.append(replace(cached, id=f"c{first_index + k:03d}", index=first_index + k, extra={}))
        return out


def judge(oracle, candidate, prompt: str, weights: dict) -> dict:
    from reward_model.interface import ImageItem
    from t2i_guidance.result import aggregate

    dims = ["technical", "aesthetic", "alignment"]
    row = oracle.score([ImageItem("x", candidate.image)], prompt, dims)["x"]
    for d in dims:
        if not row[d].ok:  # the oracle is the yardstick: if it cannot judge, stop
            raise RuntimeError(f"oracle failed on {prompt!r}: {row[d].error}")
    return {"total": aggregate(row, weights), **{d: row[d].score for d in dims}}


def measure_unit_costs(preset_name: str, scorer_options: dict, generator, scorer) -> dict:
    """Seconds per NFE of the generator and per scorer request of the guide, on fresh candidates (a prompt
    and seeds no row uses), after a one-candidate warm-up: the unit costs of the modelled seconds."""
    from t2i_guidance.search.run_builder import RunRequest, build_run
    from t2i_guidance.world.captions import canonical_caption

    prompt = canonical_caption(held_out_scenes(1, start=990_000)[0])
    request = RunRequest(preset=preset_name, strategy="best-of-n", strategy_options={"n": 1}, device="cpu",
                         scorer_options=scorer_options)
    build_run(request, generator=generator, scorer=scorer)(prompt, seed=900_000_000)  # warm-up
    request.strategy_options = {"n": CALIBRATION_CANDIDATES}
    costs = build_run(request, generator=generator, scorer=scorer)(prompt, seed=900_000_100).costs
    return {"seconds_per_nfe": costs.seconds["generate"] / costs.nfes,
            "seconds_per_request": costs.seconds.get("score", 0.0) / max(costs.scorer_requests, 1),
            "candidates": costs.candidates, "nfes": costs.nfes, "scorer_requests": costs.scorer_requests}


def run_preset(preset_name: str, args: argparse.Namespace, done: set, sink) -> None:
    from t2i_guidance import registries as scorer_registry
    from t2i_guidance.ledger import Budget
    from t2i_guidance.search.run_builder import RunRequest, build_run, load_generator, load_scorer, plan_run
    from t2i_guidance.world.captions import canonical_caption

    base = plan_run(RunRequest(preset=preset_name, device="cpu"))
    scorer_options = {"seed": 0} if base.scorer_name == "omniquality-r" else {}
    base = plan_run(RunRequest(preset=preset_name, device="cpu", scorer_options=scorer_options))
    generator, scorer = load_generator(base), load_scorer(base)
    oracle = scorer_registry.build_scorer("oracle")
    runs = {}
    for name, options in STRATEGIES.items():
        request = RunRequest(preset=preset_name, strategy=STRATEGY_OF.get(name, name), strategy_options=dict(options),
                             device="cpu", scorer_options=scorer_options)
        if name in ("particles", "path-search"):
            request.cheap_scorer_options = {}  # the guide itself judges the predictions (see the cascade's note)
        if name == "cascade":
            # The cheap pass judges aesthetics alone, alignment only for the survivors. (The tiny scorer's
            # answer-only mode gives no parsable answer: it never learned to answer without reasoning.)
            request.strategy_options["cheap_dimensions"] = ["aesthetic"]
            request.cheap_scorer_options = {}
        runs[name] = request
    unit_costs = None
    for index, scene in enumerate(held_out_scenes(args.prompts)):
        prompt = canonical_caption(scene)
        if (preset_name, prompt) in done:
            continue
        if unit_costs is None:  # once per process, before the first row it makes
            unit_costs = measure_unit_costs(preset_name, scorer_options, generator, scorer)
            print(f"{preset_name}: {unit_costs}", flush=True)
        shared = SharedGenerator(generator)
        start = time.perf_counter()
        row = {"preset": preset_name, "prompt": prompt, "results": {}}
        for name, request in runs.items():
            for nfes in args.budgets:
                request.budget = Budget(nfes=nfes)
                result = build_run(request, generator=shared, scorer=scorer)(prompt, seed=10_000 * index)
                best = result.best
                row["results"][f"{name}@{nfes:g}"] = {
                    "nfes": result.costs.nfes, "candidates": result.costs.candidates,
                    "scorer_requests": result.costs.scorer_requests + result.costs.scorer_cache_hits,
                    "generated_tokens": result.costs.generated_tokens, "saved": result.costs.saved,
                    "rounds": len(result.rounds), "stopped": result.config.get("stopped"),
                    "rejected_rewrites": sum(e["event"] == "rewrite_rejected" for e in result.events),
                    "pick": best.id if best else None, "pick_prompt": best.candidate.prompt if best else None,
                    "oracle": judge(oracle, best.candidate, prompt, base.weights) if best else None,
                }
        row["generated"] = shared.made
        row["unit_costs"] = unit_costs
        row["settings"] = {"num_inference_steps": base.settings.num_inference_steps,
                           "guidance_scale": base.settings.guidance_scale}
        row["seconds"] = time.perf_counter() - start
        sink.write(json.dumps(row) + "\n")
        sink.flush()
        print(f"{preset_name} {index + 1}/{args.prompts} {row['seconds']:.0f}s {prompt}", flush=True)


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def complete(row: dict, budgets: list[float]) -> bool:
    """Whether a row holds every strategy at every budget of this run (and the unit costs)."""
    return "unit_costs" in row and all(f"{name}@{b:g}" in row["results"] for name in STRATEGIES for b in budgets)


def usable_rows(rows: list[dict], prompts: list[str], budgets: list[float]) -> list[dict]:
    """The last complete row of each prompt of this run, in the prompts' order (a prompt run again
    appends a new row; the new one wins)."""
    last = {r["prompt"]: r for r in rows if complete(r, budgets)}
    return [last[p] for p in prompts if p in last]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="embedded-oracle,embedded")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--budgets", default="160,320,480", help="NFEs, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="summarise the rows on disk, run nothing")
    parser.add_argument("--out", default=str(RESULTS / "search_strategies"), help="path stem for .jsonl/.json/.md/.png")
    args = parser.parse_args(argv)
    args.budgets = [float(b) for b in args.budgets.split(",")]
    if args.prompts < 2 or any(b <= 0 for b in args.budgets):
        parser.error("--prompts must be >= 2 and every budget positive")
    import torch

    from t2i_guidance.world.captions import canonical_caption

    torch.set_num_threads(args.threads)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    prompts = [canonical_caption(scene) for scene in held_out_scenes(args.prompts)]
    rows = []
    for preset in args.presets.split(","):  # one append-only file per preset: presets can run in parallel
        rows_path = Path(f"{stem}.{preset}.jsonl")
        existing = _read_rows(rows_path)
        done = {(preset, r["prompt"]) for r in usable_rows(existing, prompts, args.budgets)}
        stale = {r["prompt"] for r in existing} & set(prompts) - {p for _, p in done}
        if stale and not args.report_only:
            print(f"{preset}: {len(stale)} prompt(s) have rows without every strategy and budget of this run; "
                  "running them again", flush=True)
        if not args.report_only:
            with rows_path.open("a") as sink:
                run_preset(preset, args, done, sink)
        rows += usable_rows(_read_rows(rows_path), prompts, args.budgets)
    if not rows:
        raise SystemExit(f"error: no complete rows under {stem}.*.jsonl to report")
    report = {
        "command": command_line("search_strategies", argv),
        "prompts": len({r["prompt"] for r in rows}), "budgets_nfes": args.budgets, "strategies": STRATEGIES,
        "strategy_of": STRATEGY_OF, "summary": summarise(rows, args.budgets, list(STRATEGIES)),
        "generated_per_prompt": float(np.mean([r["generated"] for r in rows])),
        "seconds_per_prompt": float(np.mean([r["seconds"] for r in rows])),
    }
    plot(report, stem.with_suffix(".png"))
    write_json_and_markdown(report, stem, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Every search strategy at equal compute, on held-out world prompts, judged by the world's oracles.

    python -m benchmarks.search_strategies --prompts 12 --budgets 160,320,480 --presets embedded-oracle,embedded

For each guiding preset (its generator, scorer and weights, built by the run builder, so a retrained
scorer is picked up by rerunning) and each held-out prompt, every registered strategy runs at each
compute budget (denoiser evaluations, NFEs). The world's pixel oracles judge the strategy's pick:
the preset's weighted total, and alignment alone. Differences against best-of-N at the same budget are
paired over prompts, with 95 % bootstrap intervals.

Guided by `embedded-oracle`, the guide IS the judge: that column shows what a perfect judge gets out of
each strategy (a ceiling), not an independent evaluation. Guided by `embedded` (the tiny OmniQuality-R),
the oracles are independent of the guide.

Compute is shared where the strategies would redo the same work: a candidate (prompt, seed, settings,
initial noise) is generated once per prompt and reused by any strategy or budget that asks for it again,
with its measured NFEs (scorers cache by image content). NFEs are therefore what each strategy WOULD
spend; wall seconds are not comparable and are not reported. The strategies that work inside the
denoising loop (particles, path-search) share nothing: their populations are denoised afresh each time. Rows are appended to a JSONL file, so an
interrupted run resumes where it stopped. Writes benchmarks/results/search_strategies.{json,md,png}.
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
    paired_bootstrap,
    write_json_and_markdown,
)

STRATEGIES = {
    # name: strategy options (the budget bounds every one of them)
    "best-of-n": {"n": None},
    "refine": {"rewriter": "world", "per_round": 4, "max_rounds": 32, "patience": 2},
    "zero-order": {"n": 4, "neighbours": 4, "rounds": 32, "patience": 2, "step_size": 0.5},
    "cascade": {"n": None, "keep": 2},
    # inside the denoising loop: the budget sets the population (40 NFEs a particle at 20 steps with
    # guidance); the guide judges the x0 predictions at 2 checkpoints (extra scorer requests, no NFEs)
    "particles": {"n": None, "checkpoints": 2, "resample_lambda": 4.0},
    "path-search": {"n": None, "checkpoints": 2, "keep": 2},
}


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
    from t2i_guidance.aggregate import aggregate

    dims = ["technical", "aesthetic", "alignment"]
    row = oracle.score([ImageItem("x", candidate.image)], prompt, dims)["x"]
    for d in dims:
        if not row[d].ok:  # the oracle is the yardstick: if it cannot judge, stop
            raise RuntimeError(f"oracle failed on {prompt!r}: {row[d].error}")
    return {"total": aggregate(row, weights), **{d: row[d].score for d in dims}}


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
        request = RunRequest(preset=preset_name, strategy=name, strategy_options=dict(options), device="cpu",
                             scorer_options=scorer_options)
        if name in ("particles", "path-search"):
            request.cheap_scorer_options = {}  # the guide itself judges the predictions (see the cascade's note)
        if name == "cascade":
            # The cheap pass judges aesthetics alone, alignment only for the survivors. (The tiny scorer's
            # answer-only mode gives no parsable answer: it never learned to answer without reasoning.)
            request.strategy_options["cheap_dimensions"] = ["aesthetic"]
            request.cheap_scorer_options = {}
        runs[name] = request
    for index, scene in enumerate(held_out_scenes(args.prompts)):
        prompt = canonical_caption(scene)
        if (preset_name, prompt) in done:
            continue
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
        row["seconds"] = time.perf_counter() - start
        sink.write(json.dumps(row) + "\n")
        sink.flush()
        print(f"{preset_name} {index + 1}/{args.prompts} {row['seconds']:.0f}s {prompt}", flush=True)


def summarise(rows: list[dict], budgets: list[float]) -> dict:
    summary = {}
    for preset in sorted({r["preset"] for r in rows}):
        mine = [r for r in rows if r["preset"] == preset]
        table = {}
        for name in STRATEGIES:
            for nfes in budgets:
                key = f"{name}@{nfes:g}"
                picked = [r["results"][key] for r in mine]
                judged = [p for p in picked if p["oracle"] is not None]
                entry = {
                    "strategy": name, "budget_nfes": nfes, "prompts": len(picked), "without_pick": len(picked) - len(judged),
                    "nfes_spent": float(np.mean([p["nfes"] for p in picked])),
                    "scorer_requests": float(np.mean([p["scorer_requests"] for p in picked])),
                    "saved_scorer_requests": float(np.mean([p["saved"].get("scorer_requests", 0) for p in picked])),
                    "rejected_rewrites": int(sum(p["rejected_rewrites"] for p in picked)),
                }
                for metric in ("total", "alignment", "aesthetic", "technical"):
                    entry[metric] = float(np.mean([p["oracle"][metric] for p in judged])) if judged else None
                if name != "best-of-n":
                    pairs = [(r["results"][key], r["results"][f"best-of-n@{nfes:g}"]) for r in mine]
                    pairs = [(a, b) for a, b in pairs if a["oracle"] and b["oracle"]]
                    for metric in ("total", "alignment"):
                        diff = np.array([a["oracle"][metric] - b["oracle"][metric] for a, b in pairs])
                        low, high = paired_bootstrap(diff) if len(diff) else (None, None)
                        entry[f"vs_best_of_n_{metric}"] = float(diff.mean()) if len(diff) else None
                        entry[f"vs_best_of_n_{metric}_95ci"] = [low, high]
                table[key] = entry
        summary[preset] = table
    return summary


def markdown(report: dict) -> str:
    cell = lambda v: "n/a" if v is None else f"{v:+.2f}" if isinstance(v, float) and v < 0 else f"{v:.2f}"  # noqa: E731
    lines = [
        f"# Search strategies at equal compute: up to {report['prompts']} held-out world prompts, judged by the oracles",
        "",
        f"Command: `{report['command']}`",
        "",
        "Quality = the oracle's score of each strategy's pick (total: the guiding preset's weights). "
        "Δ = strategy − best-of-N at the same budget, paired over prompts, 95 % bootstrap interval. "
        "Guided by `embedded-oracle` the guide is the judge (a ceiling, not an independent evaluation).",
    ]
    for preset, table in report["summary"].items():
        count = next(iter(table.values()))["prompts"]
        lines += ["", f"## Guided by `{preset}` ({count} prompts)", "",
                  "| strategy | budget (NFEs) | NFEs spent | total | alignment | aesthetic | Δ total vs best-of-N | "
                  "Δ alignment | scorer requests (saved) | rejected rewrites |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for e in table.values():
            def delta(metric, e=e):
                if f"vs_best_of_n_{metric}" not in e:
                    return "–"
                low, high = e[f"vs_best_of_n_{metric}_95ci"]
                return f"{cell(e[f'vs_best_of_n_{metric}'])} ({cell(low)} .. {cell(high)})"
            saved = f" ({e['saved_scorer_requests']:.0f})" if e["saved_scorer_requests"] else ""
            lines.append(
                f"| {e['strategy']} | {e['budget_nfes']:g} | {e['nfes_spent']:.0f} | {cell(e['total'])} | "
                f"{cell(e['alignment'])} | {cell(e['aesthetic'])} | {delta('total')} | {delta('alignment')} | "
                f"{e['scorer_requests']:.1f}{saved} | {e['rejected_rewrites']} |"
            )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(report["summary"])
    fig, axes = plt.subplots(1, len(presets), figsize=(5.5 * len(presets), 4), squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        table = report["summary"][preset]
        for name in STRATEGIES:
            entries = [e for e in table.values() if e["strategy"] == name and e["total"] is not None]
            ax.plot([e["nfes_spent"] for e in entries], [e["total"] for e in entries], marker="o", label=name)
        ax.set_title(f"guided by {preset}")
        ax.set_xlabel("NFEs spent (mean per prompt)")
        ax.set_ylabel("oracle score of the pick (weighted total)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="embedded-oracle,embedded")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--budgets", default="160,320,480", help="NFEs, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="summarise the rows on disk, run nothing")
    parser.add_argument("--out", default=str(RESULTS / "search_strategies"), help="path stem for .jsonl/.json/.md/.png")
    args = parser.parse_args(argv)
    args.budgets = [float(b) for b in args.budgets.split(",")]
    if args.prompts < 2 or any(b <= 0 for b in args.budgets):
        parser.error("--prompts must be >= 2 and every budget positive")
    import torch

    torch.set_num_threads(args.threads)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in args.presets.split(","):  # one append-only file per preset: presets can run in parallel
        rows_path = Path(f"{stem}.{preset}.jsonl")
        existing = _read_rows(rows_path)
        missing = sorted({b for r in existing for b in args.budgets if f"best-of-n@{b:g}" not in r["results"]})
        if missing:  # a row holds every budget of its run; resuming cannot add budgets to it
            raise SystemExit(f"error: the rows in {rows_path} were made without budget(s) {missing}; "
                             "use another --out or the budgets they were made with")
        done = {(r["preset"], r["prompt"]) for r in existing}
        if not args.report_only:
            with rows_path.open("a") as sink:
                run_preset(preset, args, done, sink)
        rows += _read_rows(rows_path)[: args.prompts]
    if not rows:
        raise SystemExit(f"error: no rows under {stem}.*.jsonl to report")
    prompts = {r["prompt"] for r in rows}
    report = {
        "command": command_line("search_strategies", argv),
        "prompts": len(prompts), "budgets_nfes": args.budgets, "strategies": STRATEGIES,
        "summary": summarise(rows, args.budgets),
        "generated_per_prompt": float(np.mean([r["generated"] for r in rows])),
        "seconds_per_prompt": float(np.mean([r["seconds"] for r in rows])),
    }
    plot(report, stem.with_suffix(".png"))
    write_json_and_markdown(report, stem, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The strategy table's report: summary per preset, modelled seconds, adaptive stopping against fixed
best-of-N, the Markdown and the plot (`benchmarks/search_strategies.py` makes the rows).

Modelled seconds: wall seconds of a run are distorted by the shared candidate cache (a strategy that
reuses another's candidates looks free), so each run measures its unit costs once per process on fresh
candidates — seconds per denoiser evaluation (NFE) of the generator and per scorer request
((image, dimension) pair) of the guide — and a strategy's time is modelled as
NFEs spent x s/NFE + scorer requests x s/request (the rewriter and the ranking are left out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import paired_bootstrap

BASELINE = "best-of-n"
ADAPTIVE = "best-of-n-adaptive"


def modelled_seconds(picked: dict, unit: dict) -> float:
    return picked["nfes"] * unit["seconds_per_nfe"] + picked["scorer_requests"] * unit["seconds_per_request"]


def summarise(rows: list[dict], budgets: list[float], names: list[str]) -> dict:
    summary = {}
    for preset in sorted({r["preset"] for r in rows}):
        mine = [r for r in rows if r["preset"] == preset]
        table = {}
        for name in names:
            for nfes in budgets:
                key = f"{name}@{nfes:g}"
                picked = [r["results"][key] for r in mine]
                judged = [p for p in picked if p["oracle"] is not None]
                entry = {
                    "strategy": name, "budget_nfes": nfes, "prompts": len(picked), "without_pick": len(picked) - len(judged),
                    "nfes_spent": float(np.mean([p["nfes"] for p in picked])),
                    "scorer_requests": float(np.mean([p["scorer_requests"] for p in picked])),
                    "modelled_seconds": float(np.mean([modelled_seconds(r["results"][key], r["unit_costs"]) for r in mine])),
                    "saved_scorer_requests": float(np.mean([p["saved"].get("scorer_requests", 0) for p in picked])),
                    "rejected_rewrites": int(sum(p["rejected_rewrites"] for p in picked)),
                    "stopped": {s: sum(p["stopped"] == s for p in picked) for s in sorted({str(p["stopped"]) for p in picked})
                                if s != "None"},
                }
                for metric in ("total", "alignment", "aesthetic", "technical"):
                    entry[metric] = float(np.mean([p["oracle"][metric] for p in judged])) if judged else None
                if name != BASELINE:
                    pairs = [(r["results"][key], r["results"][f"{BASELINE}@{nfes:g}"]) for r in mine]
                    pairs = [(a, b) for a, b in pairs if a["oracle"] and b["oracle"]]
                    for metric in ("total", "alignment"):
                        diff = np.array([a["oracle"][metric] - b["oracle"][metric] for a, b in pairs])
                        low, high = paired_bootstrap(diff) if len(diff) else (None, None)
                        entry[f"vs_best_of_n_{metric}"] = float(diff.mean()) if len(diff) else None
                        entry[f"vs_best_of_n_{metric}_95ci"] = [low, high]
                table[key] = entry
        units = [r["unit_costs"] for r in mine]
        summary[preset] = {
            "table": table,
            "unit_costs": {k: float(np.mean([u[k] for u in units])) for k in ("seconds_per_nfe", "seconds_per_request")},
            "settings": mine[0].get("settings"),
            "seconds_per_prompt": float(np.mean([r["seconds"] for r in mine])),
            "adaptive": adaptive_vs_fixed(table, budgets) if f"{ADAPTIVE}@{budgets[0]:g}" in table else [],
        }
    return summary


def nfes_to_reach(curve: list[tuple[float, float]], quality: float) -> tuple[float | None, str]:
    """NFEs fixed best-of-N needs for `quality`, linear between its budgets (points: (NFEs spent, total)):
    (value, "") when reached inside the curve, (first NFEs, "<=") when its smallest budget already does,
    (None, ">") when no budget does."""
    if curve[0][1] >= quality:
        return curve[0][0], "<="
    for (x0, y0), (x1, y1) in zip(curve, curve[1:], strict=False):
        if y0 < quality <= y1:
            return x0 + (quality - y0) / (y1 - y0) * (x1 - x0), ""
    return None, ">"


def adaptive_vs_fixed(table: dict, budgets: list[float]) -> list[dict]:
    curve = [(table[f"{BASELINE}@{b:g}"]["nfes_spent"], table[f"{BASELINE}@{b:g}"]["total"]) for b in budgets]
    out = []
    if any(y is None for _, y in curve):
        return out
    for b in budgets:
        a, f = table[f"{ADAPTIVE}@{b:g}"], table[f"{BASELINE}@{b:g}"]
        need, how = nfes_to_reach(curve, a["total"]) if a["total"] is not None else (None, ">")
        out.append({"budget_nfes": b, "adaptive_total": a["total"], "adaptive_nfes": a["nfes_spent"],
                    "adaptive_seconds": a["modelled_seconds"], "fixed_total": f["total"], "fixed_nfes": f["nfes_spent"],
                    "delta": a.get("vs_best_of_n_total"), "delta_95ci": a.get("vs_best_of_n_total_95ci"),
                    "fixed_nfes_for_adaptive_quality": need, "reached": how, "fixed_nfes_most": curve[-1][0],
                    "stopped": a["stopped"]})
    return out


def _cell(v) -> str:
    return "n/a" if v is None else f"{v:+.2f}" if isinstance(v, float) and v < 0 else f"{v:.2f}"


def markdown(report: dict) -> str:
    lines = [
        f"# Search strategies at equal compute: up to {report['prompts']} held-out world prompts, judged by the oracles",
        "",
        f"Command: `{report['command']}`",
        "",
        "Quality = the oracle's score of each strategy's pick (total: the guiding preset's weights). "
        "Δ = strategy − best-of-N at the same budget, paired over prompts, 95 % bootstrap interval. "
        "Guided by `embedded-oracle` the guide is the judge (a ceiling, not an independent evaluation). "
        "`refine-fixed-seeds` redraws round 0's seeds every round (only the prompt changes); "
        "`best-of-n-adaptive` is best-of-N with an adaptive stop (options in the JSON).",
        "",
        "**Modelled seconds** are not measured wall time: each run measures the generator's seconds per NFE "
        "and the guide's seconds per scorer request on fresh candidates, and a strategy's time is "
        "NFEs spent × s/NFE + scorer requests × s/request (the shared candidate cache makes wall time meaningless).",
    ]
    for preset, part in report["summary"].items():
        table, unit, settings = part["table"], part["unit_costs"], part["settings"] or {}
        count = next(iter(table.values()))["prompts"]
        lines += ["", f"## Guided by `{preset}` ({count} prompts)", "",
                  f"Generator settings (the preset's defaults): {settings}. Measured unit costs: "
                  f"{unit['seconds_per_nfe'] * 1000:.1f} ms per NFE, {unit['seconds_per_request'] * 1000:.1f} ms "
                  f"per scorer request; {part['seconds_per_prompt']:.0f} s wall per prompt for every row.", "",
                  "| strategy | budget (NFEs) | NFEs spent | modelled s | total | alignment | aesthetic | "
                  "Δ total vs best-of-N | Δ alignment | scorer requests (saved) | rejected rewrites |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in table.values():
            def delta(metric, e=e):
                if f"vs_best_of_n_{metric}" not in e:
                    return "–"
                low, high = e[f"vs_best_of_n_{metric}_95ci"]
                return f"{_cell(e[f'vs_best_of_n_{metric}'])} ({_cell(low)} .. {_cell(high)})"
            saved = f" ({e['saved_scorer_requests']:.0f})" if e["saved_scorer_requests"] else ""
            lines.append(
                f"| {e['strategy']} | {e['budget_nfes']:g} | {e['nfes_spent']:.0f} | {e['modelled_seconds']:.1f} | "
                f"{_cell(e['total'])} | {_cell(e['alignment'])} | {_cell(e['aesthetic'])} | {delta('total')} | "
                f"{delta('alignment')} | {e['scorer_requests']:.1f}{saved} | {e['rejected_rewrites']} |"
            )
        if part["adaptive"]:
            lines += ["", f"### Adaptive stopping against fixed best-of-N (`{preset}`)", "",
                      "Quality at equal compute: both get the same budget; the adaptive run may stop early "
                      "(NFEs it actually spent). Compute at equal quality: the NFEs fixed best-of-N needs "
                      "to reach the adaptive run's mean total, interpolated linearly between its budgets.", "",
                      "| budget (NFEs) | adaptive: total | adaptive: NFEs spent (modelled s) | fixed: total | "
                      "Δ total (95 % CI) | fixed NFEs for the adaptive total | why it stopped |",
                      "|---|---|---|---|---|---|---|"]
            for a in part["adaptive"]:
                low, high = a["delta_95ci"] or (None, None)
                need = a["fixed_nfes_for_adaptive_quality"]
                need_text = (f"not reached (> {a['fixed_nfes_most']:.0f})" if need is None
                             else f"{a['reached']} {need:.0f}".strip())
                lines.append(
                    f"| {a['budget_nfes']:g} | {_cell(a['adaptive_total'])} | {a['adaptive_nfes']:.0f} "
                    f"({a['adaptive_seconds']:.1f}) | {_cell(a['fixed_total'])} | {_cell(a['delta'])} "
                    f"({_cell(low)} .. {_cell(high)}) | {need_text} | "
                    f"{', '.join(f'{k} {v}' for k, v in a['stopped'].items()) or 'budget'} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Two rows of panels per guiding preset: oracle total against NFEs spent, and against modelled seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(report["summary"])
    fig, axes = plt.subplots(2, len(presets), figsize=(6 * len(presets), 8), squeeze=False)
    for column, preset in enumerate(presets):
        table = report["summary"][preset]["table"]
        for row, (x, label) in enumerate((("nfes_spent", "NFEs spent (mean per prompt)"),
                                          ("modelled_seconds", "modelled seconds (measured unit costs)"))):
            ax = axes[row][column]
            for name in report["strategies"]:
                entries = [e for e in table.values() if e["strategy"] == name and e["total"] is not None]
                ax.plot([e[x] for e in entries], [e["total"] for e in entries], marker="o", label=name,
                        linestyle="--" if name.endswith(("fixed-seeds", "adaptive")) else "-")
            ax.set_title(f"guided by {preset}")
            ax.set_xlabel(label)
            ax.set_ylabel("oracle score of the pick (weighted total)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)

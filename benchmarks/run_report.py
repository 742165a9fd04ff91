"""Report of a benchmark run, rebuilt from its rows alone: Markdown tables and PNG plots.

    python -m benchmarks.run_report RUN_DIR          # writes RUN_DIR/report.md, quality_vs_*.png, samples.png

- A GenEval-shaped table per strategy (per-task accuracy, overall = mean of task accuracies, with a 95 %
  bootstrap interval over prompts, resampled within each task) when the prompt set has a correctness judge.
  A strategy that lacks a task of the run (unfinished) has no overall score.
- Per judge and dimension, and for correctness: guided minus its unguided pair (same prompt, image index
  and first seed), the paired bootstrap 95 % interval over prompts, and the win rate.
- Quality against compute (NFEs and scorer tokens per image), one point per strategy.
A judge that also guided a strategy is never in these tables for that strategy: its numbers appear only
in a section headed "not independent".
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.rows import merge_rows, read_rows
from benchmarks.stats import bootstrap_interval, mean_of_group_means, per_prompt, pooled_mean, win_rate
from t2i_guidance.input_checks import OneLineParser, fail

TASK_TITLES = {"single_object": "Single obj.", "two_object": "Two obj.", "counting": "Counting",
               "colors": "Colors", "position": "Position", "color_attr": "Color attri."}


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    paths = sorted(run_dir.glob("rows*.jsonl"))
    if not paths:
        raise ValueError(f"no rows*.jsonl in {run_dir}")
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    rows = merge_rows(read_rows(p) for p in paths)
    order = {name: i for i, name in enumerate(config.get("strategies", []))}
    rows.sort(key=lambda r: order.get(r["strategy"], len(order)))  # stable: the run's strategy order
    return config, rows


def _cell(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(result: tuple[float, float, float] | None, digits: int = 2) -> str:
    if result is None:
        return "n/a"
    point, low, high = result
    return f"{point:.{digits}f} ({low:+.{digits}f}..{high:+.{digits}f})" if low < 0 or point < 0 else \
        f"{point:.{digits}f} ({low:.{digits}f}..{high:.{digits}f})"


def _signed(result: tuple[float, float, float] | None, digits: int = 2) -> str:
    if result is None:
        return "n/a"
    point, low, high = result
    return f"{point:+.{digits}f} ({low:+.{digits}f}..{high:+.{digits}f})"


def task_order(rows: list[dict]) -> list[str]:
    seen = list(dict.fromkeys(r["task"] for r in rows))
    known = [t for t in TASK_TITLES if t in seen]
    return known + [t for t in seen if t not in known]


def _independent(row: dict, judge: str) -> bool:
    return bool(row.get("independent", {}).get(judge, False))


def strategy_label(strategy: str, rows: list[dict]) -> str:
    guide = rows[0]["guide"]
    return f"{strategy} (guided by {guide})" if guide else strategy


def compute_table(rows: list[dict]) -> list[dict]:
    """Per strategy: costs per image, and GenEval accuracies where a correctness judge decided. A strategy
    missing a task of the run (an unfinished run) gets no overall score."""
    all_tasks = set(task_order(rows))
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_strategy[row["strategy"]].append(row)
    table = []
    for strategy, members in by_strategy.items():
        judged = [r for r in members if r.get("correct") is not None]
        entry = {
            "strategy": strategy, "label": strategy_label(strategy, members), "images": len(members),
            "unjudged": len(members) - len(judged),
            "nfes": float(np.mean([r["costs"]["nfes"] for r in members])),
            "scorer_requests": float(np.mean([r["costs"]["scorer_requests"] for r in members])),
            "scorer_tokens": float(np.mean([r["costs"]["generated_tokens"] for r in members])),
            "seconds": float(np.mean([r.get("timing", {}).get("strategy_seconds", 0.0) for r in members])),
            "candidates": float(np.mean([r["costs"].get("candidates", len(r["seeds"])) for r in members])),
        }
        cpu = [r["timing"]["strategy_cpu_seconds"] for r in members if "strategy_cpu_seconds" in r.get("timing", {})]
        entry["cpu_seconds"] = float(np.mean(cpu)) if len(cpu) == len(members) else None
        scores: dict[str, list[float]] = defaultdict(list)
        for r in members:
            for judge_name, dims in r.get("judges", {}).items():
                for dim, verdict in dims.items():
                    if verdict["status"] == "ok" and _independent(r, judge_name):
                        scores[f"{judge_name}.{dim}"].append(verdict["score"])
        entry["judge_means"] = {k: float(np.mean(v)) for k, v in scores.items()}
        if judged:
            judge = judged[0]["correctness_judge"]
            entry["correctness_judge"] = judge
            entry["independent"] = all(_independent(r, f"correctness:{judge}") for r in judged)
            groups = per_prompt([(r["task"], r["prompt_id"], float(r["correct"])) for r in judged])
            entry["tasks"] = {t: float(np.mean(v)) for t, v in groups.items()}
            entry["prompts"] = {t: len(v) for t, v in groups.items()}
            complete = set(groups) == all_tasks
            entry["overall"] = None
            if complete:
                entry["overall_point"] = mean_of_group_means({t: np.asarray(v) for t, v in groups.items()})
                # One prompt in a task has nothing to resample: no interval rather than a zero-width one.
                if min(len(v) for v in groups.values()) >= 2:
                    entry["overall"] = bootstrap_interval(groups, mean_of_group_means)
        table.append(entry)
    return table


def paired_differences(rows: list[dict]) -> list[dict]:
    """Guided minus its unguided pair, per metric, with the paired bootstrap interval and win rate."""
    unguided = {(r["generator"], r["prompt_id"], r["image_index"], r["seeds"][0]): r
                for r in rows if r["kind"] == "unguided"}
    results = []
    strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["kind"] != "unguided"))
    for strategy in strategies:
        pairs = []
        for row in rows:
            if row["strategy"] != strategy:
                continue
            base = unguided.get((row["generator"], row["prompt_id"], row["image_index"], row["seeds"][0]))
            if base is not None:
                pairs.append((row, base))
        if not pairs:
            continue
        metrics: dict[tuple[str, str], list] = defaultdict(list)
        for row, base in pairs:
            if row.get("correct") is not None and base.get("correct") is not None:
                judge = f"correctness:{row['correctness_judge']}"
                metrics[(judge, "GenEval correct")].append((row, float(row["correct"]) - float(base["correct"])))
            for judge, dims in row.get("judges", {}).items():
                for dim, verdict in dims.items():
                    other = base.get("judges", {}).get(judge, {}).get(dim)
                    if verdict["status"] == "ok" and other and other["status"] == "ok":
                        metrics[(judge, dim)].append((row, verdict["score"] - other["score"]))
        for (judge, metric), items in metrics.items():
            # Prompts resampled across tasks: a few prompts per task would understate the spread.
            groups = per_prompt([("all", r["prompt_id"], d) for r, d in items])
            results.append({
                "strategy": strategy, "judge": judge, "metric": metric,
                "independent": all(_independent(r, judge) for r, _ in items),
                "pairs": len(items), "no_pair": len([r for r in rows if r["strategy"] == strategy]) - len(pairs),
                "difference": bootstrap_interval(groups, pooled_mean),
                "win_rate": win_rate([d for _, d in items]),
            })
    return results


def _geneval_lines(table: list[dict], tasks: list[str], independent: bool) -> list[str]:
    header = "| strategy | Overall (95 % CI) | " + " | ".join(TASK_TITLES.get(t, t) for t in tasks) + \
             " | NFEs / image | scorer tokens / image |"
    lines = [header, "|" + "---|" * (len(tasks) + 4)]
    for entry in table:
        if "tasks" not in entry or entry["independent"] != independent:
            continue
        cells = " | ".join(_cell(entry["tasks"].get(t)) for t in tasks)
        overall = _interval(entry["overall"])
        if entry["overall"] is None and entry.get("overall_point") is not None:
            overall = f"{entry['overall_point']:.2f} (no interval: 1 prompt in a task)"
        lines.append(f"| {entry['label']} | {overall} | {cells} | {entry['nfes']:.0f} | "
                     f"{entry['scorer_tokens']:.0f} |")
    return lines


def _difference_lines(diffs: list[dict]) -> list[str]:
    lines = ["| strategy | judge | metric | guided − unguided (95 % CI) | wins / ties / losses | pairs |",
             "|---|---|---|---|---|---|"]
    for d in diffs:
        w = d["win_rate"]
        lines.append(f"| {d['strategy']} | {d['judge']} | {d['metric']} | {_signed(d['difference'])} | "
                     f"{w['wins']:.2f} / {w['ties']:.2f} / {w['losses']:.2f} | {d['pairs']} |")
    return lines


def markdown(config: dict, rows: list[dict], table: list[dict], diffs: list[dict]) -> str:
    tasks = task_order(rows)
    prompts = len({r["prompt_id"] for r in rows})
    lines = [
        f"# Benchmark report: {config.get('prompt_set', rows[0]['prompt_set'])}",
        "",
        f"{len(rows)} images: {prompts} distinct prompts x {config.get('images_per_prompt', '?')} images x "
        f"{len(table)} strategies; judges: {', '.join(config.get('judges', []))}; run seed {config.get('seed', '?')}. "
        "Regenerate with `python -m benchmarks.run_report RUN_DIR` (from the rows alone).",
        "",
    ]
    if config:
        command = (f"python -m benchmarks.run --out RUN_DIR --prompt-set {config.get('prompt_set', '?')} "
                   f"--images {config.get('images_per_prompt', '?')} --seed {config.get('seed', '?')} "
                   + (f"--per-task {config['per_task']} " if config.get("per_task") else "")
                   + f"--strategies {' '.join(config['strategies'])} --judges {' '.join(config['judges'])}"
                   + (" --allow-self-judged" if config.get("allow_self_judged") else ""))
        run_line = f"Run: `{command}` (add `--shard I/N` per process, then `python -m benchmarks.merge RUN_DIR`)."
    else:
        run_line = ""
    if any("tasks" in e for e in table):
        lines += ["## GenEval-shaped table (accuracy; overall = mean of the task accuracies)", "",
                  *_geneval_lines(table, tasks, True), ""]
        prompts_per_task = next(e["prompts"] for e in table if "prompts" in e)
        lines += ["Prompts per task: " + ", ".join(f"{TASK_TITLES.get(t, t)} {prompts_per_task.get(t, 0)}" for t in tasks)
                  + ". Intervals: bootstrap over prompts, resampled within each task.", ""]
    independent = [d for d in diffs if d["independent"]]
    if independent:
        lines += ["## Guided minus unguided (paired: same prompt, image index and initial noise)", "",
                  *_difference_lines(independent), ""]
    dependent_table = [e for e in table if "tasks" in e and not e["independent"]]
    dependent = [d for d in diffs if not d["independent"]]
    if dependent_table or dependent:
        lines += ["## Not independent: the judge also guided the run", "",
                  "These numbers measure how well a search optimises its own judge, not how good its images "
                  "are; they are kept apart from the tables above.", ""]
        for entry in dependent_table:
            lines.append(f"- {entry['label']}: {entry['correctness_judge']}-guided, "
                         f"{entry['correctness_judge']}-judged: not independent.")
        if dependent_table:
            lines += ["", *_geneval_lines(table, tasks, False), ""]
        if dependent:
            lines += _difference_lines(dependent) + [""]
    lines += ["## Compute per image (the search's ledger; judging excluded)", "",
              "| strategy | candidates | NFEs | scorer requests | scorer tokens | seconds (wall) | CPU seconds |",
              "|---|---|---|---|---|---|---|"]
    for e in table:
        lines.append(f"| {e['label']} | {e['candidates']:.1f} | {e['nfes']:.0f} | {e['scorer_requests']:.1f} | "
                     f"{e['scorer_tokens']:.0f} | {e['seconds']:.2f} | {_cell(e['cpu_seconds'])} |")
    unjudged = sum(e["unjudged"] for e in table if "tasks" in e)
    if unjudged:
        lines += ["", f"{unjudged} images have no verdict (no candidate could be scored); they are counted, not filled."]
    lines += _search_lines(rows)
    lines += ["", "Plots: `quality_vs_nfes.png`, `quality_vs_scorer_tokens.png`, `quality_vs_seconds.png`; "
              "samples: `samples.png`."]
    if run_line:  # last, so a self-judged strategy it names never reads as part of the independent tables
        lines += ["", run_line]
    return "\n".join(lines) + "\n"


def _search_lines(rows: list[dict]) -> list[str]:
    """What multi-round searches did: how often the kept image came from a rewritten prompt, rewrites
    rejected, why they stopped."""
    lines = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows if r.get("search", {}).get("rounds")):
        members = [r for r in rows if r["strategy"] == strategy]
        rewritten = sum(r["search"].get("picked_prompt") not in (None, r["prompt"]) for r in members)
        rounds = [len(r["search"]["rounds"]) for r in members]
        rejected = sum(e.get("event") == "rewrite_rejected" for r in members for e in r["search"].get("events", []))
        stops = defaultdict(int)
        for r in members:
            stops[r["search"].get("stopped")] += 1
        lines.append(f"- {strategy}: {rewritten} of {len(members)} kept images were drawn from a rewritten prompt "
                     f"(all judged against the original); {np.mean(rounds):.1f} rounds per image; {rejected} "
                     f"rewrites rejected; stopped: " + ", ".join(f"{k} {v}" for k, v in stops.items()) + ".")
    return ["", "## Multi-round searches", "", *lines] if lines else []


def plot_quality_vs_compute(table: list[dict], diffs: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for axis, title in (("nfes", "NFEs per image"), ("scorer_tokens", "scorer tokens per image"),
                        ("seconds", "wall seconds per image")):
        fig, ax = plt.subplots(figsize=(6, 4))
        geneval = any(e.get("overall_point") is not None for e in table)
        metric = None if geneval else next((k for e in table for k in sorted(e["judge_means"])), None)
        for entry in table:
            if geneval and entry.get("overall_point") is not None:
                point, low, high = entry["overall"] or (entry["overall_point"],) * 3
                marker = "o" if entry["independent"] else "x"
                ax.errorbar(entry[axis], point, yerr=[[point - low], [high - point]], fmt=marker, capsize=3,
                            label=entry["label"] + ("" if entry["independent"] else " [not independent]"))
            elif metric and metric in entry["judge_means"]:
                ax.plot(entry[axis], entry["judge_means"][metric], "o", label=entry["label"])
        if axis == "scorer_tokens":
            ax.set_xscale("symlog")
        ax.set_xlabel(title)
        ax.set_ylabel("GenEval-shaped overall score" if geneval else f"mean {metric} (independent judges only)")
        ax.set_title(f"Quality vs compute ({title})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"quality_vs_{axis}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def sample_images_per_prompt(rows: list[dict], most: int = 2) -> int:
    return min(most, 1 + max((r["image_index"] for r in rows), default=0))


def sample_sheet(rows: list[dict], run_dir: Path, per_task: int = 1, images: int | None = None) -> Path | None:
    """One prompt per task, labelled with its task and prompt: a column group of images per strategy
    (named above it), each framed green (correct) or red (not)."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    images = images or sample_images_per_prompt(rows)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    chosen = []
    for task in task_order(rows):
        chosen += list(dict.fromkeys(r["prompt_id"] for r in rows if r["task"] == task))[:per_task]
    cell, pad, label_width, header = 96, 6, 260, 34
    font = ImageFont.load_default(size=13)
    group = images * (cell + pad)
    width = label_width + len(strategies) * (group + pad) + pad
    sheet = Image.new("RGB", (width, header + len(chosen) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for s, strategy in enumerate(strategies):
        name = strategy.split(":")[0].split(",")[0]  # "refine,per_round=2:embedded" -> "refine"
        draw.text((label_width + s * (group + pad) + pad, 8), name, fill="black", font=font)
    index = {(r["strategy"], r["prompt_id"], r["image_index"]): r for r in rows}
    first = {r["prompt_id"]: r for r in rows}
    for y, prompt_id in enumerate(chosen):
        y0 = header + pad + y * (cell + pad)
        label = f"{first[prompt_id]['task']}: {first[prompt_id]['prompt']}"
        draw.multiline_text((pad, y0), "\n".join(textwrap.wrap(label, 34)[:6]), fill="black", font=font)
        for s, strategy in enumerate(strategies):
            for k in range(images):
                row = index.get((strategy, prompt_id, k))
                if row is None or row.get("image") is None or not (run_dir / row["image"]).exists():
                    continue
                x0 = label_width + s * (group + pad) + pad + k * (cell + pad)
                with Image.open(run_dir / row["image"]) as image:
                    sheet.paste(image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST), (x0, y0))
                if row.get("correct") is not None:
                    colour = "green" if row["correct"] else "red"
                    draw.rectangle([x0 - 2, y0 - 2, x0 + cell + 1, y0 + cell + 1], outline=colour, width=2)
    path = run_dir / "samples.png"
    sheet.save(path)
    return path


def write_run_report(run_dir: Path) -> Path:
    config, rows = load_run(run_dir)
    table = compute_table(rows)
    diffs = paired_differences(rows)
    plot_quality_vs_compute(table, diffs, run_dir)
    sample_sheet(rows, run_dir)
    text = markdown(config, rows, table, diffs)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    shown = sample_images_per_prompt(rows)
    text += "\nSample sheet columns, left to right: " + ", ".join(f"{s} ({shown} image{'s' * (shown > 1)})" for s in strategies) + \
        "; one prompt per task, top to bottom, labelled; green frame = correct, red = not.\n"
    (run_dir / "report.md").write_text(text, encoding="utf-8")
    (run_dir / "summary.json").write_text(json.dumps({"table": table, "differences": diffs}, indent=2) + "\n")
    return run_dir / "report.md"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.run_report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        fail(f"run folder {args.run_dir!r} does not exist")
    try:
        path = write_run_report(run_dir)
    except ValueError as exc:
        fail(str(exc))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

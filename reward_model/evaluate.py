"""Correlation of a scorer's answers with the labels: SRCC, PLCC and PLCC after a 4-parameter logistic.

Metrics are computed per (source dataset, task) over the records whose answer parsed; parse failures (and
unreadable images) are counted in the table and never given a number. Answers come from the scorer
(reward_model.scorer), so evaluation measures exactly what guides generation. A metric that cannot be computed (too few samples, a
constant prediction, a logistic fit that does not converge) is reported as None.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.optimize import curve_fit

from reward_model.data.schema import IQARecord, read_records, resolve_image_path
from reward_model.interface import DimensionScore, ImageError, ImageItem, ScoreStatus, load_image


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def srcc(predictions: Sequence[float], labels: Sequence[float]) -> float | None:
    if len(predictions) < 3 or np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return None
    return _defined(stats.spearmanr(predictions, labels).statistic)


def plcc(predictions: Sequence[float], labels: Sequence[float]) -> float | None:
    if len(predictions) < 3 or np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return None
    return _defined(stats.pearsonr(predictions, labels).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The usual IQA mapping: (b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2, with b4 > 0."""
    return (b1 - b2) / (1.0 + np.exp(-np.clip((x - b3) / b4, -50, 50))) + b2


def plcc_logistic(predictions: Sequence[float], labels: Sequence[float]) -> float | None:
    """PLCC between the labels and the predictions mapped through a fitted 4-parameter logistic.

    The fit starts from a few slopes and keeps the smallest squared error; None when none converges.
    """
    x, y = np.asarray(predictions, float), np.asarray(labels, float)
    if len(x) < 5 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    spread = float(np.std(x))
    lower = [-np.inf, -np.inf, -np.inf, 1e-6]
    best, best_error = None, np.inf
    for slope in (0.1, 0.3, 1.0, 3.0):
        start = [y.max(), y.min(), float(np.median(x)), slope * spread]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = curve_fit(logistic4, x, y, p0=start, bounds=(lower, np.inf), maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        error = float(np.sum((logistic4(x, *params) - y) ** 2))
        if error < best_error:
            best, best_error = params, error
    return None if best is None else plcc(logistic4(x, *best), y)


def correlation_table(rows: Sequence[dict]) -> list[dict]:
    """rows: {source, task, label, score (None on parse failure)} -> one metrics row per (source, task)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["source"], row["task"])].append(row)
        groups[("all", row["task"])].append(row)
    table = []
    for (source, task), members in sorted(groups.items()):
        scored = [m for m in members if m["score"] is not None]
        predictions = [m["score"] for m in scored]
        labels = [m["label"] for m in scored]
        table.append({
            "source": source, "task": task, "n": len(members), "parse_failures": len(members) - len(scored),
            "srcc": srcc(predictions, labels), "plcc": plcc(predictions, labels),
            "plcc_logistic": plcc_logistic(predictions, labels),
        })
    return table


def format_table(table: Sequence[dict]) -> str:
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = ["| source | task | n | parse failures | SRCC | PLCC | PLCC (logistic) |", "|---|---|---|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['source']} | {row['task']} | {row['n']} | {row['parse_failures']} | "
                     f"{cell(row['srcc'])} | {cell(row['plcc'])} | {cell(row['plcc_logistic'])} |")
    return "\n".join(lines) + "\n"


def scorer_settings(generation: dict) -> dict:
    """The eval config's `generation` section as OmniQualityScorer arguments (greedy unless do_sample)."""
    settings = dict(generation)
    unknown = set(settings) - {"max_new_tokens", "batch_size", "do_sample", "temperature", "top_p", "top_k",
                               "backend", "samples", "mode", "seed", "device"}
    if unknown:
        raise ValueError(f"unknown eval generation setting(s) {sorted(unknown)}")
    settings["decoding"] = "sampled" if settings.pop("do_sample", False) else "greedy"
    return settings


def score_records(scorer, records: Sequence[IQARecord], jsonl_path: str | Path, chunk: int = 64) -> list[DimensionScore]:
    """One result per record, through the scorer (and so its backend: transformers or vLLM).

    Records are grouped by (task, prompt), the unit of one scorer call, and sent `chunk` images at a time so
    a large test split is never all in memory. An unreadable image is an error result, never a number.
    """
    results: list[DimensionScore | None] = [None] * len(records)
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[(record.task, record.prompt)].append(index)
    for (task, prompt), indices in groups.items():
        for start in range(0, len(indices), chunk):
            items = []
            for index in indices[start : start + chunk]:
                try:
                    image = load_image(resolve_image_path(records[index], jsonl_path))
                except ImageError as error:
                    results[index] = DimensionScore.failure(task, ScoreStatus.ERROR, str(error))
                    continue
                items.append(ImageItem(id=str(index), image=image))
            if items:
                table = scorer.score(items, prompt, [task])
                for item in items:
                    results[int(item.id)] = table[item.id][task]
    return results


def evaluate_model(
    model_path: str | Path,
    jsonl_path: str | Path,
    out_dir: str | Path,
    split: str | None = "test",
    limit: int | None = None,
    **generation: object,
) -> list[dict]:
    """Score every record of `jsonl_path` (optionally one split) and write predictions + the table.

    The model is run through OmniQualityScorer, the same path that guides generation: the backend picks
    bf16 on a GPU (vLLM when installed), the model's pixel bounds, and records failures as failures.
    `generation`: max_new_tokens, batch_size, do_sample, temperature, top_p, top_k, backend, samples, mode,
    seed, device.
    """
    from reward_model.scorer import OmniQualityScorer

    records = [r for r in read_records(jsonl_path) if split is None or r.split == split][:limit]
    if not records:
        raise ValueError(f"no records with split {split!r} in {jsonl_path}")
    scorer = OmniQualityScorer(model=str(model_path), **scorer_settings(generation))
    results = score_records(scorer, records, jsonl_path)
    rows = []
    for record, result in zip(records, results, strict=True):
        rows.append({"source": record.source, "task": record.task, "label": record.label, "image": record.image,
                     "score": result.score, "status": result.status.value, "error": result.error,
                     "completion": result.raw})
    table = correlation_table(rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (out_dir / "metrics.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    (out_dir / "metrics.md").write_text(format_table(table), encoding="utf-8")
    return table


def read_predictions(path: str | Path) -> list[dict]:
    """The rows `evaluate_model` wrote to predictions.jsonl (a file, or the folder that holds it)."""
    path = Path(path)
    path = path / "predictions.jsonl" if path.is_dir() else path
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def paired_srcc_change(before: Sequence[dict], after: Sequence[dict], rounds: int = 2000,
                       seed: int = 0) -> list[dict]:
    """Per task: SRCC of `after` minus SRCC of `before` on the same records (prediction rows), with a 95 %
    paired bootstrap interval. A record either model failed to score is left out of that task's pairs."""
    if [r["image"] for r in before] != [r["image"] for r in after]:
        raise ValueError("the two evaluations scored different records")
    rng = np.random.default_rng(seed)
    changes = []
    for task in sorted({r["task"] for r in before}):
        pairs = [(a["label"], a["score"], b["score"]) for a, b in zip(before, after, strict=True)
                 if a["task"] == task and a["score"] is not None and b["score"] is not None]
        if len(pairs) < 3:
            changes.append({"task": task, "n": len(pairs), "change": None, "ci95": None})
            continue
        labels, x, y = (np.array(column) for column in zip(*pairs, strict=True))

        def delta(idx, labels=labels, x=x, y=y) -> float | None:
            second, first = srcc(y[idx], labels[idx]), srcc(x[idx], labels[idx])
            return None if second is None or first is None else second - first

        samples = [delta(rng.integers(0, len(labels), len(labels))) for _ in range(rounds)]
        samples = [v for v in samples if v is not None]  # a resample of constant scores has no SRCC
        changes.append({"task": task, "n": len(pairs), "change": delta(np.arange(len(labels))),
                        "ci95": [float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))]
                        if samples else None})
    return changes

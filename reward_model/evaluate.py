"""Correlation of a scorer's answers with the labels: SRCC, PLCC and PLCC after a 4-parameter logistic.

Metrics are computed per (source dataset, task) over the records whose answer parsed; parse failures are
counted in the table and never given a number. A metric that cannot be computed (too few samples, a
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
from reward_model.parsing import parse_answer
from reward_model.prompts import chat_messages


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


def generate_answers(
    model,
    processor,
    records: Sequence[IQARecord],
    jsonl_path: str | Path,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.8,
    top_k: int = 20,
) -> list[str]:
    """Batched, left-padded generation of one answer per record (greedy unless `do_sample`)."""
    import torch
    from PIL import Image

    answers: list[str] = []
    model.eval()
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        texts, images = [], []
        for record in batch:
            messages = chat_messages(record.task, record.prompt)
            texts.append(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
            with Image.open(resolve_image_path(record, jsonl_path)) as image:
                images.append(image.convert("RGB"))
        inputs = processor(images=images, text=texts, padding=True, padding_side="left", return_tensors="pt")
        inputs = inputs.to(model.device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k} if do_sample \
            else {"do_sample": False}
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers.extend(processor.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def evaluate_model(
    model_path: str | Path,
    jsonl_path: str | Path,
    out_dir: str | Path,
    split: str | None = "test",
    limit: int | None = None,
    **generation: object,
) -> list[dict]:
    """Score every record of `jsonl_path` (optionally one split) and write predictions + the table."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    records = [r for r in read_records(jsonl_path) if split is None or r.split == split][:limit]
    if not records:
        raise ValueError(f"no records with split {split!r} in {jsonl_path}")
    processor = AutoProcessor.from_pretrained(model_path)
    model = AutoModelForImageTextToText.from_pretrained(model_path)
    answers = generate_answers(model, processor, records, jsonl_path, **generation)
    rows = []
    for record, answer in zip(records, answers, strict=True):
        parsed = parse_answer(answer)
        rows.append({"source": record.source, "task": record.task, "label": record.label, "image": record.image,
                     "score": parsed.score, "error": parsed.error, "completion": answer})
    table = correlation_table(rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (out_dir / "metrics.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    (out_dir / "metrics.md").write_text(format_table(table), encoding="utf-8")
    return table

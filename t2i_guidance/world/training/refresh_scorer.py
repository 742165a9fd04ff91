"""Refresh the tiny OmniQuality-R for a new world generator, with one command.

    python -m t2i_guidance.world.training.refresh_scorer --generator t2i_guidance/world/weights/generator --out runs/refresh [--ship]

The scorer must judge the generator's pictures; after a new generator ships, this fine-tunes the shipped
scorer on what the new one draws (the base VLM is not retrained). Stages, each skipped when its output
exists, so an interrupted refresh continues where it stopped (the pools resume by chunk, CoT by record,
SFT and GRPO from their last checkpoint):
  1. pools     the new generator's pictures: --pool of training prompts, --test-pool of held-out prompts
               (t2i_guidance.world.training.generated_pool)
  2. records   oracle-labelled scorer records (t2i_guidance.world.training.scorer_data): the training pool's, plus
               --renders render records replayed so the scorer does not forget the renders; held-out
               render contents form the render test set, the held-out pool the generator test set
  3. training  CoT (rule-based teacher, rejection sampling) -> short SFT from the shipped scorer -> short
               GRPO stage 1 -> stage 2 (STD filter, entropy gating), as the paper's recipe
  4. report    before (the scorer fine-tuned from) and after on the same two test sets: SRCC per
               dimension and the paired-bootstrap change -> OUT/refresh_report.{json,md}
  5. ship      with --ship, the result replaces reward_model/weights/tiny-omniquality-r (with provenance:
               generator, steps, evaluations) only if the mean SRCC over the new generator's pictures
               rose, no render dimension got worse beyond noise (the 95 % paired interval of its SRCC
               change lies wholly below 0) and no more answers fail to parse; otherwise the old scorer
               stays and the report says why.
The defaults cost about 21 CPU-minutes on one core of this project's CPU, measured per stage at a small
size (per picture 0.9 s, per SFT step 1.1 s, per GRPO step 2 s, per evaluated record 0.1 s); about 25-30
minutes of wall time on a machine where other jobs run (README, the embedded world).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[3]
TEST_SETS = ("renders", "generator")
# Gradient checkpointing (on by default in TRL) only slows a model this small.
# The form the shipped scorer writes (look-first, compared checks): a refresh keeps it, so the embedded
# preset's verdict rule (world/grounded_verdict.py) still finds a description to read.
SHIPPED_FORM = {"element_checks": True, "tally": True, "paired": True, "compare": True, "seen_first": True,
                "look_first": True}
TRAIN_COMMON = {"use_cpu": True, "bf16": False, "report_to": "none", "seed": 0, "gradient_checkpointing": False,
                "save_strategy": "steps", "save_total_limit": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from reward_model.backends import EMBEDDED_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True, help="the new WorldDiffusionPipeline folder")
    parser.add_argument("--out", default="runs/refresh")
    parser.add_argument("--scorer", default=str(EMBEDDED_DIR), help="the scorer to fine-tune (the shipped one)")
    parser.add_argument("--target", default=str(EMBEDDED_DIR), help="where --ship writes the refreshed scorer")
    parser.add_argument("--pool", type=int, default=256, help="generator pictures of training prompts")
    parser.add_argument("--test-pool", type=int, default=96, help="generator pictures of held-out prompts")
    parser.add_argument("--renders", type=int, default=1500,
                        help="render records (about 80 %% replayed in training, 20 %% the render test set)")
    parser.add_argument("--sft-steps", type=int, default=500)
    parser.add_argument("--sft-lr", type=float, default=1e-4, help="lower than from the base: a fine-tune")
    parser.add_argument("--grpo1-steps", type=int, default=40)
    parser.add_argument("--grpo2-steps", type=int, default=20)
    parser.add_argument("--grpo1-lr", type=float, default=2e-5)
    parser.add_argument("--grpo2-lr", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=16, help="SFT rows / GRPO completions per step")
    parser.add_argument("--max-new-tokens", type=int, default=400, help="room for the look-first rationale")
    parser.add_argument("--eval-limit", type=int, default=None, help="records per test set (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ship", action="store_true", help="replace --target when the refresh is not worse")
    args = parser.parse_args(argv)
    if not (Path(args.generator) / "model_index.json").is_file():
        parser.exit(2, f"error: --generator {args.generator} is not a saved pipeline (no model_index.json)\n")
    if not (Path(args.scorer) / "config.json").is_file():
        parser.exit(2, f"error: --scorer {args.scorer} is not a saved model (no config.json)\n")
    counts = {name: getattr(args, name) for name in ("pool", "test_pool", "sft_steps", "batch_size")}
    if any(value < 1 for value in counts.values()) or min(args.renders, args.grpo1_steps, args.grpo2_steps) < 0:
        parser.exit(2, "error: --pool, --test-pool, --sft-steps and --batch-size must be >= 1, the others >= 0\n")
    if args.batch_size % 8:
        parser.exit(2, "error: --batch-size must be a multiple of 8 (GRPO's group of 8 completions)\n")
    return args


def build_records(out: Path, args: argparse.Namespace, timings: dict) -> dict[str, Path]:
    """Stages 1 and 2: the pools and the record sets; returns the train file and the two test files."""
    from t2i_guidance.world.training import generated_pool, scorer_data

    pools = {"train": out / "pool_train", "test": out / "pool_test"}
    for name, n, held_out in (("train", args.pool, False), ("test", args.test_pool, True)):
        if len(list(pools[name].glob("chunk_[0-9][0-9][0-9][0-9].npz"))) * generated_pool.CHUNK < n:
            timings[f"pool_{name}"] = _timed(lambda name=name, n=n, held_out=held_out: generated_pool.build_pool(
                pools[name], n, args.seed, args.generator, held_out=held_out))
    data, held_out = out / "data", out / "data_generator_test"
    if not (data / "test.jsonl").exists():  # export writes test.jsonl last
        timings["records"] = _timed(lambda: scorer_data.export(data, args.renders, pools["train"], args.seed))
    if not (held_out / "test.jsonl").exists():
        scorer_data.export(held_out, 0, pools["test"], args.seed, pool_split="test")
    return {"train": data / "train.jsonl", "renders": data / "test.jsonl", "generator": held_out / "test.jsonl"}


def training_config(out: Path, args: argparse.Namespace, files: dict[str, Path]) -> dict:
    """The reward_model.train config of stage 3 (the same functions as `python -m reward_model.train`)."""
    save_every = {"save_steps": max(1, args.sft_steps // 4)}
    grpo = TRAIN_COMMON | {"beta": 0.001, "num_generations": 8, "temperature": 1.0, "loss_type": "grpo",
                           "per_device_train_batch_size": args.batch_size, "logging_steps": 5,
                           "max_completion_length": args.max_new_tokens, "save_steps": 10}
    return {
        "model": args.scorer,
        "data": {"train": str(files["train"]), "test": str(files["renders"])},
        "cot": {"teacher": "rule-based", "teacher_options": {"noise_std": 0.5, "seed": args.seed} | SHIPPED_FORM, "k": 8,
                "tolerance": 0.5, "keep": "best", "out": str(out / "cot" / "train.jsonl")},
        "sft": {"out": str(out / "sft"), "args": TRAIN_COMMON | save_every | {
            "learning_rate": args.sft_lr, "per_device_train_batch_size": args.batch_size,
            "max_steps": args.sft_steps, "lr_scheduler_type": "cosine", "warmup_steps": min(10, args.sft_steps // 10),
            "logging_steps": 20, "max_length": 640}},
        "grpo": {"stages": [
            {"model": str(out / "sft"), "out": str(out / "grpo_stage1"),
             "args": grpo | {"learning_rate": args.grpo1_lr, "max_steps": args.grpo1_steps}},
            {"model": str(out / "grpo_stage1"), "out": str(out / "grpo_stage2"),
             "args": grpo | {"learning_rate": args.grpo2_lr, "max_steps": args.grpo2_steps, "std_filter": True,
                             "top_entropy_quantile": 0.2, "delta": 3.0}},
        ]},
    }


def train(out: Path, args: argparse.Namespace, files: dict[str, Path], timings: dict) -> dict[str, Path]:
    """Stage 3; returns the model folder of each trained stage (a GRPO stage with 0 steps is skipped)."""
    from reward_model.train import run_cot, run_grpo_stage, run_sft_stage

    config = training_config(out, args, files)
    summary = out / "cot" / "summary.json"
    if not summary.exists():
        timings["cot"] = _timed(lambda: summary.write_text(json.dumps(run_cot(config), indent=2) + "\n"))
    models = {"sft": out / "sft"}
    if not (out / "sft" / "config.json").exists():
        timings["sft"] = _timed(lambda: run_sft_stage(config))
    previous = models["sft"]
    for name, stage in zip(("grpo_stage1", "grpo_stage2"), config["grpo"]["stages"], strict=True):
        if stage["args"]["max_steps"] == 0:
            continue
        stage = stage | {"model": str(previous), "rewards": ["format", "accuracy"]}
        if not (Path(stage["out"]) / "reward_history.json").exists():  # written after the model is saved
            timings[name] = _timed(lambda stage=stage: run_grpo_stage(config, stage))
        models[name] = previous = Path(stage["out"])
    return models


def _timed(work) -> dict[str, float]:
    """Wall and CPU seconds of work() (CPU time says what the stage costs on an unshared core)."""
    wall, cpu = time.time(), time.process_time()
    work()
    return {"wall": round(time.time() - wall, 1), "cpu": round(time.process_time() - cpu, 1)}


def evaluate(out: Path, name: str, model: Path, files: dict[str, Path], args: argparse.Namespace,
             timings: dict) -> dict[str, list[dict]]:
    """Per test set, the per-task table of `model` (kept on disk: a finished evaluation is not redone)."""
    from reward_model.evaluate import correlation_table, evaluate_model, read_predictions

    tables = {}
    for test_set in TEST_SETS:
        folder = out / "eval" / f"{name}_{test_set}"
        if not (folder / "metrics.json").exists():
            timings[f"eval_{name}_{test_set}"] = _timed(lambda folder=folder, test_set=test_set: evaluate_model(
                model, files[test_set], folder, split="test", limit=args.eval_limit,
                max_new_tokens=args.max_new_tokens, batch_size=32))
        tables[test_set] = [row for row in correlation_table(read_predictions(folder)) if row["source"] == "all"]
    return tables


def ship_verdict(before: list[dict], after: list[dict], rounds: int = 2000) -> tuple[bool, list[str]]:
    """Whether `after` may replace `before`, judged on the same held-out render records (prediction rows):
    per task, it must have an SRCC, its parse failures may grow by at most max(2, 2 %), and the 95 % paired
    bootstrap interval of its SRCC change must reach 0 (worse beyond noise = the interval wholly below 0).
    Returns (ship, the reasons against; empty when it ships)."""
    from reward_model.evaluate import correlation_table, paired_srcc_change

    reasons = []
    first = {row["task"]: row for row in correlation_table(before) if row["source"] == "all"}
    second = {row["task"]: row for row in correlation_table(after) if row["source"] == "all"}
    for change in paired_srcc_change(before, after, rounds):
        task = change["task"]
        if second[task]["srcc"] is None:
            reasons.append(f"{task}: the refreshed scorer has no SRCC ({second[task]['parse_failures']} "
                           f"of {second[task]['n']} answers unreadable)")
            continue
        allowed = first[task]["parse_failures"] + max(2, round(0.02 * first[task]["n"]))
        if second[task]["parse_failures"] > allowed:
            reasons.append(f"{task}: parse failures grew from {first[task]['parse_failures']} to "
                           f"{second[task]['parse_failures']}")
        if change["ci95"] is not None and change["ci95"][1] < 0:
            reasons.append(f"{task}: SRCC fell by {-change['change']:.3f} (95 % interval "
                           f"{change['ci95'][0]:+.3f} .. {change['ci95'][1]:+.3f})")
    return not reasons, reasons


def no_gain_reason(generator_changes: list[dict]) -> str | None:
    """The refresh exists to judge the new generator's pictures better: without a mean SRCC gain over
    their tasks it is not worth replacing the scorer, however harmless it is on renders."""
    changes = [c["change"] for c in generator_changes if c["change"] is not None]
    if changes and sum(changes) / len(changes) > 0:
        return None
    mean = f"{sum(changes) / len(changes):+.3f}" if changes else "n/a"
    return f"no gain on the new generator's pictures (mean SRCC change {mean})"


def write_report(out: Path, report: dict) -> str:
    cell = lambda v, fmt=".3f": "n/a" if v is None else format(v, fmt)  # noqa: E731
    lines = [f"# Scorer refresh for `{report['generator']}`", "",
             f"Command: `{report['command']}`", "",
             "| test set | task | n | SRCC before | SRCC after | change | 95 % paired bootstrap | parse failures |",
             "|---|---|---|---|---|---|---|---|"]
    final = report["final_stage"]
    for test_set in TEST_SETS:
        before = {row["task"]: row for row in report["evaluations"]["before"][test_set]}
        after = {row["task"]: row for row in report["evaluations"][final][test_set]}
        for change in report["srcc_changes"][test_set]:
            task = change["task"]
            interval = "n/a" if change["ci95"] is None else f"{change['ci95'][0]:+.3f} .. {change['ci95'][1]:+.3f}"
            lines.append(f"| {test_set} | {task} | {after[task]['n']} | {cell(before[task]['srcc'])} | "
                         f"{cell(after[task]['srcc'])} | {cell(change['change'], '+.3f')} | {interval} | "
                         f"{before[task]['parse_failures']} -> {after[task]['parse_failures']} |")
    verdict = report["verdict"]
    lines += ["", f"Before: `{report['scorer']}`; after: {final}. Render test: held-out render contents; generator "
              "test: the new generator's pictures of held-out prompts; labels are the oracles'.",
              "", "Verdict: " + ("better on the new generator's pictures on average and not worse on held-out "
                                 "renders beyond noise, fit to ship" if verdict["ship"]
                                 else "keep the old scorer: " + "; ".join(verdict["reasons"])),
              f"Shipped: {report['shipped'] or 'no'}", "",
              "Stage seconds (wall / CPU): " + ", ".join(f"{k} {v['wall']} / {v['cpu']}"
                                                         for k, v in report["timings"].items()), ""]
    text = "\n".join(lines)
    (out / "refresh_report.md").write_text(text)
    (out / "refresh_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return text


def ship(final: Path, args: argparse.Namespace, report: dict) -> Path:
    from reward_model.export_embedded import export_embedded

    generator = Path(args.generator)
    old = Path(args.scorer) / "provenance.json"
    previous = json.loads(old.read_text()) if old.is_file() else {}
    training = generator / "training.json"
    provenance = {
        "base_vlm": previous.get("base_vlm"),
        "refreshed_for_generator": {"path": str(generator),
                                    "training": json.loads(training.read_text()) if training.is_file() else None},
        "fine_tuned_from": {"path": str(args.scorer), "source": previous.get("source"),
                            "training": previous.get("training")},
        "refresh": {"settings": report["settings"], "final_stage": report["final_stage"],
                    "timings": report["timings"]},
        "evaluations": report["evaluations"], "srcc_changes": report["srcc_changes"],
        "command": report["command"],
    }
    return export_embedded(final, args.target, provenance=provenance)


def refresh(args: argparse.Namespace) -> dict:
    import torch

    from reward_model.evaluate import paired_srcc_change, read_predictions

    torch.set_num_threads(args.threads)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"  # stage times survive a resume
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}

    def save_timings() -> None:
        timings_path.write_text(json.dumps(timings, indent=1) + "\n")

    files = build_records(out, args, timings)
    save_timings()
    evaluations = {"before": evaluate(out, "before", Path(args.scorer), files, args, timings)}
    save_timings()
    models = train(out, args, files, timings)
    save_timings()
    for name, model in models.items():
        evaluations[name] = evaluate(out, name, model, files, args, timings)
        save_timings()
    final = list(models)[-1]
    changes = {test_set: paired_srcc_change(read_predictions(out / "eval" / f"before_{test_set}"),
                                            read_predictions(out / "eval" / f"{final}_{test_set}"))
               for test_set in TEST_SETS}
    ok, reasons = ship_verdict(read_predictions(out / "eval" / "before_renders"),
                               read_predictions(out / "eval" / f"{final}_renders"))
    if (reason := no_gain_reason(changes["generator"])) is not None:
        ok, reasons = False, [*reasons, reason]
    from reward_model.data.schema import read_records

    train_sources = [record.source for record in read_records(files["train"])]
    report = {
        "command": "python -m t2i_guidance.world.training.refresh_scorer " + " ".join(sys.argv[1:]),
        "generator": str(args.generator), "scorer": str(args.scorer), "settings": vars(args),
        "train_records": {"generator": train_sources.count("world-generator"),
                          "render_replay": train_sources.count("world-render")},
        "final_stage": final, "evaluations": evaluations, "srcc_changes": changes,
        "verdict": {"ship": ok, "reasons": reasons}, "shipped": None, "timings": timings,
    }
    if args.ship and ok:
        report["shipped"] = str(ship(models[final], args, report))
    print(write_report(out, report))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = refresh(args)
    if args.ship and not report["verdict"]["ship"]:
        print("not shipped: the old scorer stays", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a tiny scorer in stages and measure each: untrained -> SFT -> GRPO stage 1 -> stage 2, SRCC on held-out labels.

    python -m t2i_guidance.world.training.train_scorer --out runs/scorer --data runs/world_vlm/scorer_data \
        --base runs/world_vlm/base/final          # the world's scorer (what rebuild_scorer runs)

Every stage runs through the same functions as `python -m reward_model.train`. Results (SRCC / PLCC,
parse failures, wall time per stage) go to OUT/learning_proof.json and .md. A model that answers nothing
readable has no SRCC: it is reported as n/a with its parse-failure count, never as a number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from reward_model.evaluate import evaluate_model  # noqa: E402
from reward_model.train import run_cot, run_grpo_stage, run_sft_stage  # noqa: E402

# Gradient checkpointing (on by default in TRL) only slows a model this small.
COMMON = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "seed": 0,
          "gradient_checkpointing": False}


def prepare_data(out: Path, world: bool, n: int, seed: int, prepared: str | None = None) -> dict[str, str]:
    data = Path(prepared) if prepared else out / "data"
    if not (data / "train.jsonl").exists():
        if world:  # reward_model never imports t2i_guidance: the world is called as a program
            subprocess.run([sys.executable, "-m", "t2i_guidance.world.training.iqa_export", "--out", str(data),
                            "--n", str(n), "--seed", str(seed)], check=True)
        else:
            from reward_model.data.synthetic import write_dataset

            write_dataset(data, n=n, seed=seed)
    return {"train": str(data / "train.jsonl"), "test": str(data / "test.jsonl")}


def evaluate(name: str, model: Path, data: dict, out: Path, results: dict, args: argparse.Namespace) -> None:
    start = time.time()
    table = evaluate_model(model, data["test"], out / f"eval_{name}", split="test", limit=args.eval_limit,
                           max_new_tokens=args.max_new_tokens, batch_size=32, device=args.device)
    overall = [row for row in table if row["source"] == "all"]
    results["evaluations"][name] = {"model": str(model), "seconds": round(time.time() - start, 1),
                                    "per_task": overall}
    for row in overall:
        print(f"[{name}] {row['task']}: n={row['n']} parse_failures={row['parse_failures']} "
              f"SRCC={row['srcc']} PLCC={row['plcc']}", flush=True)
    (out / "learning_proof.json").write_text(json.dumps(results, indent=2) + "\n")


def srcc_change(out: Path, before: str, after: str, rounds: int = 2000, seed: int = 0) -> list[dict]:
    """Per task: SRCC of `after` minus SRCC of `before` on the same test records, with a 95 % paired
    bootstrap interval (reward_model.evaluate.paired_srcc_change)."""
    from reward_model.evaluate import paired_srcc_change, read_predictions

    try:
        return paired_srcc_change(read_predictions(out / f"eval_{before}"), read_predictions(out / f"eval_{after}"),
                                  rounds, seed)
    except ValueError as error:
        raise ValueError(f"eval_{before} and eval_{after}: {error}") from error


def add_drills(cot: Path, teacher_options: dict, shares: dict[str, float], seed: int, results: dict) -> Path:
    """cot/sft.jsonl: the accepted trajectories and, per drill kind, drills for a share of their alignment
    pictures (cot/drills.jsonl)."""
    import random

    from reward_model.cot.teachers import RuleBasedTeacher
    from t2i_guidance.world.training.misread_drills import misread_drills

    entries = [json.loads(line) for line in cot.read_text().splitlines() if line.strip()]
    teacher = RuleBasedTeacher(**{k: v for k, v in teacher_options.items() if k not in ("noise_std", "seed")})
    drills = []
    for kind, share in shares.items():  # the description drills draw first, so their picks stay as before
        drills += misread_drills(entries, teacher, random.Random(seed), share, kind) if share else []
    (cot.parent / "drills.jsonl").write_text("".join(json.dumps(d) + "\n" for d in drills))
    both = cot.parent / "sft.jsonl"
    both.write_text("".join(json.dumps(e) + "\n" for e in entries + drills))
    results["drills"] = {"entries": len(entries), "drills": len(drills)} | {f"{k}_share": v for k, v in shares.items()}
    print(f"drills: {len(drills)} beside {len(entries)} trajectories", flush=True)
    return both


def write_tables(out: Path, results: dict) -> str:
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| model | task | n | parse failures | SRCC | PLCC |", "|---|---|---|---|---|---|"]
    for name, entry in results["evaluations"].items():
        for row in entry["per_task"]:
            lines.append(f"| {name} | {row['task']} | {row['n']} | {row['parse_failures']} | {cell(row['srcc'])} | "
                         f"{cell(row['plcc'])} |")
    names = list(results["evaluations"])
    # A reused SFT model keeps its evaluation numbers but its predictions may live in another folder: a
    # paired comparison needs both stages' predictions here.
    comparisons = [(a, b) for a, b in [("sft", "grpo_stage1"), ("sft", "grpo_stage2"), ("grpo_stage1", "grpo_stage2")]
                   if a in names and b in names and all((out / f"eval_{n}").exists() for n in (a, b))]
    if comparisons:
        lines += ["", "| SRCC change | task | pairs | change | 95 % paired bootstrap |", "|---|---|---|---|---|"]
        results["srcc_changes"] = {}
        for before, after in comparisons:
            changes = srcc_change(out, before, after)
            results["srcc_changes"][f"{before}->{after}"] = changes
            for c in changes:
                interval = "n/a" if c["ci95"] is None else f"{c['ci95'][0]:+.3f} .. {c['ci95'][1]:+.3f}"
                change = "n/a" if c["change"] is None else f"{c['change']:+.3f}"
                lines.append(f"| {before} -> {after} | {c['task']} | {c['n']} | {change} | {interval} |")
    (out / "learning_proof.md").write_text("\n".join(lines) + "\n")
    (out / "learning_proof.json").write_text(json.dumps(results, indent=2) + "\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/learning_proof")
    parser.add_argument("--world", action="store_true", help="use t2i_guidance.world.training.iqa_export data")
    parser.add_argument("--n", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--grpo1-steps", type=int, default=150)
    parser.add_argument("--grpo2-steps", type=int, default=60)
    parser.add_argument("--grpo1-lr", type=float, default=1e-4)
    parser.add_argument("--grpo2-lr", type=float, default=3e-5)
    parser.add_argument("--teacher-noise", type=float, default=0.5, help="rule-based teacher's score noise")
    parser.add_argument("--tolerance", type=float, default=0.5, help="rejection-sampling acceptance tolerance")
    parser.add_argument("--grpo-batch", type=int, default=16, help="completions per step (8 per prompt)")
    parser.add_argument("--reuse-sft", action="store_true", help="keep OUT/sft from an earlier run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--keep", choices=("all", "best"), default="all", help="trajectories kept per record")
    parser.add_argument("--sft-lr", type=float, default=1e-3)
    parser.add_argument("--sft-limit", type=int, default=None,
                        help="CoT rows SFT may use (CoT is the costly data; GRPO still sees every labelled record)")
    parser.add_argument("--eval-limit", type=int, default=None, help="test records scored per evaluation")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables of an earlier run in OUT")
    parser.add_argument("--data", help="a prepared data folder with train.jsonl / test.jsonl (e.g. "
                        "t2i_guidance.world.training.scorer_data) instead of exporting one")
    parser.add_argument("--grpo-rewards", default="format,accuracy",
                        help="GRPO rewards by name, comma-separated (world-consistency and world-claims need the world)")
    parser.add_argument("--sft-max-length", type=int, default=512, help="SFT sequence length in tokens")
    parser.add_argument("--element-checks", action="store_true",
                        help="alignment CoT checks every prompt element in words and ends on their count")
    parser.add_argument("--tally", action="store_true",
                        help="with --element-checks: the checks in the prompt's order, each with the running count")
    parser.add_argument("--paired", action="store_true",
                        help="with --tally: each asked object, then the claim that answers it, then its own checks")
    parser.add_argument("--skip-untrained", action="store_true",
                        help="do not evaluate the starting model (a base VLM that was never taught to score)")
    parser.add_argument("--compare", action="store_true",
                        help="with --paired: each check names the asked and the seen value before its verdict")
    parser.add_argument("--seen-first", action="store_true",
                        help="with --compare: each check names the seen value first, then the asked one")
    parser.add_argument("--look-first", action="store_true",
                        help="with --paired: every 'I see' claim before the prompt is restated")
    parser.add_argument("--misread-drills", type=float, default=0.0, metavar="SHARE",
                        help="with --look-first: add a misreading drill for this share of the alignment "
                        "pictures (description given, the checks taught to follow it; misread_drills.py)")
    parser.add_argument("--check-drills", type=float, default=0.0, metavar="SHARE",
                        help="with --look-first: add a check drill for this share of the alignment pictures (one "
                        "word check's seen value written wrong, its verdict and the counts taught to follow it)")
    parser.add_argument("--balanced-check-drills", type=float, default=0.0, metavar="SHARE",
                        help="like --check-drills, but half the drills teach 'met' (a truly unmet value written "
                        "equal) and half 'not met'; a share above 1 draws several drills per picture")
    parser.add_argument("--sft-only", action="store_true", help="stop after SFT and its evaluation (no GRPO)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where SFT, GRPO and the evaluations run (cuda: bf16 training)")
    parser.add_argument("--base", help="start from this model folder (e.g. the world base VLM) instead of "
                        "a randomly initialised tiny model")
    args = parser.parse_args(argv)
    if args.tally and not args.element_checks:
        parser.error("--tally orders the element checks: it needs --element-checks")
    if args.paired and not args.tally:
        parser.error("--paired groups the tallied checks by object: it needs --tally")
    if args.compare and not args.paired:
        parser.error("--compare rewrites the paired checks: it needs --paired")
    if args.seen_first and not args.compare:
        parser.error("--seen-first reorders the compared values: it needs --compare")
    if args.look_first and not args.paired:
        parser.error("--look-first reorders the paired form: it needs --paired")
    if (args.misread_drills or args.check_drills or args.balanced_check_drills) and not (args.look_first and args.compare):
        parser.error("drills give the description as context: they need --look-first and --compare")
    rewards = [name.strip() for name in args.grpo_rewards.split(",") if name.strip()]
    if any(name.startswith("world-") for name in rewards):
        from t2i_guidance.world.training.claim_rewards import register_claim_rewards

        register_claim_rewards()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.report_only:
        print(write_tables(out, json.loads((out / "learning_proof.json").read_text())))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(out, args.world, args.n, args.seed, args.data)
    results = {"settings": vars(args), "evaluations": {}, "timings": {}}

    from reward_model.tiny_vlm import save_tiny_scorer

    base = Path(args.base) if args.base else out / "base"
    if args.base and not (base / "config.json").exists():
        parser.error(f"--base {args.base} is not a saved model folder (no config.json)")
    if not (base / "config.json").exists():
        save_tiny_scorer(base, seed=args.seed, hidden_size=128, num_layers=3, vision_depth=3)
    previous = out / "learning_proof.json"
    reuse = args.reuse_sft and (out / "sft" / "config.json").exists() and previous.exists()
    if reuse:  # keep the untrained and SFT evaluations of the run that trained this SFT model
        earlier = json.loads(previous.read_text())
        results["evaluations"] = {k: v for k, v in earlier["evaluations"].items() if k in ("untrained", "sft")}
        results["cot_summary"], results["timings"] = earlier.get("cot_summary"), earlier.get("timings", {})
    elif not args.skip_untrained:
        evaluate("untrained", base, data, out, results, args)

    common = COMMON | ({"use_cpu": False, "bf16": True} if args.device == "cuda" else {})
    config = {
        "model": str(base), "data": data,
        "cot": {"teacher": "rule-based", "teacher_options": {"noise_std": args.teacher_noise, "seed": args.seed,
                                                         "element_checks": args.element_checks,
                                                         "tally": args.tally, "paired": args.paired,
                                                         "compare": args.compare, "seen_first": args.seen_first,
                                                         "look_first": args.look_first},
                "k": 8, "tolerance": args.tolerance, "keep": args.keep, "out": str(out / "cot" / "train.jsonl")},
        "sft": {"out": str(out / "sft"), "limit": args.sft_limit, "args": common | {
            "learning_rate": args.sft_lr, "per_device_train_batch_size": 16, "max_steps": args.sft_steps,
            "lr_scheduler_type": "cosine", "warmup_steps": 10, "logging_steps": 20,
            "max_length": args.sft_max_length}},
    }
    if not reuse:
        timed = time.time()
        results["cot_summary"] = run_cot(config)
        shares = {"description": args.misread_drills, "check": args.check_drills,
                  "balanced-check": args.balanced_check_drills}
        if any(shares.values()):
            config["sft"]["data"] = str(add_drills(Path(config["cot"]["out"]), config["cot"]["teacher_options"],
                                                   shares, args.seed, results))
        run_sft_stage(config)
        results["timings"]["cot+sft"] = round(time.time() - timed, 1)
        evaluate("sft", out / "sft", data, out, results, args)

    grpo_args = common | {"beta": 0.001, "num_generations": 8, "temperature": 1.0,
                          "per_device_train_batch_size": args.grpo_batch, "max_completion_length": args.max_new_tokens,
                          "loss_type": "grpo", "logging_steps": 5}
    stages = [
        ("grpo_stage1", {"model": str(out / "sft"), "out": str(out / "grpo_stage1"),
                         "args": grpo_args | {"learning_rate": args.grpo1_lr, "max_steps": args.grpo1_steps}}),
        ("grpo_stage2", {"model": str(out / "grpo_stage1"), "out": str(out / "grpo_stage2"),
                         "args": grpo_args | {"learning_rate": args.grpo2_lr, "max_steps": args.grpo2_steps,
                                              "std_filter": True, "top_entropy_quantile": 0.2, "delta": 3.0}}),
    ]
    for name, stage in [] if args.sft_only else stages:
        timed = time.time()
        run_grpo_stage(config, stage | {"rewards": rewards})
        results["timings"][name] = round(time.time() - timed, 1)
        history = json.loads(Path(stage["out"], "reward_history.json").read_text())
        results[f"{name}_reward_curve"] = [
            {"step": e["step"], "reward": e["reward"], "accuracy": e.get("rewards/accuracy/mean"),
             **{name: e.get(f"rewards/{name}/mean") for name in rewards if name.startswith("world-")},
             "frac_groups_dropped": e.get("std_filter/frac_groups_dropped")} for e in history]
        evaluate(name, Path(stage["out"]), data, out, results, args)

    print(write_tables(out, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Our GRPO step (STD filtering + per-response entropy gating) against the stock TRL GRPOTrainer.

    python -m benchmarks.perf_grpo [--steps 6] [--repeats 3] [--out benchmarks/results/perf_grpo.json]

Same tiny Qwen2.5-VL, same data, same batch, same seed, learning rate 0 (so both trainers generate the
same rollouts every step and only the loss path differs). Runs are interleaved (stock, ours, stock, ...)
so load from other processes hits both alike; the median step time over the non-warm-up steps is used.
Scenarios:
- "no group dropped": a random reward gives every group variance, so filtering removes nothing and the
  ratio ours / stock is the pure overhead of filtering + gating (target <= 1.10).
- "half dropped": the reward is constant for low-label prompts, so their groups are dropped and skip
  the forward and backward: ours should be faster, and the rows trained are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from reward_model.data.synthetic import write_dataset  # noqa: E402
from reward_model.grpo import (  # noqa: E402
    OmniGRPOConfig,
    OmniGRPOTrainer,
    build_grpo_dataset,
    per_response_entropy_mask,  # noqa: E402
)
from reward_model.tiny_vlm import save_tiny_scorer  # noqa: E402


def make_reward(kind: str):
    rng = random.Random(0)

    def noisy(completions, label, **_):
        return [rng.random() for _ in completions]

    def half(completions, label, **_):
        return [rng.random() if y >= 2.5 else 0.5 for y in label]

    func = {"none_dropped": noisy, "half_dropped": half}[kind]
    func.__name__ = "accuracy"
    return func


class Probe:
    """Counts the completion rows that reach the loss and times rollout generation + scoring."""

    def __init__(self) -> None:
        self.rows = 0
        self.generation_times: list[float] = []

    def wrap(self, trainer) -> None:
        compute_loss, generate = trainer._compute_loss, trainer._generate_and_score_completions

        def counted(model, inputs):
            self.rows += len(inputs["advantages"])
            return compute_loss(model, inputs)

        def timed(inputs):
            start = time.perf_counter()
            output = generate(inputs)
            self.generation_times.append(time.perf_counter() - start)
            return output

        trainer._compute_loss, trainer._generate_and_score_completions = counted, timed


def run(kind: str, ours: bool, model_dir: Path, data: Path, steps: int, out: Path) -> dict:
    common = dict(output_dir=str(out), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                  per_device_train_batch_size=16, num_generations=8, max_completion_length=32, max_steps=steps,
                  logging_steps=1, learning_rate=0.0, loss_type="grpo", seed=0, temperature=1.0)
    if ours:
        config = OmniGRPOConfig(**common, std_filter=True, top_entropy_quantile=0.2, entropy_gating="per_response")
        trainer_class = OmniGRPOTrainer
    else:
        config, trainer_class = GRPOConfig(**common), GRPOTrainer
    trainer = trainer_class(model=AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32),
                            processing_class=AutoProcessor.from_pretrained(model_dir),
                            reward_funcs=[make_reward(kind)], args=config,
                            train_dataset=build_grpo_dataset(data, split="train"))
    probe = Probe()
    probe.wrap(trainer)
    trainer.train()
    times = [e["step_time"] for e in trainer.state.log_history if "step_time" in e]
    dropped = [e.get("std_filter/frac_groups_dropped") for e in trainer.state.log_history if "step_time" in e]
    # One generation per step (steps_per_generation = 1): the rest of the step is the policy update.
    updates = [t - g for t, g in zip(times, probe.generation_times, strict=True)]
    return {"step_times": times, "update_times": updates, "rows_through_loss": probe.rows,
            "frac_groups_dropped": dropped}


def loss_path_benchmark(model_dir: Path, data: Path, out: Path, repeats: int) -> dict:
    """Forward + backward of one fixed batch (16 completions), stock loss vs ours, interleaved.

    Generation is done once and shared, so the timing holds only what filtering and gating change.
    """
    common = dict(output_dir=str(out), use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=16,
                  num_generations=8, max_completion_length=32, loss_type="grpo", seed=0)
    dataset = build_grpo_dataset(data, split="train")
    trainers = {}
    for name in ("stock", "ours"):
        config = (OmniGRPOConfig(**common, std_filter=True, top_entropy_quantile=0.2) if name == "ours"
                  else GRPOConfig(**common))
        trainer_class = OmniGRPOTrainer if name == "ours" else GRPOTrainer
        trainers[name] = trainer_class(model=AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32),
                                       processing_class=AutoProcessor.from_pretrained(model_dir),
                                       reward_funcs=[make_reward("none_dropped")], args=config, train_dataset=dataset)
        trainers[name].model.train()
        trainers[name].current_gradient_accumulation_steps = 1  # set by the training loop otherwise
    stock = trainers["stock"]
    batch = stock._generate_and_score_completions(next(iter(stock.get_train_dataloader())))
    keep = torch.ones(len(batch["advantages"]), dtype=torch.bool)

    def step(name: str) -> float:
        trainer = trainers[name]
        start = time.perf_counter()
        inputs = trainer._apply_std_filter(dict(batch, std_keep=keep)) if name == "ours" else batch
        trainer.compute_loss(trainer.model, inputs).backward()
        elapsed = time.perf_counter() - start
        trainer.model.zero_grad(set_to_none=True)
        return elapsed

    times = {"stock": [], "ours": []}
    for name in ("stock", "ours"):
        step(name)  # warm-up
    for _ in range(repeats):
        for name in ("stock", "ours"):
            times[name].append(step(name))
    stock_s, ours_s = statistics.median(times["stock"]), statistics.median(times["ours"])
    return {"stock_s": stock_s, "ours_s": ours_s, "ratio": ours_s / stock_s, "all_s": times}


def gating_microbenchmark(rows: int = 16, length: int = 4096, repeats: int = 20) -> dict:
    """Per-response top-k against TRL's batch quantile on paper-sized completions (16 x 4096 tokens)."""
    entropies, mask = torch.rand(rows, length) * 3, torch.ones(rows, length)
    timings = {}
    for name, fn in (("per_response", lambda: per_response_entropy_mask(entropies, mask, 0.2)),
                     ("batch_quantile", lambda: entropies >= torch.quantile(entropies[mask.bool()], 0.8))):
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        timings[name] = (time.perf_counter() - start) / repeats
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loss-path-only", action="store_true", help="skip the full-step runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/perf_grpo.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="perf_grpo_"))
    model_dir = save_tiny_scorer(work / "model", seed=0, hidden_size=64, num_layers=2, vision_depth=2)
    data = write_dataset(work / "data", n=64, seed=0)["train"]
    results: dict = {"settings": vars(args) | {"model": "tiny Qwen2.5-VL hidden 64, 2 layers",
                                                "batch": "16 completions (2 prompts x 8), 32 new tokens"}}
    for kind in () if args.loss_path_only else ("none_dropped", "half_dropped"):
        steps = {"stock": [], "ours": []}
        updates = {"stock": [], "ours": []}
        rows = {}
        dropped = []
        for _ in range(args.repeats):
            for name in ("stock", "ours"):
                outcome = run(kind, name == "ours", model_dir, data, args.steps, work / "out")
                steps[name] += outcome["step_times"][1:]  # the first step warms up
                updates[name] += outcome["update_times"][1:]
                rows[name] = outcome["rows_through_loss"]
                if name == "ours":
                    dropped += [d for d in outcome["frac_groups_dropped"] if d is not None]
        summary = {"rows_through_loss_last_run": rows, "mean_frac_groups_dropped": statistics.mean(dropped)}
        for label, values in (("step", steps), ("update", updates)):
            stock, ours = statistics.median(values["stock"]), statistics.median(values["ours"])
            summary |= {f"stock_{label}_s": stock, f"ours_{label}_s": ours, f"{label}_ratio": ours / stock,
                        f"all_{label}_s": values}
            print(f"{kind} {label}: stock {stock:.3f} s, ours {ours:.3f} s, ratio {ours / stock:.3f}", flush=True)
        print(f"{kind}: rows through loss stock {rows['stock']} ours {rows['ours']}", flush=True)
        results[kind] = summary
    results["loss_path_no_group_dropped"] = loss_path_benchmark(model_dir, data, work / "out", repeats=20)
    loss_path = results["loss_path_no_group_dropped"]
    print(f"loss path (forward + backward, same batch): stock {loss_path['stock_s']:.3f} s, "
          f"ours {loss_path['ours_s']:.3f} s, ratio {loss_path['ratio']:.3f}", flush=True)
    results["gating_16x4096_s"] = gating_microbenchmark()
    print("gating on 16 x 4096 tokens:", results["gating_16x4096_s"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

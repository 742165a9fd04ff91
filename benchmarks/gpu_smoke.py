"""GPU smoke run: the whole tool on one device in a few minutes, no hub needed.

    python -m benchmarks.gpu_smoke --out runs/gpu_smoke/smoke.json            # CUDA in bf16
    python -m benchmarks.gpu_smoke --device cpu --n 2 --steps 2 --max-new-tokens 24 --out smoke.json

The embedded world's generator and scorer: the memory plan and its phases with measured peaks (the
generator's weights must leave the GPU when it is moved off), best-of-N and particles through the run
builder, every scorer mode including the seeded sampler with batched and one-at-a-time answers compared,
two SFT and two GRPO steps on a handful of records; then the same for every hub model found in the local
cache (a line saying so otherwise). Prints a table, writes JSON, exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from reward_model.backends import EMBEDDED_DIR
from reward_model.interface import ImageItem
from reward_model.scorer import OmniQualityScorer
from t2i_guidance.generator import Generator
from t2i_guidance.memory_plan import ScorerBackend, plan_memory, visible_gpus
from t2i_guidance.model_sizes import model_size
from t2i_guidance.registries import load_preset

PROMPT = "a red circle above a small blue square on a white background"
DIMENSIONS = ["technical", "aesthetic", "alignment"]
# Scorer modes: name -> OmniQualityScorer options (the seeded sampler draws every request from its own seed).
SCORER_MODES = {
    "reason-greedy": {"mode": "reason", "decoding": "greedy"},
    "reason-seeded-sampler": {"mode": "reason", "decoding": "sampled", "samples": 2, "seed": 0},
    "prob-weighted": {"mode": "prob-weighted"},
    "answer-only": {"mode": "answer-only", "decoding": "greedy"},
}
HUB_GENERATORS = ("hf-internal-testing/tiny-stable-diffusion-pipe", "stabilityai/sdxl-turbo",
                  "Efficient-Large-Model/Sana_1600M_1024px_diffusers", "black-forest-labs/FLUX.1-schnell")
HUB_SCORERS = ("Qwen/Qwen2.5-VL-3B-Instruct", "yeeeeeyy/OmniQuality-R", "Qwen/Qwen2.5-VL-7B-Instruct")


class Smoke:
    """Runs named checks, each timed with its peak memory; a failing check is recorded, never fatal."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def check(self, name: str) -> Any:
        row: dict[str, Any] = {"check": name, "status": "ok", "detail": ""}
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            yield row
        except Exception as error:  # noqa: BLE001 - one broken part must not hide the others
            row["status"] = "FAIL"
            row["detail"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            row["traceback"] = traceback.format_exc()
        row["seconds"] = round(time.perf_counter() - start, 2)
        row["peak_gb"] = round(peak_bytes(self.device) / 1e9, 3)
        self.rows.append(row)

    def skip(self, name: str, why: str) -> None:
        self.rows.append({"check": name, "status": "skipped", "detail": why, "seconds": 0.0, "peak_gb": None})

    def failed(self) -> bool:
        return any(row["status"] == "FAIL" for row in self.rows)

    def table(self) -> str:
        lines = [f"{'check':<44} {'status':<8} {'s':>7} {'peak GB':>8}  detail"]
        for row in self.rows:
            peak = "" if row["peak_gb"] is None else f"{row['peak_gb']:.3f}"
            lines.append(f"{row['check']:<44} {row['status']:<8} {row['seconds']:>7.2f} {peak:>8}  {row['detail']}")
        return "\n".join(lines)


def peak_bytes(device: str) -> int:
    """The phase's peak on the GPU; on CPU the process's resident high-water mark (never resets)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def world_items(count: int) -> list[ImageItem]:
    from t2i_guidance.world.render import render_scene
    from t2i_guidance.world.scene import sample_scene

    return [ImageItem(f"scene{seed}", render_scene(sample_scene(seed))) for seed in range(count)]


def run_strategy(strategy: str, options: dict, generator: Any, scorer: Any, args: argparse.Namespace) -> Any:
    """Best-of-N and particles through the run builder, as the CLI runs them (the one place it is called)."""
    from t2i_guidance.search.run_builder import RunRequest, build_run, plan_run

    request = RunRequest(preset="embedded", strategy=strategy, strategy_options=options, steps=args.steps,
                         device=args.device, seed=0,
                         scorer_options={"device": args.device, "max_new_tokens": args.max_new_tokens})
    run = build_run(plan_run(request), generator=generator, scorer=scorer)
    return run(PROMPT, seed=0)


def answers(table: dict) -> dict:
    return {item: {d: (s.status.value, s.score, s.raw) for d, s in row.items()} for item, row in table.items()}


def check_scorer_modes(smoke: Smoke, model: str, items: list[ImageItem], args: argparse.Namespace,
                       label: str = "embedded") -> None:
    """Every mode, batched and one at a time: the same answers (exact in fp32; bf16 may differ)."""
    for mode, options in SCORER_MODES.items():
        with smoke.check(f"{label} scorer {mode}: batched == alone") as row:
            common = dict(model=model, device=args.device, max_new_tokens=args.max_new_tokens, **options)
            batched = answers(OmniQualityScorer(batch_size=len(items), **common).score(items, PROMPT, DIMENSIONS))
            alone = answers(OmniQualityScorer(batch_size=1, **common).score(items, PROMPT, DIMENSIONS))
            differing = sum(batched[i][d] != alone[i][d] for i in batched for d in batched[i])
            parsed = sum(s[0] == "ok" for r in batched.values() for s in r.values())
            row["detail"] = f"{parsed}/{len(items) * len(DIMENSIONS)} parsed, {differing} differ"
            if differing and args.device == "cpu":
                row["status"] = "FAIL"  # fp32 on one device must agree exactly
            elif differing:
                row["status"] = "differs"  # bf16 kernels depend on the batch shape: recorded, not fatal


def check_phases(smoke: Smoke, generator: Generator, scorer: OmniQualityScorer, items: list[ImageItem],
                 args: argparse.Namespace) -> dict:
    """The memory plan for the embedded pair, and its phases run for real: generate, move the generator
    off the GPU (its weights must leave), score, move it back."""
    preset = load_preset("embedded")
    sizes = (model_size(preset.generator, "generator"), model_size(str(EMBEDDED_DIR), "scorer"))
    gpus = visible_gpus() if args.device.startswith("cuda") else []
    plan = plan_memory(*sizes, gpus=gpus, backend=ScorerBackend("transformers"), loop="one-pass")
    with smoke.check("phase: generate") as row:
        candidates = generator.generate(PROMPT, list(range(args.n)), world_settings(args))
        row["detail"] = f"{len(candidates)} pictures"
    if args.device.startswith("cuda"):
        with smoke.check("phase: generator moved off the GPU") as row:
            before = torch.cuda.memory_allocated()
            generator.pipeline.to("cpu")
            torch.cuda.empty_cache()
            released = before - torch.cuda.memory_allocated()
            weights = sum(p.numel() * p.element_size() for p in generator.denoiser.parameters())
            row["detail"] = f"released {released / 1e6:.1f} MB (denoiser alone {weights / 1e6:.1f} MB)"
            if released < weights:
                row["status"] = "FAIL"
    with smoke.check("phase: score") as row:
        table = scorer.score([ImageItem(c.id, c.image) for c in candidates] + items[:1], PROMPT, DIMENSIONS)
        row["detail"] = f"{sum(len(r) for r in table.values())} scores"
    if args.device.startswith("cuda"):
        generator.pipeline.to(args.device)
    return {"describe": plan.describe(), "strategy": plan.strategy,
            "sizes_bytes": {s.name: s.weights_bytes for s in sizes}}


def world_settings(args: argparse.Namespace) -> Any:
    return load_preset("embedded").generation_settings(num_inference_steps=args.steps)


def check_training(smoke: Smoke, args: argparse.Namespace, work: Path) -> None:
    """Two SFT and two GRPO steps of a tiny Qwen2.5-VL on a handful of synthetic records."""
    from reward_model.train import prepare_inputs, run_cot, run_grpo_stage, run_sft_stage

    on_gpu = args.device.startswith("cuda")
    common = {"use_cpu": not on_gpu, "bf16": on_gpu, "report_to": "none", "save_strategy": "no",
              "gradient_checkpointing": False, "max_steps": 2, "logging_steps": 1, "seed": 0,
              "per_device_train_batch_size": 4}
    config = {
        "model": str(work / "base"),
        "init_tiny_model": {"seed": 0, "hidden_size": 32, "num_layers": 1, "vision_depth": 1, "num_heads": 4},
        "data": {"train": str(work / "data" / "train.jsonl"), "synthetic": {"n": args.records, "seed": 0}},
        "cot": {"teacher": "rule-based", "teacher_options": {"seed": 0}, "k": 4, "tolerance": 0.6,
                "out": str(work / "cot.jsonl")},
        "sft": {"out": str(work / "sft"), "args": {**common, "learning_rate": 1e-3, "max_length": 512}},
    }
    grpo = {"model": str(work / "sft"), "out": str(work / "grpo"), "rewards": ["format", "accuracy"],
            "args": {**common, "learning_rate": 1e-5, "num_generations": 4, "max_completion_length": 16,
                     "loss_type": "grpo", "std_filter": True, "top_entropy_quantile": 0.2}}
    with smoke.check("train: 2 SFT steps") as row:
        prepare_inputs(config)
        run_cot(config)
        run_sft_stage(config)
        row["detail"] = f"{args.records} records"
    with smoke.check("train: 2 GRPO steps") as row:
        run_grpo_stage(config, grpo)
        row["detail"] = "saved" if (work / "grpo" / "config.json").exists() else "not saved"


def cached(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - absent from the cache
        return None


def check_hub_models(smoke: Smoke, scorer: OmniQualityScorer, items: list[ImageItem],
                     args: argparse.Namespace) -> None:
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    for repo_id in HUB_GENERATORS:
        path = cached(repo_id)
        if path is None:
            smoke.skip(f"hub generator {repo_id}", "not in the local hub cache")
            continue
        with smoke.check(f"hub generator {repo_id}: best-of-2") as row:
            generator = Generator.from_pretrained(path, device=args.device, dtype=dtype)
            result = run_strategy("best-of-n", {"n": 2}, generator, scorer, args)
            row["detail"] = f"best {result.best.id if result.best else None}"
            del generator
    for repo_id in HUB_SCORERS:
        path = cached(repo_id)
        if path is None:
            smoke.skip(f"hub scorer {repo_id}", "not in the local hub cache")
            continue
        check_scorer_modes(smoke, path, items[:2], args, label=repo_id)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=4, help="candidates per search")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="scorer budget (default: the model's)")
    parser.add_argument("--records", type=int, default=8, help="synthetic records for the training steps")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-hub", action="store_true")
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not usable here; use --device cpu", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    smoke = Smoke(args.device)
    items = world_items(args.n)
    report: dict[str, Any] = {"device": args.device, "dtype": str(dtype).removeprefix("torch."),
                              "torch": torch.__version__, "settings": {k: str(v) for k, v in vars(args).items()}}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name()
    generator = scorer = None
    with smoke.check("load embedded generator and scorer"):
        generator = Generator.from_pretrained(load_preset("embedded").generator, device=args.device, dtype=dtype)
        scorer = OmniQualityScorer("embedded", device=args.device, decoding="greedy",
                                   max_new_tokens=args.max_new_tokens, seed=0)
    if generator is not None and scorer is not None:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("best-of-n", lambda: run_strategy("best-of-n", {"n": args.n}, generator, scorer, args)),
            ("particles", lambda: run_strategy("particles", {"n": args.n}, generator, scorer, args)),
        ]
        report["memory_plan"] = check_phases(smoke, generator, scorer, items, args)
        for name, step in steps:
            with smoke.check(f"{name} through the run builder") as row:
                result = step()
                row["detail"] = f"{len(result.candidates)} candidates, {result.costs.nfes:.0f} NFEs"
    check_scorer_modes(smoke, "embedded", items, args)
    if args.skip_training:
        smoke.skip("train", "--skip-training")
    else:
        with tempfile.TemporaryDirectory() as work:
            check_training(smoke, args, Path(work))
    if args.skip_hub:
        smoke.skip("hub models", "--skip-hub")
    elif scorer is not None:
        check_hub_models(smoke, scorer, items, args)
    report["checks"] = smoke.rows
    print(report.get("memory_plan", {}).get("describe", ""))
    print(smoke.table())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if smoke.failed() else 0


if __name__ == "__main__":
    sys.exit(main())

"""A CPU rehearsal of the cluster run: 4 processes (gloo), the 7B configs' structure, a kill -9 and a resume.

    python -m benchmarks.rehearsal_multiprocess [--out benchmarks/results/rehearsal_multiprocess.json]

For SFT and then GRPO stage 2, the settings are read from configs/7b_sft.yaml / 7b_grpo_stage2.yaml and
only the sizes are shrunk (tiny Qwen2.5-VL, CPU, fp32, no vLLM): the same processor pixel bounds, the
same filters (STD filter, per-response entropy gating, gated-token normalisation, delta, KL), and a
generation batch larger than the step batch (steps_per_generation > gradient_accumulation_steps).
Each stage runs three times under `accelerate launch --num_processes 4`:
  A. uninterrupted;
  B. the same, killed with SIGKILL (the launcher and every worker) once checkpoint K is complete;
  C. B relaunched with the same command: it resumes from its last complete checkpoint.
Checked: every record is seen exactly once per epoch across the ranks (dataset fetches for SFT, the
record ids of every generation batch for GRPO); B's data before the checkpoint and C's after it are
A's, in the same order, rank by rank; C's final weights equal A's. In GRPO the second generation batch
has no reward variance: both its optimizer steps must be skipped and leave the weights unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from benchmarks.common import REPO, command_line

CONFIGS = REPO / "reward_model" / "configs"
PROCESSES = 4

SFT_SIZES = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False, "model_init_kwargs": {"dtype": "float32"},
             "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "num_train_epochs": 2,
             "learning_rate": 1e-3, "save_strategy": "steps", "save_steps": 1, "logging_steps": 1, "seed": 0}
GRPO_SIZES = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False, "use_vllm": False,
              "model_init_kwargs": {"dtype": "float32"}, "num_generations": 4, "per_device_train_batch_size": 2,
              "gradient_accumulation_steps": 2, "steps_per_generation": 4, "max_completion_length": 8,
              "learning_rate": 1e-3, "save_steps": 2, "logging_steps": 1, "seed": 0,
              "std_filter_reward": "label_noise"}
SFT_RECORDS = 32  # a multiple of the global micro-batch (4 x 2): no rank wraps around at the epoch's end
GRPO_RECORDS = 24  # three generation batches of 8 prompts x 4 rollouts, 2 optimizer steps each
GRPO_FLAT_STEP = 2  # the second generation batch has no reward variance at all: its 2 steps are skipped
GRPO_KILL_STEP = 4
GRPO_STEPS = 6  # 24 prompts / (4 ranks x 2 completions x 2 micro-batches / 4 rollouts per prompt)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(root: Path) -> dict:
    """Tiny base model, synthetic records, CoT data by the rule-based teacher (one process, before launch)."""
    from reward_model.cot.rejection import RejectionConfig, build_cot_dataset
    from reward_model.cot.teachers import RuleBasedTeacher
    from reward_model.data.synthetic import write_dataset
    from reward_model.tiny_vlm import save_tiny_scorer

    model = save_tiny_scorer(root / "base", seed=0, hidden_size=32, num_layers=1, vision_depth=1, num_heads=4)
    data = write_dataset(root / "data", n=64, seed=0)
    cot = root / "cot.jsonl"
    summary = build_cot_dataset(data["train"], cot, RuleBasedTeacher(seed=0), RejectionConfig(k=4, tolerance=1.0),
                                progress=False)
    kept = sum(1 for line in cot.read_text().splitlines() if line.strip())
    if kept < SFT_RECORDS:
        raise RuntimeError(f"only {kept} CoT samples for {SFT_RECORDS} SFT records: {summary}")
    return {"model": str(model), "train": str(data["train"]), "cot": str(cot)}


def sft_config(inputs: dict, out: Path) -> dict:
    real = yaml.safe_load((CONFIGS / "7b_sft.yaml").read_text())
    section = real["sft"] | {"model": inputs["model"], "data": inputs["cot"], "out": str(out), "limit": SFT_RECORDS,
                             "args": real["sft"]["args"] | SFT_SIZES | {"report_to": "none"}}
    return {"threads": 1, "model": inputs["model"], "processor": real["processor"], "data": {"train": inputs["train"]},
            "sft": section}


def grpo_config(inputs: dict, out: Path) -> dict:
    real = yaml.safe_load((CONFIGS / "7b_grpo_stage2.yaml").read_text())
    (stage,) = real["grpo"]["stages"]
    stage = stage | {"model": inputs["model"], "out": str(out), "limit": GRPO_RECORDS, "episodes": 1,
                     "rewards": ["format", "label_noise", "seen"], "reward_options": {},
                     "args": stage["args"] | GRPO_SIZES}
    return {"threads": 1, "processor": real["processor"], "data": {"train": inputs["train"]},
            "grpo": {"stages": [stage]}}


def launch(stage: str, config: dict, folder: Path, log: Path) -> subprocess.Popen:
    config_path = folder.with_suffix(".yaml")
    config_path.write_text(yaml.safe_dump(config))
    polite = ["nice", "-n", str(10 - os.nice(0))] if os.nice(0) < 10 else []  # niceness 10, as every job here
    command = [*polite, sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", str(PROCESSES), "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               str(REPO / "benchmarks" / "rehearsal_entry.py"), stage, "--config", str(config_path)]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                        "REHEARSAL_LOG": str(log), "TOKENIZERS_PARALLELISM": "false",
                        "REHEARSAL_FLAT_STEP": str(GRPO_FLAT_STEP)}
    stderr = open(folder.with_suffix(".stderr"), "a", encoding="utf-8")  # noqa: SIM115 - kept for the child
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=stderr, stderr=stderr, start_new_session=True)


def finish(process: subprocess.Popen, folder: Path, timeout: float = 1800) -> float:
    start = time.time()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(process)
        raise
    if code != 0:
        tail = folder.with_suffix(".stderr").read_text()[-3000:]
        raise RuntimeError(f"{folder.name} exited with {code}:\n{tail}")
    return time.time() - start


def checkpoint_complete(folder: Path, step: int) -> bool:
    checkpoint = folder / f"checkpoint-{step}"
    rng = all((checkpoint / f"rng_state_{rank}.pth").exists() for rank in range(PROCESSES))
    return rng and (checkpoint / "trainer_state.json").exists()


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and every worker (torchrun puts each worker in its own process group)."""
    import psutil

    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for child in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(tree, timeout=30)


def kill_after_checkpoint(process: subprocess.Popen, folder: Path, step: int, timeout: float = 1800) -> dict:
    """SIGKILL the whole launch (launcher + 4 workers) as soon as checkpoint `step` is complete."""
    start = time.time()
    while not checkpoint_complete(folder, step):
        if process.poll() is not None:
            raise RuntimeError(f"{folder.name} ended (code {process.returncode}) before checkpoint-{step}")
        if time.time() - start > timeout:
            kill_tree(process)
            raise RuntimeError(f"no checkpoint-{step} after {timeout} s")
        time.sleep(0.1)
    kill_tree(process)
    from reward_model.sft import last_checkpoint

    finished = (folder / "model.safetensors").exists()
    later = sorted(p.name for p in folder.glob("checkpoint-*"))
    resume_from = int(Path(last_checkpoint(folder, "auto")).name.rsplit("-", 1)[1])  # normally `step`
    return {"killed_after_checkpoint": step, "checkpoints_on_disk": later, "had_finished": finished,
            "resumes_from_step": resume_from, "seconds_before_kill": round(time.time() - start, 1)}


def read_log(path: Path, kind: str) -> dict[int, list]:
    per_rank: dict[int, list] = defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["kind"] == kind:
                per_rank[entry["rank"]].append(entry)
    return per_rank


def max_weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    if first.keys() != second.keys():
        return float("inf")
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def moved_from_base(model: Path, base: Path) -> bool:
    return max_weight_difference(model, base) > 0


def check_sft(root: Path, resume_step: int) -> dict:
    """Fetch logs: every record once per epoch; B before the checkpoint and C after it replay A."""
    a, b, c = (read_log(root / f"sft_{name}.log", "fetch") for name in "ABC")
    fetches_per_epoch = SFT_RECORDS // (PROCESSES * SFT_SIZES["per_device_train_batch_size"])
    epochs = []
    for epoch in range(SFT_SIZES["num_train_epochs"]):
        window = slice(epoch * fetches_per_epoch, (epoch + 1) * fetches_per_epoch)
        seen = Counter(i for rank in range(PROCESSES) for f in a[rank][window] for i in f["indices"])
        epochs.append(sorted(seen) == list(range(SFT_RECORDS)) and set(seen.values()) == {1})
    done = resume_step * SFT_SIZES["gradient_accumulation_steps"]  # micro-batches before the checkpoint
    before = all([f["indices"] for f in b[r][:done]] == [f["indices"] for f in a[r][:done]] for r in range(PROCESSES))
    after = all([f["indices"] for f in c[r]] == [f["indices"] for f in a[r][done:]] for r in range(PROCESSES))
    return {"every_record_once_per_epoch": epochs, "killed_run_matches_before_checkpoint": before,
            "resumed_run_replays_the_rest_in_order": after,
            "epochs_in_different_orders": [f["indices"] for f in a[0][:fetches_per_epoch]]
            != [f["indices"] for f in a[0][fetches_per_epoch:]]}


def check_grpo(root: Path, resume_step: int) -> dict:
    a, b, c = (read_log(root / f"grpo_{name}.log", "generation") for name in "ABC")
    counts = Counter(i for rank in range(PROCESSES) for g in a[rank] for i in g["record_ids"])
    once = len(counts) == GRPO_RECORDS and set(counts.values()) == {GRPO_SIZES["num_generations"]}
    spread = [sorted({g["step"] for g in a[rank]}) for rank in range(PROCESSES)]

    def ids(entries, keep):
        return [(g["step"], g["record_ids"]) for g in entries if keep(g["step"])]

    before = all(ids(b[r], lambda s: s < resume_step) == ids(a[r], lambda s: s < resume_step) for r in range(PROCESSES))
    after = all(ids(c[r], lambda s: True) == ids(a[r], lambda s: s >= resume_step) for r in range(PROCESSES))
    history = json.loads((root / "grpo_A" / f"checkpoint-{GRPO_STEPS}" / "trainer_state.json").read_text())
    history = history["log_history"]
    flat = GRPO_FLAT_STEP
    unchanged = max_weight_difference(root / "grpo_A" / f"checkpoint-{flat}", root / "grpo_A" / f"checkpoint-{flat + 2}")
    return {"every_record_once_per_epoch": once, "generation_steps_per_rank": spread,
            "weights_change_over_the_filtered_generation": unchanged,
            "killed_run_matches_before_checkpoint": before, "resumed_run_replays_the_rest_in_order": after,
            "std_filter_frac_groups_dropped_per_generation": [e["std_filter/frac_groups_dropped"] for e in history
                                                               if "std_filter/frac_groups_dropped" in e],
            "optimizer_step_skipped_per_step": [e["std_filter/optimizer_step_skipped"] for e in history
                                                if "std_filter/optimizer_step_skipped" in e]}


def rehearse(root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    started = time.time()
    inputs = prepare(root)
    result: dict = {"processes": PROCESSES, "backend": "gloo (CPU)", "stages": {}}
    # SFT: 4 steps (2 per epoch), killed after step 3, mid-epoch. GRPO: 6 steps (2 per generation), after 4.
    plans = {"sft": (sft_config, 3), "grpo": (grpo_config, GRPO_KILL_STEP)}
    for stage, (make_config, kill_step) in plans.items():
        timings = {}
        a_dir, b_dir = root / f"{stage}_A", root / f"{stage}_B"
        timings["A_uninterrupted_s"] = finish(launch(stage, make_config(inputs, a_dir), a_dir, root / f"{stage}_A.log"), a_dir)
        killed = kill_after_checkpoint(launch(stage, make_config(inputs, b_dir), b_dir, root / f"{stage}_B.log"), b_dir,
                                       kill_step)
        timings["C_resumed_s"] = finish(launch(stage, make_config(inputs, b_dir), b_dir, root / f"{stage}_C.log"), b_dir)
        check = (check_sft if stage == "sft" else check_grpo)(root, killed["resumes_from_step"])
        difference = max_weight_difference(a_dir, b_dir)
        result["stages"][stage] = {
            "sizes": SFT_SIZES if stage == "sft" else GRPO_SIZES,
            "records": SFT_RECORDS if stage == "sft" else GRPO_RECORDS,
            "kill": killed, **check, "seconds": {k: round(v, 1) for k, v in timings.items()},
            "final_weights_max_abs_difference_resumed_vs_uninterrupted": difference,
            "weights_moved_from_base": moved_from_base(a_dir, Path(inputs["model"])),
        }
    result["total_seconds"] = round(time.time() - started, 1)
    return result


def passed(result: dict) -> bool:
    for stage in result["stages"].values():
        once = stage["every_record_once_per_epoch"]
        if not (all(once) if isinstance(once, list) else once):
            return False
        if not (stage["killed_run_matches_before_checkpoint"] and stage["resumed_run_replays_the_rest_in_order"]):
            return False
        if stage["kill"]["had_finished"] or not stage["weights_moved_from_base"]:
            return False
        if stage["final_weights_max_abs_difference_resumed_vs_uninterrupted"] > 1e-6:
            return False
        if stage.get("weights_change_over_the_filtered_generation", 0.0) != 0.0:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rehearsal_multiprocess.json"))
    parser.add_argument("--work", default=None, help="working folder (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    import tempfile

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rehearsal_"))
    result = rehearse(work)
    result["passed"] = passed(result)
    result["command"] = command_line("rehearsal_multiprocess", [])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

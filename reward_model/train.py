"""One command per training stage of OmniQuality-R, driven by a YAML config.

    python -m reward_model.train cot  --config reward_model/configs/tiny_cpu.yaml
    python -m reward_model.train sft  --config reward_model/configs/tiny_cpu.yaml
    python -m reward_model.train grpo --config reward_model/configs/tiny_cpu.yaml [--stage 2]
    python -m reward_model.train eval --config reward_model/configs/tiny_cpu.yaml
    python -m reward_model.train all  --config reward_model/configs/tiny_cpu.yaml

`--set a.b=value` overrides any config entry (values are read as YAML). Under
`accelerate launch` the same commands run on every process; files are prepared by the main process.
Sections `sft.args` and `grpo.stages[*].args` are passed to TRL's SFTConfig / our OmniGRPOConfig as is.

Optional keys (defaults in brackets): `sft.resume` / `grpo.stages[*].resume` ["auto": continue from the
last checkpoint in the output folder, if any; false: start fresh; or a checkpoint path],
`sft.difficulties` [all; e.g. [hard] keeps only records tagged hard by rejection sampling],
`sft.curriculum` ["none"; "easy_first"], `sft.processor` [the top-level `processor` section, e.g. a
tighter max_pixels for SFT], `eval.backend` ["auto"].
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

STAGES = ("cot", "sft", "grpo", "eval", "all")


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    for override in overrides or []:
        key, _, raw = override.partition("=")
        if not key or not _:
            raise ValueError(f"--set expects key=value, got {override!r}")
        target = config
        parts = key.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        last = parts[-1]
        value = yaml.safe_load(raw)
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return config


def _main_process_first():
    from accelerate import PartialState

    return PartialState().main_process_first()


def prepare_inputs(config: dict) -> None:
    """Build the tiny base model and the synthetic data when the config asks for them and they are missing."""
    with _main_process_first():
        tiny = config.get("init_tiny_model")
        model = config.get("model")
        if tiny is not None and model and not (Path(model) / "config.json").exists():
            from reward_model.tiny_vlm import save_tiny_scorer

            save_tiny_scorer(model, **tiny)
        synthetic = config.get("data", {}).get("synthetic")
        train = config.get("data", {}).get("train")
        if synthetic and train and not Path(train).exists():
            from reward_model.data.synthetic import write_dataset

            write_dataset(Path(train).parent, **synthetic)


def run_cot(config: dict) -> dict:
    import inspect

    from reward_model.cot.rejection import RejectionConfig, build_cot_dataset
    from reward_model.cot.teacher_registry import TEACHERS, build_teacher
    from reward_model.launch import launch_info, process_device

    section = config["cot"]
    name, options = section.get("teacher", "rule-based"), dict(section.get("teacher_options", {}))
    launch = launch_info()  # under torchrun / accelerate launch: one shard of the records per process
    if launch.distributed:
        if int(options.get("tensor_parallel_size", 1)) > 1:
            raise SystemExit("error: a teacher with tensor_parallel_size > 1 spans several GPUs from one process; "
                             "run the CoT build without torchrun / accelerate launch")
        if name in TEACHERS.names() and "device" in inspect.signature(TEACHERS.get(name)).parameters:
            options["device"] = process_device(options.get("device"), launch)  # each process on its own GPU
    teacher = build_teacher(name, **options)
    rejection = RejectionConfig(**{k: section[k] for k in ("k", "tolerance", "keep", "easy_threshold", "split")
                                   if k in section})
    summary = build_cot_dataset(config["data"]["train"], section["out"], teacher, rejection,
                                rank=launch.rank, world_size=launch.world_size,
                                merge_timeout=float(section.get("merge_timeout", 6 * 3600)))
    print(json.dumps(summary, indent=2))
    return summary


def run_sft_stage(config: dict) -> Path:
    from reward_model.sft import run_sft

    section = config["sft"]
    return run_sft(
        model_path=section.get("model", config.get("model")),
        cot_jsonl=section.get("data", config.get("cot", {}).get("out")),
        output_dir=section["out"],
        args=copy.deepcopy(section.get("args", {})),
        lora=section.get("lora"),
        limit=section.get("limit"),
        processor_kwargs=section.get("processor", config.get("processor")),
        difficulties=section.get("difficulties"),
        curriculum=section.get("curriculum", "none"),
        resume=section.get("resume", "auto"),
    )


def run_grpo_stage(config: dict, stage: dict) -> Path:
    from transformers import AutoProcessor

    from reward_model.grpo import OmniGRPOConfig, OmniGRPOTrainer, build_grpo_dataset, fit_vllm_length
    from reward_model.reward_registry import build_reward_funcs
    from reward_model.sft import last_checkpoint, lora_config, save_trained, without_unreachable_hub_kernels

    model_path = str(stage["model"])
    looks_local = model_path.startswith((".", "/")) or model_path.count("/") != 1  # hub ids are "org/name"
    if looks_local and not Path(model_path).exists():
        raise FileNotFoundError(f"model {model_path} not found (run the previous stage first)")
    processor = AutoProcessor.from_pretrained(model_path, **(config.get("processor") or {}))
    args = dict(stage.get("args", {}))
    if "episodes" in stage:
        args["num_train_epochs"] = stage["episodes"]
    dataset = build_grpo_dataset(stage.get("data", config["data"]["train"]), split="train", limit=stage.get("limit"))
    args = without_unreachable_hub_kernels(fit_vllm_length(args, processor, _distinct_prompts(dataset)))
    trainer = OmniGRPOTrainer(
        model=model_path,
        reward_funcs=build_reward_funcs(stage.get("rewards", ["format", "accuracy"]), stage.get("reward_options")),
        args=OmniGRPOConfig(output_dir=stage["out"], **args),
        train_dataset=dataset,
        processing_class=processor,
        peft_config=lora_config(stage.get("lora")),
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(stage["out"], stage.get("resume", "auto")))
    save_trained(trainer, processor, stage["out"])
    history = [entry for entry in trainer.state.log_history if "reward" in entry]
    if trainer.accelerator.is_main_process:
        Path(stage["out"], "reward_history.json").write_text(json.dumps(history, indent=1) + "\n")
    return Path(stage["out"])


def _distinct_prompts(dataset) -> list:
    seen = {}
    for prompt in dataset["prompt"]:
        seen.setdefault(json.dumps(prompt, sort_keys=True), prompt)
    return list(seen.values())


def run_grpo(config: dict, only: int | None = None) -> list[Path]:
    """The stages in order (stage 2 starts from stage 1's output, with its own lr, episodes and filters)."""
    stages = config["grpo"]["stages"]
    chosen = range(len(stages)) if only is None else [only - 1]
    return [run_grpo_stage(config, stages[i]) for i in chosen]


def run_eval(config: dict) -> list[dict]:
    from reward_model.evaluate import evaluate_model, format_table

    section = config["eval"]
    table = evaluate_model(section["model"], section.get("data", config["data"].get("test")), section["out"],
                           split=section.get("split", "test"), limit=section.get("limit"),
                           **section.get("generation", {}))
    print(format_table(table))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--config", required=True)
    parser.add_argument("--stage", dest="grpo_stage", type=int, help="run one GRPO stage (1-based)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if not Path(args.config).exists():
        print(f"error: config {args.config} not found", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, KeyError, IndexError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if "threads" in config:
        import torch

        torch.set_num_threads(int(config["threads"]))
    try:
        prepare_inputs(config)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stage in ("cot", "all"):
        run_cot(config)
    if args.stage in ("sft", "all"):
        run_sft_stage(config)
    if args.stage in ("grpo", "all"):
        run_grpo(config, args.grpo_stage)
    if args.stage in ("eval", "all"):
        run_eval(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

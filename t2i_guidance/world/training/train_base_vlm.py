"""Pretrain the world's base VLM: the embedded stand-in for Qwen2.5-VL-Instruct, a model that sees and reads.

    python -m t2i_guidance.world.training.train_base_vlm --out runs/world_vlm/base --pool runs/world_vlm/generated \
        --steps 6000

The released OmniQuality-R starts from a model that already sees; SFT and GRPO only teach it to judge. A
tiny Qwen2.5-VL trained from random weights on CoT alone did not learn to see (its vision tower carried
no more than a random one), so the world gets its own base model first, taught on purpose:

- next-token loss on three instructions: a dense description of the picture (every object with size,
  colour, shape and position, the background, stray blobs, the level of each kind of damage), a
  restatement of what a prompt asks for, and both together (the shape of an alignment rationale);
- perception heads on the vision tower's merged tokens, used in training only (`perception_heads.py`):
  per token (an 8 x 8 grid over the picture at 224 px) the colour, shape and size of the object whose
  centre falls there and the token's own row and column; per picture the background, blur / noise / compression level, object and stray counts.
  They make the tower carry the facts directly instead of waiting for the language loss to pull them
  through.

Pictures: 32 px renders (clean and damaged at every level, good and poor compositions, the IQA
exporter's scenes) and the world generator's own outputs (with and without added damage), all described
by the oracles' perception, which is what the scorer will be held to. Each sample is made from its index,
so a resumed run sees exactly the batches an uninterrupted one would; checkpoints are written atomically
every `--save-every` steps and Ctrl-C saves the last finished step. On a CUDA GPU it trains in bf16;
`--max-minutes` cuts a run into chunks (a checkpoint, then the same command continues).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reward_model.provenance import portable_path
from t2i_guidance.world.captions import caption, parse_prompt
from t2i_guidance.world.describe import picture_facts, restate
from t2i_guidance.world.oracles import COLOUR_NAMES, observe
from t2i_guidance.world.render import DEGRADATIONS, degrade
from t2i_guidance.world.scene import sample_split_scene
from t2i_guidance.world.training import iqa_export
from t2i_guidance.world.training.perception_heads import PerceptionHeads, TowerTap, perception_labels

# 224 px -> 16 x 16 patches of 14 -> an 8 x 8 grid of merged tokens, each 4 x 4 px of the 32 px picture.
# (At 112 px a token covered 8 x 8 px while a small object is about 7 px across: shape did not survive.)
SIDE = 224
PATCH = 28  # pixels per merged token: patch 14, merged 2 x 2
DESCRIBE = "Describe the picture."
RESTATE = 'What does the prompt "{}" ask for?'
BOTH = 'Prompt: "{}". What does it ask for, and what do you see?'
ASK = "Where is the {} object, and what is it?"
TASK_WEIGHTS = {"describe": 0.4, "restate": 0.2, "both": 0.2, "ask": 0.2}
BASE_SIZES = {"hidden_size": 128, "num_layers": 4, "vision_depth": 4, "num_heads": 4}


def grid_of(side: int) -> int:
    return side // PATCH


# ---------------------------------------------------------------- samples


class BaseSamples:
    """Sample i of the pretraining stream: (picture, instruction, answer, head targets), made from i alone."""

    def __init__(self, pool: tuple[np.ndarray, list[str]] | None, seed: int = 0, generated_share: float = 0.25,
                 grid: int = SIDE // PATCH):
        self.pool, self.seed, self.grid = pool, seed, grid
        self.generated_share = generated_share if pool is not None else 0.0

    def picture(self, rng: random.Random) -> tuple[np.ndarray, str]:
        if rng.random() < self.generated_share:
            images, prompts = self.pool
            index = rng.randrange(len(images))
            image = Image.fromarray(images[index])
            if rng.random() < 0.4:  # the generator's pictures with damage on top of their own
                image = degrade(image, rng.choice(DEGRADATIONS), rng.randint(1, 5), seed=rng.randrange(2**31))
            return np.asarray(image), prompts[index]
        task = rng.choice(iqa_export.TASKS)
        image, fields = iqa_export.MAKERS[task](rng, "train", 32)
        if task != "technical" and rng.random() < 0.3:
            image = degrade(image, rng.choice(DEGRADATIONS), rng.randint(1, 5), seed=rng.randrange(2**31))
        prompt = fields["prompt"] or caption(sample_split_scene(rng.randrange(2**31), held_out=False), rng)
        return np.asarray(image), prompt

    def __call__(self, index: int) -> dict:
        rng = random.Random(f"base:{self.seed}:{index}")
        pixels, prompt = self.picture(rng)
        task = rng.choices(list(TASK_WEIGHTS), weights=list(TASK_WEIGHTS.values()))[0]
        facts = picture_facts(pixels)
        asks = f"The prompt asks for {restate(parse_prompt(prompt))}."
        if task == "describe":
            instruction, answer = DESCRIBE, facts.description()
        elif task == "restate":
            instruction, answer = RESTATE.format(prompt), asks
        elif task == "ask":
            instruction, answer = ask_about_colour(pixels, prompt, rng)
        else:
            instruction, answer = BOTH.format(prompt), f"{asks} {facts.description()}"
        return {"image": Image.fromarray(pixels), "instruction": instruction, "answer": answer,
                "labels": perception_labels(pixels, self.grid)}


def ask_about_colour(pixels: np.ndarray, prompt: str, rng: random.Random) -> tuple[str, str]:
    """A grounded question that binds a colour to its shape, size and place: about a colour the picture
    shows, or (as often as the prompt allows) one the prompt names that the picture may lack."""
    seen = observe(pixels)
    present = [o.colour for o in seen.objects]
    asked = [o.colour for o in parse_prompt(prompt).objects if o.colour]
    options = asked if asked and rng.random() < 0.5 else present or list(COLOUR_NAMES)
    colour = rng.choice(options)
    answer = " ".join(f"I see {o.describe()}." for o in seen.objects if o.colour == colour)
    return ASK.format(colour), answer or f"I see no {colour} object."


class _Batches(torch.utils.data.Dataset):
    """Batch k of the stream, for a DataLoader's worker processes."""

    def __init__(self, samples: BaseSamples, processor, batch_size: int, first: int, last: int):
        self.samples, self.processor, self.batch_size, self.first, self.last = samples, processor, batch_size, first, last

    def __len__(self) -> int:
        return self.last - self.first

    def __getitem__(self, k: int) -> dict:
        step = self.first + k
        return collate([self.samples(step * self.batch_size + i) for i in range(self.batch_size)], self.processor)


def batch_stream(samples: BaseSamples, processor, batch_size: int, first: int, last: int, workers: int = 0):
    """The collated batches of steps first..last-1 in order, made in `workers` processes (0: here)."""
    if workers <= 0:
        return (collate([samples(step * batch_size + i) for i in range(batch_size)], processor)
                for step in range(first, last))
    loader = torch.utils.data.DataLoader(_Batches(samples, processor, batch_size, first, last), batch_size=None,
                                         num_workers=workers, prefetch_factor=4, persistent_workers=False)
    return iter(loader)


def collate(samples: list[dict], processor) -> dict:
    """Right-padded batch; loss only on the answer (and its end-of-turn token)."""
    tokenizer = processor.tokenizer
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": s["instruction"]}]}],
            add_generation_prompt=True, tokenize=False)
        for s in samples
    ]
    encoded = processor(text=prompts, images=[s["image"] for s in samples], return_tensors="pt", padding=True)
    rows, labels, kinds = [], [], []
    for i, sample in enumerate(samples):
        kept = encoded["attention_mask"][i].bool()
        prompt_ids = encoded["input_ids"][i][kept].tolist()
        answer_ids = tokenizer(sample["answer"] + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
        rows.append(prompt_ids + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
        kinds.append(encoded["mm_token_type_ids"][i][kept].tolist() + [0] * len(answer_ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    batch = {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([r + [-100] * (width - len(r)) for r in labels]),
        # Which tokens are the picture's: without them Qwen2.5-VL gives the image tokens 1-D text positions
        # in training, while `generate` (and TRL's SFT and GRPO) give them their 2-D places (M-RoPE).
        "mm_token_type_ids": torch.tensor([k + [0] * (width - len(k)) for k in kinds]),
        "pixel_values": encoded["pixel_values"],
        "image_grid_thw": encoded["image_grid_thw"],
    }
    batch["perception"] = {name: torch.as_tensor(np.stack([s["labels"][name] for s in samples]))
                           for name in samples[0]["labels"]}
    return batch


# ---------------------------------------------------------------- training


def _save_checkpoint(path: Path, state: dict) -> None:
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def export(model, processor, target: Path, provenance: dict, side: int = SIDE) -> Path:
    """Save the VLM (without the heads) + processor, pinned to side x side px, staged then renamed."""
    import shutil

    processor.image_processor.size = {"shortest_edge": side * side, "longest_edge": side * side}
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    (staging / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def train(out: str | Path, steps: int, pool: str | Path | None = None, batch_size: int = 32, lr: float = 1e-3,
          head_weight: float = 1.0, save_every: int = 250, seed: int = 0, log_every: int = 25,
          progress: bool = True, sizes: dict | None = None, max_minutes: float | None = None,
          device: str | None = None, side: int = SIDE, init_from: str | Path | None = None,
          grow_to: dict | None = None, workers: int = 0) -> Path | None:
    """Train (or continue) for `steps` steps in all; returns the exported model folder OUT/final, or None
    when `max_minutes` ran out first (the checkpoint is saved: the same call continues).

    `init_from` starts from a saved base VLM (its weights carry over to any `side`: the vision tower's
    positions are rotary, so a model taught on a coarse grid continues on a finer one). `grow_to`
    (`hidden_size`, `num_layers`) grows its language model first (`grow_base.py`). `workers` > 0 makes
    the batches in that many processes (a GPU waits on one core's rendering otherwise); every sample
    comes from its index alone, so the stream is the same with any number of workers."""
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    from reward_model.tiny_vlm import build_tiny_model, build_tiny_processor
    from t2i_guidance.world.training.generated_pool import load_pool

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pool_data = None
    if pool is not None:
        images, prompts, _ = load_pool(pool)
        pool_data = (images, prompts)
    grid = grid_of(side)
    samples = BaseSamples(pool_data, seed=seed, grid=grid)
    if init_from is not None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(init_from)
        processor.image_processor.min_pixels = processor.image_processor.max_pixels = side * side
        processor.image_processor.size = {"shortest_edge": side * side, "longest_edge": side * side}
        from reward_model.hub_kernels import without_unreachable_kernels

        model = AutoModelForImageTextToText.from_pretrained(  # shipped weights are stored in bf16: train in fp32
            init_from, **without_unreachable_kernels({"dtype": torch.float32}))
        if grow_to:
            from t2i_guidance.world.training.grow_base import grow

            model = grow(model, seed=seed, **grow_to)
        sizes = {"hidden_size": model.config.text_config.hidden_size,
                 "num_layers": model.config.text_config.num_hidden_layers,
                 "vision_depth": model.config.vision_config.depth,
                 "num_heads": model.config.text_config.num_attention_heads}
    else:
        processor = build_tiny_processor(min_pixels=side * side, max_pixels=side * side)
        sizes = sizes or BASE_SIZES
        model = build_tiny_model(processor, seed=seed, **sizes)
    # Full attention in every vision layer: at this size windows save nothing and cut objects in two.
    model.config.vision_config.window_size = side
    model.model.visual.window_size = side
    heads = PerceptionHeads(model.config.text_config.hidden_size, grid)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    heads.to(device)
    # bf16 autocast on a GPU; fp32 on the CPU, where autocast only costs time at this size.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    parameters = list(model.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(200, steps // 10), steps)
    checkpoint, log_path = out / "checkpoint.pt", out / "log.jsonl"
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
    tap = TowerTap(model)
    model.train()

    def save() -> None:
        _save_checkpoint(checkpoint, {"model": model.state_dict(), "heads": heads.state_dict(),
                                      "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                                      "step": step})

    batches = batch_stream(samples, processor, batch_size, step, steps, workers)
    bar = tqdm(total=steps, initial=step, desc="base VLM", unit="step", disable=not progress)
    started, window = time.time(), []
    try:
        while step < steps:
            if max_minutes is not None and time.time() - started > 60 * max_minutes:
                bar.close()
                save()
                print(f"stopped after {max_minutes} minutes at step {step}; run the same command to continue")
                return None
            batch = next(batches)
            targets = {name: value.to(device) for name, value in batch.pop("perception").items()}
            batch = {name: value.to(device) for name, value in batch.items()}
            with autocast:
                output = model(**batch)
                tokens = tap.tokens.view(batch_size, grid * grid, -1)
                head_loss, accuracy = heads.loss(tokens.float(), targets)
                loss = output.loss + head_weight * head_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            bar.update(1)
            window.append({"lm": output.loss.item(), "heads": head_loss.item(), **accuracy})
            if step % log_every == 0 or step == steps:
                mean = {k: round(float(np.nanmean([w[k] for w in window])), 4) for k in window[0]}
                with open(log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"step": step, "lr": schedule.get_last_lr()[0],
                                             "seconds": round(time.time() - started, 1), **mean}) + "\n")
                bar.set_postfix(lm=mean["lm"], shape=mean["shape"])
                window = []
            if step % save_every == 0:
                save()
    except KeyboardInterrupt:
        save()
        print(f"interrupted: saved step {step} to {checkpoint}; run the same command to continue")
        raise SystemExit(130) from None
    bar.close()
    save()
    model.eval()
    model.to("cpu")  # the shipped model is loaded on any machine
    provenance = {"what": "world base VLM (stand-in for Qwen2.5-VL-Instruct)", "steps": steps,
                  "batch_size": batch_size, "lr": lr, "head_weight": head_weight, "seed": seed,
                  "sizes": sizes, "pool": None if pool is None else portable_path(pool),
                  "pool_pictures": 0 if pool_data is None else len(pool_data[0]),
                  "init_from": None if init_from is None else portable_path(init_from), "grown_to": grow_to,
                  "command": "python -m t2i_guidance.world.training.train_base_vlm", "pixels": [side, side]}
    return export(model, processor, out / "final", provenance, side)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--pool", help="generator pool folder (t2i_guidance.world.training.generated_pool)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--head-weight", type=float, default=1.0)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, help="stop after this long (checkpoint saved; rerun to continue)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when present, in bf16)")
    parser.add_argument("--workers", type=int, default=0, help="processes that make the batches (0: the trainer's own)")
    parser.add_argument("--side", type=int, default=SIDE, help="picture side the model sees (a multiple of 28)")
    parser.add_argument("--init-from", help="a saved base VLM to continue from (e.g. the shipped one)")
    parser.add_argument("--hidden-size", type=int, help="language model width (from scratch, or grown from --init-from)")
    parser.add_argument("--num-layers", type=int, help="language model layers (from scratch, or grown from --init-from)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1")
    if args.side < 28 or args.side % 28:
        parser.error("--side must be a positive multiple of 28")
    torch.set_num_threads(args.threads)
    chosen = {k: v for k, v in (("hidden_size", args.hidden_size), ("num_layers", args.num_layers)) if v}
    sizes, grow_to = None, None
    if chosen and args.init_from:
        grow_to = chosen
    elif chosen:
        sizes = {**BASE_SIZES, **chosen}
    final = train(args.out, args.steps, args.pool, args.batch_size, args.lr, args.head_weight, args.save_every,
                  args.seed, max_minutes=args.max_minutes, device=args.device, side=args.side,
                  init_from=args.init_from, sizes=sizes, grow_to=grow_to, workers=args.workers)
    if final is not None:
        print(f"base VLM written to {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

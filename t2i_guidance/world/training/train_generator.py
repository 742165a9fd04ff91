"""Train the embedded world's text-to-image model on freshly rendered scenes; resumable.

    python -m t2i_guidance.world.training.train_generator --out t2i_guidance/world/weights/generator --steps 6000

Every step renders a new batch of training scenes (held-out scene contents are never drawn), so the model
cannot memorise a fixed set. Checkpoints are written atomically every few minutes to --work-dir and a
later run with the same --work-dir continues from the last one; the exported pipeline holds the EMA
weights, and the loss curve is drawn to --loss-plot. Ctrl-C and SIGTERM save the last finished step.
On a GPU (picked by --device auto), --max-minutes cuts the run into chunks that fit a per-command limit:

    python -m t2i_guidance.world.training.train_generator --init-from t2i_guidance/world/weights/generator \
        --steps 20000 --max-minutes 9      # run again until it prints "exported"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.training_utils import EMAModel, compute_snr
from tqdm.auto import tqdm

from t2i_guidance.generator import default_device
from t2i_guidance.world.captions import caption, count_caption
from t2i_guidance.world.pipeline import IMAGE_SIZE, WorldDiffusionPipeline, build_tokenizer
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import COUNTS, Scene, is_held_out, sample_count_scene, sample_split_scene

QUALITY_MIX = {"clean": 0.7, "blurry": 0.15, "noisy": 0.15}
CAPTION_DROPOUT = 0.1  # empty captions teach the unconditional branch that guidance needs
COUNT_SHARE = 0.1  # "three red squares": the extended grammar's counts, always with their colour


def count_example(seed: int, rng: random.Random) -> tuple[Scene, str]:
    """A training scene of 2..4 like objects and its caption. The colour is always named, so the world
    GenEval's colourless counting prompts ("two circles") stay unseen phrasings."""
    probe = seed
    while True:
        scene = sample_count_scene(probe, rng.choice(COUNTS))
        if not is_held_out(scene):
            break
        probe += 1_000_003
    obj = scene.objects[0]
    size = obj.size if rng.random() < 0.5 else None
    background = scene.background if rng.random() < 0.8 else None
    return scene, count_caption(obj.shape, len(scene.objects), obj.colour, size, background)


def training_batch(step: int, batch_size: int) -> tuple[torch.Tensor, list[str]]:
    """Images in [-1, 1] and captions for one step; a function of the step alone, so resuming is exact."""
    images, captions = [], []
    for i in range(batch_size):
        seed = step * batch_size + i
        rng = random.Random(seed)
        if rng.random() < COUNT_SHARE:
            scene, text = count_example(seed, rng)
        else:
            scene = sample_split_scene(seed, held_out=False, quality_mix=QUALITY_MIX)
            text = caption(scene, rng)
        text = "" if rng.random() < CAPTION_DROPOUT else text
        images.append(np.asarray(render_scene(scene, IMAGE_SIZE, seed), dtype=np.float32))
        captions.append(text)
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1.0
    return pixels, captions


def weighted_loss(
    prediction: torch.Tensor, target: torch.Tensor, scheduler, timesteps: torch.Tensor, snr_gamma: float | None
) -> torch.Tensor:
    """v-prediction MSE, Min-SNR-gamma weighted (Hang et al. 2023) when snr_gamma is set: low-noise steps
    stop dominating the gradient, so the layout-forming high-noise steps learn faster."""
    if not snr_gamma:
        return F.mse_loss(prediction, target)
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=snr_gamma) / (snr + 1)  # the v-prediction form of min(SNR, gamma)
    per_image = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
    return (per_image * weights).mean()


def grow_vocabulary(pipe: WorldDiffusionPipeline) -> None:
    """Give a pipeline saved before the count words the current tokenizer; old ids are unchanged and the
    new words' embeddings start untrained."""
    tokenizer = build_tokenizer()
    old = pipe.tokenizer.get_vocab()
    if len(old) == len(tokenizer):
        return
    if any(tokenizer.get_vocab()[word] != index for word, index in old.items()):
        raise ValueError("the saved tokenizer's ids differ from the grammar's; cannot grow it")
    pipe.text_encoder.resize_token_embeddings(len(tokenizer))
    pipe.tokenizer = tokenizer


def save_atomically(state: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def draw_loss_curve(losses: list[float], path: Path, first_step: int = 0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = 50
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) > window else losses
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(first_step, first_step + len(losses))
    ax.plot(steps, losses, alpha=0.25, lw=0.6, label="per step")
    ax.plot(steps[len(losses) - len(smooth):], smooth, lw=1.5, label=f"mean of {window}")
    ax.set(xlabel="step", ylabel="loss (v-prediction MSE, Min-SNR weighted)", yscale="log",
           title="World generator training loss (this run)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # a scheduler's or cluster's kill saves the checkpoint like Ctrl-C does


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device(default_device() if args.device == "auto" else args.device)
    previous_handler = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        _train(args, device)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)  # the caller's handling of SIGTERM is theirs again


def _train(args: argparse.Namespace, device: torch.device) -> None:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "checkpoint.pt"
    pipe = WorldDiffusionPipeline.from_config_untrained(seed=args.seed)
    pipe.to(device)
    unet, text_encoder, scheduler = pipe.unet, pipe.text_encoder, pipe.scheduler
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=1e-4)
    ema = EMAModel(parameters, decay=args.ema_decay)
    step, losses, start_step = 0, [], 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        step, losses, start_step = state["step"], state["losses"], state.get("start_step", 0)
        torch.set_rng_state(state["torch_rng"].cpu())
        print(f"resumed from step {step}")
    elif args.init_from:
        # Continue from exported weights (e.g. the shipped ones) when the checkpoint is gone; the
        # optimizer state starts fresh, the EMA starts at the exported (EMA) weights.
        shipped = WorldDiffusionPipeline.from_pretrained(args.init_from)
        unet.load_state_dict(shipped.unet.state_dict())
        grow_vocabulary(shipped)
        text_encoder.load_state_dict(shipped.text_encoder.state_dict())
        ema = EMAModel(parameters, decay=args.ema_decay)
        step = start_step = json.loads((Path(args.init_from) / "training.json").read_text())["steps"]
        print(f"initialised from {args.init_from} at step {step}")
    if args.export_only:
        if not checkpoint.exists():
            raise SystemExit(f"error: no checkpoint in {work} to export")
        args.steps = step

    def save() -> None:
        save_atomically(
            {"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
             "optimizer": optimizer.state_dict(), "ema": ema.state_dict(), "step": step, "losses": losses,
             "start_step": start_step,
             "torch_rng": torch.get_rng_state()},
            checkpoint,
        )

    unet.train()
    text_encoder.train()
    last_save = started = time.monotonic()
    bar = tqdm(total=args.steps, initial=step, desc="train generator", unit="step")
    try:
        while step < args.steps:
            pixels, captions = training_batch(step, args.batch_size)
            pixels = pixels.to(device)
            noise = torch.randn_like(pixels)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(pixels),), device=device)
            noisy = scheduler.add_noise(pixels, noise, timesteps)
            target = scheduler.get_velocity(pixels, noise, timesteps)
            embeddings = pipe.encode_prompt(captions)
            prediction = unet(noisy, timesteps, encoder_hidden_states=embeddings).sample
            loss = weighted_loss(prediction, target, scheduler, timesteps, args.snr_gamma)
            for group in optimizer.param_groups:  # linear warm-up (from where this run began), cosine decay to 10 %
                warm = min(1.0, (step + 1 - start_step) / args.warmup)
                progress = min(1.0, step / max(1, args.steps))
                group["lr"] = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            ema.step(parameters)
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if time.monotonic() - last_save > args.checkpoint_minutes * 60:
                save()
                last_save = time.monotonic()
            if args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60 and step < args.steps:
                bar.close()
                save()
                print(f"chunk of {args.max_minutes:g} min done: checkpoint at step {step} of {args.steps} saved in "
                      f"{work}; rerun the same command to continue")
                return
    except KeyboardInterrupt:  # Ctrl-C keeps everything up to the last finished step
        bar.close()
        save()
        raise SystemExit(f"interrupted: checkpoint at step {step} saved in {work}; rerun the same command to resume") from None
    bar.close()
    save()
    export(pipe, ema, parameters, Path(args.out), step, losses, args, start_step)
    if losses:
        draw_loss_curve(losses, Path(args.loss_plot or Path(args.work_dir) / "loss.png"), first_step=start_step)


def export(
    pipe, ema: EMAModel, parameters: list, out: Path, step: int, losses: list[float], args, start_step: int = 0
) -> None:
    """Save the pipeline with EMA weights (what sampling should use) as safetensors."""
    ema.copy_to(parameters)
    pipe.unet.eval()
    pipe.text_encoder.eval()
    pipe.save_pretrained(out, safe_serialization=True)
    summary = {"steps": step, "batch_size": args.batch_size, "lr": args.lr, "ema_decay": args.ema_decay,
               "final_loss_mean_200": float(np.mean(losses[-200:])) if losses else None, "quality_mix": QUALITY_MIX,
               "caption_dropout": CAPTION_DROPOUT, "count_share": COUNT_SHARE, "snr_gamma": args.snr_gamma,
               "this_run_started_at_step": start_step}
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    print(f"exported to {out} after {step} steps")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="t2i_guidance/world/weights/generator")
    parser.add_argument("--work-dir", default="runs/world_generator_training", help="checkpoints; resumes from here")
    parser.add_argument("--loss-plot", help="where to draw the loss curve (default: WORK_DIR/loss.png)")
    parser.add_argument("--steps", type=int, default=6000, help="total steps (a resumed run continues to this)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--ema-decay", type=float, default=0.995)
    parser.add_argument("--snr-gamma", type=float, default=5.0, help="Min-SNR loss weighting; 0 for plain MSE")
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:1, ...")
    parser.add_argument("--max-minutes", type=float, help="save and stop after this long (a resumable chunk)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-from", help="exported pipeline to continue from when --work-dir has no checkpoint")
    parser.add_argument("--export-only", action="store_true", help="export the last checkpoint without training")
    train(parser.parse_args(argv))


if __name__ == "__main__":
    main()

"""The world generator's own pictures, kept as a training pool for the world's VLMs.

    python -m t2i_guidance.world.training.generated_pool --out runs/world_vlm/generated --n 1536

The scorer must judge the generator's pictures, so its base model and its CoT data see them too. Prompts
come from training scene contents only (never a held-out one), one phrasing each; candidate k of prompt p
uses seed p * 1000 + k, so any picture can be remade alone. `--held-out` draws from held-out scene contents
instead: a test pool for judging a scorer on the generator's pictures of prompts no training record used. Pictures are written in chunks (one .npz of
uint8 arrays + prompts + seeds each, renamed into place when complete): an interrupted run resumes at
the first missing chunk and loses at most the chunk in flight.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from t2i_guidance.world.captions import caption
from t2i_guidance.world.scene import sample_split_scene

DEFAULT_GENERATOR = Path(__file__).resolve().parents[1] / "weights" / "generator"
CHUNK = 64
PER_PROMPT = 2  # two candidates per prompt: the pool shows the generator's variety for one prompt too


def pool_prompts(n: int, seed: int = 0, held_out: bool = False) -> list[tuple[str, int]]:
    """(prompt, seed) for picture 0..n-1: a scene of the chosen split, phrased by the grammar."""
    items = []
    for index in range(n):
        prompt_index, candidate = divmod(index, PER_PROMPT)
        rng = random.Random(f"pool:{seed}:{prompt_index}")
        scene = sample_split_scene(rng.randrange(2**31), held_out=held_out)
        items.append((caption(scene, rng), prompt_index * 1000 + candidate))
    return items


def build_pool(out: str | Path, n: int, seed: int = 0, generator: str | Path = DEFAULT_GENERATOR,
               steps: int = 20, guidance_scale: float | None = None, progress: bool = True, held_out: bool = False) -> Path:
    """Write chunk files out/chunk_XXXX.npz until n pictures exist; returns out. The guidance scale
    defaults to the pipeline's own, so the scorer sees the pictures users get."""
    import torch
    from tqdm.auto import tqdm

    from t2i_guidance.world.pipeline import DEFAULT_GUIDANCE, WorldDiffusionPipeline

    guidance_scale = DEFAULT_GUIDANCE if guidance_scale is None else guidance_scale
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = pool_prompts(n, seed, held_out)
    chunks = [items[i:i + CHUNK] for i in range(0, n, CHUNK)]
    todo = [i for i in range(len(chunks)) if not (out / f"chunk_{i:04d}.npz").exists()]
    if not todo:
        return out
    pipe = WorldDiffusionPipeline.from_pretrained(str(generator))
    pipe.set_progress_bar_config(disable=True)
    for index in tqdm(todo, desc="generator pool", unit="chunk", disable=not progress):
        prompts = [p for p, _ in chunks[index]]
        seeds = [s for _, s in chunks[index]]
        result = pipe(prompts, generator=[torch.Generator().manual_seed(s) for s in seeds],
                      num_inference_steps=steps, guidance_scale=guidance_scale)
        pixels = np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in result.images])
        partial = out / f"chunk_{index:04d}.partial.npz"
        np.savez_compressed(partial, images=pixels, prompts=np.array(prompts), seeds=np.array(seeds))
        partial.rename(out / f"chunk_{index:04d}.npz")
    return out


def load_pool(folder: str | Path) -> tuple[np.ndarray, list[str], list[int]]:
    """(images uint8 (N, H, W, 3), prompts, seeds) of every complete chunk in `folder`, in order."""
    images, prompts, seeds = [], [], []
    for path in sorted(Path(folder).glob("chunk_[0-9][0-9][0-9][0-9].npz")):
        with np.load(path) as chunk:
            images.append(chunk["images"])
            prompts.extend(str(p) for p in chunk["prompts"])
            seeds.extend(int(s) for s in chunk["seeds"])
    if not images:
        raise FileNotFoundError(f"no generator pool chunks in {folder}")
    return np.concatenate(images), prompts, seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=1536, help="pictures in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", default=str(DEFAULT_GENERATOR))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--held-out", action="store_true", help="prompts of held-out scene contents (a test pool)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    build_pool(args.out, args.n, args.seed, args.generator, held_out=args.held_out)
    images, _, _ = load_pool(args.out)
    print(f"{len(images)} generator pictures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

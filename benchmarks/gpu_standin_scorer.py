"""The 7B judge's shape on a GPU without its weights: speed and memory of scoring, beside the memory plan.

    python -m benchmarks.gpu_standin_scorer --out runs/standin.json               # on a CUDA GPU
    python -m benchmarks.gpu_standin_scorer --device cpu --scale tiny --out x.json   # the same path, tiny shapes

Builds Qwen2.5-VL-7B's architecture (the released OmniQuality-R's: 28 layers of width 3584, a 32-layer
vision tower of width 1280, a 152,064-token vocabulary) with random bf16 weights directly on the device,
and scores --pictures pictures on three dimensions through the project's transformers backend at the
release's pixel bounds. Random weights never stop early, so every answer runs to --max-new-tokens: the
reading is time per generated token and peak memory, not judgement. Where the hub is out of reach this
is as close to the 7B as a machine gets. Prints and writes (JSON) the seconds, pictures and tokens per
second, and the peak GPU memory beside the memory plan's estimate for the 7B.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

# Qwen2.5-VL-7B-Instruct's shapes (its published config.json).
TEXT_7B = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "vocab_size": 152064,
           "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}}
VISION_7B = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": 3584,
             "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]}


def standin_config(source: str, scale: str):
    """The embedded scorer's config (its tokenizer's special-token ids) with the 7B's shapes, or tiny ones."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    if scale == "7b":
        text = {k: v for k, v in config.text_config.to_dict().items() if k not in ("layer_types", "head_dim")}
        config.text_config = type(config.text_config)(**{**text, **TEXT_7B})  # per-layer fields rebuilt
        vision = config.vision_config.to_dict()
        config.vision_config = type(config.vision_config)(**{**vision, **VISION_7B})
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", default="7b", choices=("7b", "tiny"), help="tiny: the embedded scorer's own shapes")
    parser.add_argument("--pictures", type=int, default=8)
    parser.add_argument("--side", type=int, default=512, help="picture side in pixels")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if min(args.pictures, args.side, args.max_new_tokens, args.repeats) < 1:
        parser.error("--pictures, --side, --max-new-tokens and --repeats must be at least 1")

    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from reward_model.backends import Decoding, Request, resolve_model
    from reward_model.backends.transformers_backend import TransformersBackend
    from reward_model.interface import DIMENSIONS
    from t2i_guidance.model_sizes import GB, model_size

    embedded, release = resolve_model("embedded"), resolve_model("omniquality-r")
    torch.manual_seed(0)
    config = standin_config(embedded.source, args.scale)
    with torch.device(args.device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16).eval()
    parameters = sum(p.numel() for p in model.parameters())
    # The backend's processor, stop tokens and batching, with the stand-in in place of the tiny model.
    backend = TransformersBackend(embedded, device=args.device, precision="bf16")
    backend.model = model
    backend.processor.image_processor.size = {"shortest_edge": release.min_pixels, "longest_edge": release.max_pixels}
    generator = torch.Generator().manual_seed(0)
    pictures = [Image.fromarray(torch.randint(0, 256, (args.side, args.side, 3), generator=generator,
                                              dtype=torch.uint8).numpy()) for _ in range(args.pictures)]
    requests = [Request(picture, dimension, "a red circle above a small blue square")
                for picture in pictures for dimension in DIMENSIONS]
    greedy = Decoding(do_sample=False, max_new_tokens=args.max_new_tokens)
    backend.generate(requests[:3], greedy)  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds, tokens = [], 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        results = backend.generate(requests, greedy)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        tokens = sum(r.completions[0].generated_tokens for r in results if r.completions)
    best = min(seconds)
    planned = model_size(release.source, "scorer")
    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "scale": args.scale, "parameters": parameters, "pictures": args.pictures, "side": args.side,
        "requests": len(requests), "max_new_tokens": args.max_new_tokens, "seconds": seconds,
        "pictures_per_second": args.pictures / best, "generated_tokens": tokens, "tokens_per_second": tokens / best,
        "peak_gb": torch.cuda.max_memory_allocated() / GB if args.device.startswith("cuda") else None,
        "planned_weights_gb": planned.weights_bytes / GB if args.scale == "7b" else None,
        "planned_peak_gb": planned.peak_bytes / GB if args.scale == "7b" else None,
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

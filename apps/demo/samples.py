"""What the embedded model draws, for the first screen: one picture per example prompt, drawn once by
`python -m apps.demo.samples` (the embedded preset, seed 0) and shipped beside this module, so the page
shows them without loading a model."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

SAMPLE_DIR = Path(__file__).resolve().parent / "samples"
SAMPLE_SEED = 0


def sample_file(prompt: str) -> Path:
    return SAMPLE_DIR / (re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-") + ".png")


def samples(prompts: list[str]) -> list[tuple[Image.Image, str]]:
    """(picture, its prompt) for each prompt with a shipped sample."""
    found = []
    for prompt in prompts:
        path = sample_file(prompt)
        if path.exists():
            with Image.open(path) as image:
                found.append((image.convert("RGB"), prompt))
    return found


def draw_samples(prompts: list[str], preset: str = "embedded") -> list[Path]:
    """Draw each prompt once with the preset's generator at SAMPLE_SEED and save it as a sample."""
    from t2i_guidance.registries import load_preset
    from t2i_guidance.search.run_builder import RunRequest, load_generator, plan_run

    plan = plan_run(RunRequest(preset=preset))
    generator = load_generator(plan)
    settings = load_preset(preset).generation_settings()
    SAMPLE_DIR.mkdir(exist_ok=True)
    paths = []
    for prompt in prompts:
        (candidate,) = generator.generate(prompt, [SAMPLE_SEED], settings)
        candidate.image.save(sample_file(prompt), format="PNG", optimize=True)
        paths.append(sample_file(prompt))
    return paths


if __name__ == "__main__":
    from apps.demo.examples import WORLD_EXAMPLES

    for path in draw_samples(WORLD_EXAMPLES):
        print(path)

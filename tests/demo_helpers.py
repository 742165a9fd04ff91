"""Shared set-up of the demo's handler tests: a tiny preset, the test scorers, the Generate button.
(Plain functions: each test module wraps them in its own fixtures.)"""

import json

from apps import demo
from reward_model.interface import register_scorer
from tests.pixel_scorers import FailingOnSomeScorer, ShuffledBrightnessScorer

INTERNAL_WORDS = ("parse_failure", "aggregate", "c000", "c001", "status", "best of n", "trade-off front",
                  "Blur level", "denoising")


def tiny_generator_dir(tmp_path_factory):
    from tests.tiny_pipelines import save_tiny_pipeline

    return save_tiny_pipeline("sd15", tmp_path_factory.mktemp("preset") / "gen")


def preset(tmp_path, generator_dir, scorer: str, weights: str = "technical=1,aesthetic=1,alignment=0") -> str:
    path = tmp_path / f"{scorer}.json"
    path.write_text(json.dumps({
        "description": "test", "generator": str(generator_dir), "scorer": scorer,
        "num_inference_steps": 2, "guidance_scale": 2.0, "weights": weights,
    }))
    return str(path)


def failing_scorer():
    return FailingOnSomeScorer(parse_fail={"c001"}, error={"c002"}, missing=set())


def register_test_scorers() -> None:
    """The demo tests' scorers (registering the same factories again is allowed)."""
    register_scorer("test-brightness", ShuffledBrightnessScorer)
    register_scorer("test-demo-failing", failing_scorer)


def final(updates):
    *_, last = list(updates)
    return last


def run(prompt, n, seed, technical, aesthetic, alignment, preset_name, history, strategy="best-of-n", budget=0,
        **settings):
    """The Generate button as the page calls it; `n` goes to the strategies that take it."""
    return run_all(prompt, n, seed, technical, aesthetic, alignment, preset_name, history, strategy, budget,
                   **settings)[:8]


def run_all(prompt, n, seed, technical, aesthetic, alignment, preset_name, history, strategy="best-of-n", budget=0,
            **settings):
    """Every output of the Generate button, the pick controls' included."""
    settings = {"n": n, **settings}
    return final(demo.generate(prompt, strategy, settings, seed, technical, aesthetic, alignment, budget,
                               preset_name, history))

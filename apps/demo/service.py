"""The run service: the page's settings checked and turned into a run through the run builder, with
the preset's models loaded once per process and one run inside them at a time."""

from __future__ import annotations

import contextvars
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from apps.demo.downloads import write_downloads
from apps.demo.limits import DEMO_MAX_N
from apps.demo.progress import WatchedGenerator, stage_text
from apps.demo.rendering import BEST_DISPLAY_PX, upscale
from apps.demo.strategies import pictures_at_most, strategy_settings
from reward_model.interface import DimensionScore, ImageItem
from t2i_guidance.input_checks import UsageError, check_n, check_prompt, check_seed
from t2i_guidance.registries import Preset
from t2i_guidance.result import ScoredCandidate, SearchResult, png_bytes, write_run
from t2i_guidance.search import available_strategies

RUNS_DIR = Path(tempfile.gettempdir()) / "t2i-guidance-demo"
CASCADE_QUICK_LOOK = ["aesthetic"]
_RUN_LOCK = threading.Lock()  # one run inside the models at a time, even after a cancelled one


# ---------------------------------------------------------------- models, loaded once per process
@lru_cache(maxsize=2)
def build_search_parts(preset_name: str) -> tuple[Preset, Any, Any]:
    """Load a preset's generator and scorer once per process (through the run builder); later requests
    reuse them. The one place the demo builds models."""
    from t2i_guidance.search.run_builder import RunRequest, load_models, plan_run

    plan = plan_run(RunRequest(preset=preset_name))
    return plan.preset, *load_models(plan)  # a hub failure is one line naming the licence page or the id


def scorer_for(plan: Any, scorer: Any) -> Any:
    """The loaded scorer as the run's plan wants it: a sampling scorer draws from the RUN's seed (as the
    CLI's does), so the same inputs and seed give the same ranking; the model is not loaded again."""
    seed = plan.scorer_kwargs.get("seed")
    if seed is None:
        return scorer
    if hasattr(scorer, "with_seed"):
        return scorer.with_seed(seed)
    from t2i_guidance.search.run_builder import load_scorer

    return load_scorer(plan)  # a sampling scorer that cannot be re-seeded: built for this seed


# ---------------------------------------------------------------- a run, without any UI
@dataclass
class DemoRun:
    result: SearchResult
    folder: Path  # best.png, candidates/*.png (lossless, with metadata), result.json, index.html
    best_display: Path | None  # the winner scaled up with nearest-neighbour, for the big view
    downloads: dict[str, Path]  # candidate id -> a PNG of useful size, named after the prompt and seed

    def candidate_path(self, scored: ScoredCandidate) -> Path:
        return self.folder / "candidates" / f"{scored.id}.png"


@dataclass
class DemoRequest:
    """What the page asks for, checked: the run builder's request plus the demo's own limits."""

    prompt: str
    strategy: str
    options: dict[str, int]
    seed: int
    weights: dict[str, float]
    preset: str
    budget_nfes: int | None = None

    def run_request(self) -> Any:
        from t2i_guidance.ledger import Budget
        from t2i_guidance.search.run_builder import RunRequest

        options: dict[str, Any] = dict(self.options)
        extra: dict[str, Any] = {}
        if self.strategy == "cascade":  # judge quickly with the SAME model on fewer dimensions: nothing reloads
            options["cheap_dimensions"] = [d for d in CASCADE_QUICK_LOOK if self.weights.get(d)] or None
            extra["cheap_scorer_options"] = {}
        return RunRequest(
            preset=self.preset, strategy=self.strategy, strategy_options=options, weights=self.weights,
            score_chunk_size=4,  # small chunks: the progress text moves while judging
            batch_size=1,  # one picture per drawing call: the progress text moves per picture
            budget=Budget(nfes=self.budget_nfes) if self.budget_nfes else None,
            prompt=self.prompt, seed=self.seed, **extra,
        )


def check_request(prompt: str, strategy: str, options: dict[str, float], seed: float, weights: dict[str, float],
                  preset_name: str, budget: float | None = None) -> DemoRequest:
    """The demo's input checks (the CLI's rules, through the run builder's planner): raises UsageError
    with a sentence for the user; loads nothing."""
    from t2i_guidance.search.run_builder import RunError, plan_run

    prompt = check_prompt(prompt)
    if strategy not in available_strategies():
        raise UsageError(f"unknown way to search {strategy!r}")
    options = {key: int(options[key]) for key in strategy_settings(strategy) if options.get(key) is not None}
    if "n" in options:
        check_n(options["n"])
    pictures = pictures_at_most(strategy, options)
    if pictures > DEMO_MAX_N:
        raise UsageError(f"the demo makes at most {DEMO_MAX_N} candidates in one run; these settings allow "
                         f"{pictures}")
    seed = check_seed(int(seed), pictures)
    if not any(weights.values()):
        raise UsageError("set at least one weight above 0")
    budget_nfes = int(budget) if budget else None
    if budget_nfes is not None and budget_nfes < 0:
        raise UsageError("the compute limit must be 0 (none) or more")
    request = DemoRequest(prompt, strategy, options, seed, weights, preset_name, budget_nfes)
    try:
        plan_run(request.run_request())  # the prompt is drawable, the numbers are in range, the names exist
    except RunError as exc:
        raise UsageError(str(exc)) from None
    return request


def run_search(request: DemoRequest, progress: bool = False) -> DemoRun:
    """One run through the run builder with the preset's loaded models; every picture written as PNG
    with its metadata."""
    from t2i_guidance.search.run_builder import build_run, plan_run

    _, generator, scorer = build_search_parts(request.preset)
    plan = plan_run(request.run_request())
    run = build_run(plan, generator=WatchedGenerator(generator), scorer=scorer_for(plan, scorer))
    result = run(request.prompt, seed=request.seed, progress=progress)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=runs_dir()))
    write_run(result, folder)
    best_display = None
    if result.best is not None:
        best_display = write_large(result.best.candidate.image, folder / "best-large.png")
    return DemoRun(result, folder, best_display, write_downloads(result, folder / "downloads"))


class BackgroundRun:
    """One run in a worker thread, so the page's handler can show its status while it runs (and Gradio's
    Stop button can cancel the handler between updates; the run itself finishes and is thrown away)."""

    def __init__(self, request: DemoRequest) -> None:
        self.request = request
        self._outcome: dict[str, Any] = {}
        context = contextvars.copy_context()  # Gradio's progress tracking follows this context
        self._worker = threading.Thread(target=self._work, args=(context,), daemon=True)
        self._worker.start()
        self._started = time.monotonic()

    def _work(self, context: contextvars.Context) -> None:
        with _RUN_LOCK:
            try:
                self._outcome["run"] = context.run(run_search, self.request, True)
            except Exception as exc:  # noqa: BLE001 - handed to the page, which says it as a sentence
                self._outcome["error"] = exc

    def running_after(self, seconds: float) -> bool:
        """Wait up to `seconds`; whether the run is still going."""
        self._worker.join(timeout=seconds)
        return self._worker.is_alive()

    def status(self, pictures: int) -> str:
        return f"{stage_text(self.request.prompt, pictures)} ({time.monotonic() - self._started:.0f} s)"

    def outcome(self) -> DemoRun:
        """The finished run; raises what the run raised."""
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["run"]


# ---------------------------------------------------------------- one uploaded picture
def judge_picture(image: Image.Image, prompt: str | None, dimensions: list[str],
                  preset_name: str) -> dict[str, DimensionScore]:
    """The preset's scorer's judgement of one picture on these dimensions."""
    _, _, scorer = build_search_parts(preset_name)
    return scorer.score([ImageItem("upload", image)], prompt, dimensions)["upload"]


def save_preview(image: Image.Image) -> Path:
    """The picture scaled up crisp for the page, in a fresh folder the server may serve."""
    return write_large(image, Path(tempfile.mkdtemp(prefix="upload-", dir=runs_dir())) / "preview.png")


def write_large(image: Image.Image, path: Path) -> Path:
    """The picture scaled up with nearest-neighbour for the big view, as PNG."""
    path.write_bytes(png_bytes(upscale(image, BEST_DISPLAY_PX)))
    return path


def runs_dir() -> Path:
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    return RUNS_DIR

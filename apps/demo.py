"""The Gradio demo for artists: type a prompt, get N candidates ranked by the reward model, see why.

    python -m apps.demo                 # http://127.0.0.1:7860, the embedded preset
    python -m apps.demo --preset sana --host 0.0.0.0

It listens on 127.0.0.1 unless told otherwise, queues at most a few jobs, caps uploads, and never
opens a path typed by a user: images reach it only as uploads. Pictures are shown large with
nearest-neighbour scaling (the embedded model draws 32 px), served and downloaded as lossless PNG
carrying the prompt, seed, settings and scores in their metadata.
"""

from __future__ import annotations

import argparse
import base64
import contextvars
import html
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from reward_model.images import DEFAULT_MAX_IMAGE_PIXELS, ImageError, load_image
from reward_model.interface import DIMENSIONS, DimensionScore, ImageItem, ScoreStatus
from t2i_guidance.aggregate import active_dimensions, aggregate, parse_weights
from t2i_guidance.cli_common import (
    MAX_CANDIDATES,
    WORLD_PIPELINE,
    UsageError,
    check_drawable,
    check_n,
    check_prompt,
    check_seed,
    pipeline_class,
    world_grammar_summary,
    world_prompt_problem,
)
from t2i_guidance.presets import DEFAULT_PRESET, Preset, available_presets, load_preset
from t2i_guidance.report import png_bytes, write_run
from t2i_guidance.result import ScoredCandidate, SearchResult

DEMO_MAX_N = min(32, MAX_CANDIDATES)  # a shared demo should not let one user hold the machine
MAX_UPLOAD = "8mb"
MAX_UPLOAD_PIXELS = 4096 * 4096
BEST_DISPLAY_PX = 384  # the winner is the largest thing on the page
THUMB_PX = 96
RUNS_DIR = Path(tempfile.gettempdir()) / "t2i-guidance-demo"
WORLD_EXAMPLES = [
    "a red circle above a small blue square on a white background",
    "a large yellow triangle on the left on a black background",
    "a green square to the right of a purple circle",
    "a small orange circle in the center on a gray background",
]
DIMENSION_NAMES = {"technical": "Technical quality", "aesthetic": "Aesthetics", "alignment": "Matches the prompt"}
SCALE_TEXT = (
    "Each picture is judged on up to three things, each from **0 (very poor) to 5 (excellent)**: "
    "*technical quality* (sharpness, noise, artefacts), *aesthetics* (composition, balance, colour) and "
    "*how well it matches your prompt*. The overall score is their mean, weighted by the sliders; "
    "a weight of 0 leaves that judgement out. Each judgement comes with the judge's reasoning."
)
CSS = """
.pixelated img, img.pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
#best-image img { width: 384px !important; height: 384px !important; object-fit: contain; }
.scores td, .scores th { vertical-align: top; padding: 4px 8px; }
.scores .why { font-size: 0.85em; color: #555; }
.scores .failed { color: #b42318; }
"""
_RUN_LOCK = threading.Lock()  # one run inside the models at a time, even after a cancelled one


@lru_cache(maxsize=2)
def build_search_parts(preset_name: str) -> tuple[Preset, Any, Any]:
    """Load a preset's generator and scorer once per process (through the run builder); later requests
    reuse them. The one place the demo builds models."""
    from t2i_guidance.search.run_builder import RunRequest, load_generator, load_scorer, plan_run

    plan = plan_run(RunRequest(preset=preset_name))
    return plan.preset, load_generator(plan), load_scorer(plan)


def preset_weights(preset_name: str) -> dict[str, float]:
    return parse_weights(load_preset(preset_name).weights)


def draws_only_world_grammar(preset_name: str) -> bool:
    return pipeline_class(load_preset(preset_name).generator) == WORLD_PIPELINE


def prompt_warning(prompt: str, preset_name: str) -> str:
    """A sentence under the prompt box while typing: empty when the model can draw it."""
    if not prompt or not prompt.strip() or not draws_only_world_grammar(preset_name):
        return ""
    problem = world_prompt_problem(prompt)
    return f"⚠️ The embedded model cannot draw this ({problem}). Try one of the examples below." if problem else ""


# ---------------------------------------------------------------- a run, without any UI
@dataclass
class DemoRun:
    result: SearchResult
    folder: Path  # best.png, candidates/*.png (lossless, with metadata), result.json, index.html
    best_display: Path | None  # the winner scaled up with nearest-neighbour, for the big view

    def candidate_path(self, scored: ScoredCandidate) -> Path:
        return self.folder / "candidates" / f"{scored.id}.png"


def check_request(prompt: str, n: float, seed: float, weights: dict[str, float], preset_name: str) -> tuple[str, int, int]:
    """The demo's input checks (the CLI's rules): raises UsageError with a sentence for the user."""
    prompt = check_prompt(prompt)
    n = check_n(int(n))
    if n > DEMO_MAX_N:
        raise UsageError(f"the demo makes at most {DEMO_MAX_N} candidates")
    seed = check_seed(int(seed), n)
    check_drawable(prompt, load_preset(preset_name).generator)
    if not any(weights.values()):
        raise UsageError("set at least one weight above 0")
    return prompt, n, seed


def run_search(prompt: str, n: int, seed: int, weights: dict[str, float], preset_name: str, progress: bool = False) -> DemoRun:
    """Best-of-N with the preset's models; every picture written as PNG with its metadata."""
    from t2i_guidance.search.run_builder import RunRequest, build_run

    _, generator, scorer = build_search_parts(preset_name)
    request = RunRequest(preset=preset_name, strategy="best-of-n", strategy_options={"n": n}, weights=weights,
                         score_chunk_size=4)  # small chunks: the progress text moves while judging
    result = build_run(request, generator=generator, scorer=scorer)(prompt, seed=seed, progress=progress)
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=RUNS_DIR))
    write_run(result, folder)
    best_display = None
    if result.best is not None:
        best_display = folder / "best-large.png"
        best_display.write_bytes(png_bytes(upscale(result.best.candidate.image, BEST_DISPLAY_PX)))
    return DemoRun(result, folder, best_display)


def upscale(image: Image.Image, target: int) -> Image.Image:
    """Nearest-neighbour to at least `target` px on the long side, by a whole factor: crisp pixels."""
    factor = max(1, -(-target // max(image.size)))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


# ---------------------------------------------------------------- words for people
def score_word(score: float) -> str:
    for limit, word in ((4.5, "excellent"), (3.5, "good"), (2.5, "fair"), (1.5, "poor")):
        if score >= limit:
            return word
    return "very poor"


def failure_sentence(result: DimensionScore) -> str:
    if result.status == ScoreStatus.PARSE_FAILURE:
        return "The judge answered without a readable score, so this judgement is missing."
    reason = (result.error or "").strip()
    return "The judge could not look at this picture" + (f" ({reason})." if reason else ".")


def judgement_cell(result: DimensionScore | None) -> str:
    if result is None:
        return "<td>not asked (weight 0)</td>"
    if not result.ok:
        return f'<td class="failed">{html.escape(failure_sentence(result))}</td>'
    why = html.escape(result.rationale or "(no reasoning given)")
    return f"<td><b>{result.score:.2f}</b> – {score_word(result.score)}<div class=why>{why}</div></td>"


def thumbnail_tag(image: Image.Image, size: int = THUMB_PX) -> str:
    data = base64.b64encode(png_bytes(upscale(image, size))).decode()
    return f'<img class="pixelated" src="data:image/png;base64,{data}" width="{size}" height="{size}" alt="">'


def trade_off_front(result: SearchResult) -> set[str]:
    """Candidates no other candidate beats on every judged dimension (the Pareto front)."""
    dimensions = active_dimensions(result.weights)
    judged = {c.id: [c.scores[d].score for d in dimensions] for c in result.candidates
              if all(d in c.scores and c.scores[d].ok for d in dimensions)}

    def beaten(mine: list[float]) -> bool:
        return any(all(o >= m for o, m in zip(other, mine, strict=True)) and other != mine for other in judged.values())

    return {cid for cid, mine in judged.items() if not beaten(mine)}


def picture_name(scored: ScoredCandidate) -> str:
    return f"Picture {scored.candidate.index + 1}"


def score_table_html(result: SearchResult) -> str:
    """Every candidate: thumbnail, place, overall score in words, each judgement with its reasoning."""
    dimensions = [d for d in DIMENSIONS if any(d in c.scores for c in result.candidates)]
    front = trade_off_front(result) if len(dimensions) > 1 else set()
    rows = []
    for scored in result.ranking + [c for c in result.candidates if c.rank is None]:
        if scored.aggregate is None:
            overall = '<span class="failed">not ranked: a weighted judgement is missing</span>'
        else:
            overall = f"<b>{scored.aggregate:.2f}</b> / 5 – {score_word(scored.aggregate)}"
        place = "best" if scored.rank == 1 else (f"#{scored.rank}" if scored.rank else "–")
        badge = "<br><small>on the trade-off front</small>" if scored.id in front else ""
        cells = "".join(judgement_cell(scored.scores.get(d)) for d in dimensions)
        rows.append(
            f"<tr><td>{thumbnail_tag(scored.candidate.image)}</td>"
            f"<td><b>{place}</b><br>{picture_name(scored)}<br><small>seed {scored.candidate.seed}</small>{badge}</td>"
            f"<td>{overall}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{DIMENSION_NAMES[d]}</th>" for d in dimensions)
    note = (
        "<p><small>“On the trade-off front”: no other picture is at least as good on every judgement and "
        "better on one; pick among these to trade one quality for another.</small></p>" if front else ""
    )
    return (f'<table class="scores"><tr><th>Picture</th><th>Place</th><th>Overall</th>{head}</tr>'
            f"{''.join(rows)}</table>{note}")


def summary_markdown(run: DemoRun) -> str:
    result, best = run.result, run.result.best
    seconds = result.costs.seconds.get("total", 0.0)
    if best is None:
        return (f"**No picture could be judged**, so none was chosen ({len(result.candidates)} drawn in "
                f"{seconds:.1f} s). The table below says what went wrong for each.")
    return (f"**Best: {picture_name(best)}** (seed {best.candidate.seed}), overall **{best.aggregate:.2f} / 5** – "
            f"{score_word(best.aggregate)}. {len(result.candidates)} pictures drawn and judged in {seconds:.1f} s.")


# ---------------------------------------------------------------- Gradio handlers
def generate(
    prompt: str, n: float, seed: float, technical: float, aesthetic: float, alignment: float,
    preset_name: str, history: list[dict] | None,
) -> Iterator[tuple]:
    """The Generate button: status first, then the run's pictures and judgements (a generator, so
    Gradio's Stop button can cancel between updates)."""
    import gradio as gr

    weights = {"technical": float(technical), "aesthetic": float(aesthetic), "alignment": float(alignment)}
    try:
        prompt, n, seed = check_request(prompt, n, seed, weights, preset_name)
    except UsageError as exc:
        raise gr.Error(_sentence(str(exc)), print_exception=False) from None
    history = list(history or [])
    skip = gr.skip()
    yield (f"Drawing {n} pictures, then judging each one…", skip, skip, skip, skip, history, skip)

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # Gradio's progress tracking follows this context

    def work() -> None:
        with _RUN_LOCK:
            try:
                outcome["run"] = context.run(run_search, prompt, n, seed, weights, preset_name, True)
            except Exception as exc:  # noqa: BLE001 - shown to the user as a sentence
                outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    started = time.monotonic()
    while worker.is_alive():
        worker.join(timeout=1.0)
        if worker.is_alive():
            yield (f"{stage_text()} ({time.monotonic() - started:.0f} s)", skip, skip, skip, skip, history, skip)
    if "error" in outcome:
        exc = outcome["error"]
        raise gr.Error(f"The run failed: {type(exc).__name__}: {exc}", print_exception=False)
    run: DemoRun = outcome["run"]
    result = run.result
    gallery = [
        (str(run.candidate_path(c)), f"{'best' if c.rank == 1 else f'#{c.rank}' if c.rank else 'not ranked'} · "
         f"{picture_name(c)}" + (f" · {c.aggregate:.2f}" if c.aggregate is not None else ""))
        for c in result.ranking + [c for c in result.candidates if c.rank is None]
    ]
    if result.best is not None:
        history.insert(0, {"prompt": prompt, "seed": seed, "n": n, "best": str(run.folder / "best.png"),
                           "overall": result.best.aggregate})
    best_display = str(run.best_display) if run.best_display else None
    best_file = str(run.folder / "best.png") if result.best else None
    yield (summary_markdown(run), best_display, best_file, gallery, score_table_html(result), history,
           history_gallery(history))


STAGE_WORDS = {"generate": "Drawing pictures", "score": "Judging pictures"}


def stage_text() -> str:
    """Where the run is, read from its progress bars (BestOfN's tqdm bars, one per stage)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", [])):
        words = STAGE_WORDS.get(getattr(bar, "desc", ""))
        if words and bar.total:
            return f"{words}: {bar.n} of {bar.total} done"
    return "Loading the models and starting"


def history_gallery(history: list[dict]) -> list[tuple[str, str]]:
    return [(h["best"], f"{h['prompt']} · seed {h['seed']} · {h['overall']:.2f}") for h in history]


def score_upload(path: str | None, prompt: str, preset_name: str) -> tuple[str, str | None]:
    """Score an uploaded file on the three dimensions (alignment when a prompt is given or stored in the
    PNG); returns the judgement as HTML and a large preview."""
    import gradio as gr

    if not path:
        raise gr.Error("Upload a picture first.", print_exception=False)
    try:
        image = load_image(path, min(MAX_UPLOAD_PIXELS, DEFAULT_MAX_IMAGE_PIXELS))
    except ImageError as error:
        reason = str(error).split(": ", 1)[-1]
        raise gr.Error(f"This file cannot be judged: {reason}. Upload a PNG, JPEG or WebP picture.",
                       print_exception=False) from None
    prompt = (prompt or "").strip() or _stored_prompt(path)
    if prompt:
        try:
            prompt = check_prompt(prompt)
        except UsageError as exc:
            raise gr.Error(_sentence(str(exc)), print_exception=False) from None
    dimensions = list(DIMENSIONS) if prompt else ["technical", "aesthetic"]
    _, _, scorer = build_search_parts(preset_name)
    row = scorer.score([ImageItem("upload", image)], prompt or None, dimensions)["upload"]
    parts = [f"<p><small>{html.escape(SCALE_TEXT.replace('**', '').replace('*', ''))}</small></p>"]
    if prompt:
        parts.append(f"<p>Judged against the prompt: <i>{html.escape(prompt)}</i></p>")
    else:
        parts.append("<p>No prompt given, so how well it matches a prompt is not judged.</p>")
    for dimension, result in row.items():
        parts.append(f"<h4>{DIMENSION_NAMES[dimension]}</h4>")
        if result.ok:
            parts.append(f"<p><b>{result.score:.2f}</b> / 5 – {score_word(result.score)}<br>"
                         f"{html.escape(result.rationale or '(no reasoning given)')}</p>")
        else:
            parts.append(f'<p class="failed">{html.escape(failure_sentence(result))}</p>')
    total = aggregate(row, parse_weights(",".join(f"{d}=1" for d in dimensions)))
    if total is not None:
        parts.append(f"<p>Mean of the judgements: <b>{total:.2f}</b> / 5 – {score_word(total)}</p>")
    preview = Path(tempfile.mkdtemp(prefix="upload-", dir=_runs_dir())) / "preview.png"
    preview.write_bytes(png_bytes(upscale(image, BEST_DISPLAY_PX)))
    return "".join(parts), str(preview)


def _runs_dir() -> Path:
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    return RUNS_DIR


def _stored_prompt(path: str) -> str:
    """The prompt a picture from this tool carries in its PNG metadata, if any."""
    try:
        with Image.open(path) as image:
            return str(getattr(image, "text", {}).get("prompt", "")).strip()
    except OSError:
        return ""


def _sentence(message: str) -> str:
    """A CLI message ("--n must be ...") as a sentence for the page."""
    message = message.replace("--n ", "the number of candidates ").replace("--seed ", "the seed ")
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


# ---------------------------------------------------------------- the page
def build_demo(preset_name: str = DEFAULT_PRESET):
    import gradio as gr

    weights = preset_weights(preset_name)
    world = draws_only_world_grammar(preset_name)
    with gr.Blocks(title="t2i-guidance") as demo:
        gr.Markdown("# t2i-guidance\nDraw several candidates for your prompt, let the OmniQuality-R judge "
                    "look at each one, and keep the best.")
        preset = gr.State(preset_name)
        history = gr.State([])
        with gr.Tab("Generate"):
            prompt = gr.Textbox(label="Prompt", value=WORLD_EXAMPLES[0] if world else "", elem_id="prompt")
            warning = gr.Markdown(elem_id="prompt-warning")
            if world:
                gr.Markdown(f"**What this model can draw:** {html.escape(world_grammar_summary())}. "
                            "Anything else is refused. Click an example:")
                gr.Examples(WORLD_EXAMPLES, inputs=[prompt], label="Examples")
            with gr.Row():
                n = gr.Slider(1, DEMO_MAX_N, value=8, step=1, label="How many candidates", elem_id="n")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (same seed, same pictures)")
            with gr.Accordion("How much each judgement counts", open=False):
                gr.Markdown(SCALE_TEXT)
                with gr.Row():
                    technical = gr.Slider(0, 3, value=weights["technical"], step=0.5, label="Technical quality")
                    aesthetic = gr.Slider(0, 3, value=weights["aesthetic"], step=0.5, label="Aesthetics")
                    alignment = gr.Slider(0, 3, value=weights["alignment"], step=0.5, label="Matches the prompt")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
            status = gr.Markdown(elem_id="status")
            with gr.Row():
                best = gr.Image(label="Best picture", type="filepath", format="png", height=BEST_DISPLAY_PX + 40,
                                width=BEST_DISPLAY_PX + 20, interactive=False, elem_id="best-image",
                                elem_classes="pixelated", buttons=["fullscreen"])
                with gr.Column():
                    best_file = gr.File(label="Download the best picture (PNG with prompt, seed and scores)",
                                        interactive=False, elem_id="best-file")
                    gallery = gr.Gallery(label="All candidates, best first (click to enlarge; downloads are PNG)",
                                         columns=4, height=420, object_fit="contain", format="png",
                                         elem_classes="pixelated", buttons=["download", "fullscreen"],
                                         elem_id="gallery")
            gr.Markdown(SCALE_TEXT)
            table = gr.HTML(elem_id="scores")
            earlier = gr.Gallery(label="Your earlier runs in this visit (best picture of each)", columns=8,
                                 height=220, object_fit="contain", format="png", elem_classes="pixelated",
                                 preview=False, allow_preview=False, fit_columns=False)
            prompt.change(prompt_warning, [prompt, preset], warning, show_progress="hidden", queue=False)
            def generate_with_progress(*args, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
                yield from generate(*args)  # the progress bars are the run's own tqdm bars, per stage

            event = run.click(generate_with_progress, [prompt, n, seed, technical, aesthetic, alignment, preset, history],
                              [status, best, best_file, gallery, table, history, earlier], concurrency_limit=1,
                              show_progress="full")
            stop.click(lambda: "Stopped. A run already inside the model finishes in the background and is "
                       "thrown away.", None, status, cancels=[event], queue=False)
        with gr.Tab("Score a picture"):
            with gr.Row():
                upload = gr.File(label="Picture (PNG, JPEG, WebP; up to 8 MB)", file_types=["image"],
                                 type="filepath", elem_id="upload")
                preview = gr.Image(label="What the judge sees", type="filepath", interactive=False,
                                   elem_classes="pixelated", height=BEST_DISPLAY_PX + 40)
            upload_prompt = gr.Textbox(label="Prompt it was made from (optional; read from the PNG when "
                                             "it carries one)")
            score_button = gr.Button("Judge it")
            scores = gr.HTML()
            score_button.click(score_upload, [upload, upload_prompt, preset], [scores, preview], concurrency_limit=1)
    return demo.queue(max_size=8, default_concurrency_limit=1)


def launch(demo, host: str = "127.0.0.1", port: int = 7860, **kwargs):
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD, css=CSS,
                       allowed_paths=[str(_runs_dir())], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="t2i-guidance demo")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(available_presets())}")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    launch(build_demo(args.preset), args.host, args.port)


if __name__ == "__main__":
    main()

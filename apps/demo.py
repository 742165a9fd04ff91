"""The Gradio demo for artists: type a prompt, get N candidates ranked by the reward model, see why.

    python -m apps.demo                 # http://127.0.0.1:7860, the embedded preset
    python -m apps.demo --preset sana --host 0.0.0.0

It listens on 127.0.0.1 unless told otherwise, queues at most a few jobs, caps uploads, and never
opens a path typed by a user: images reach it only as uploads.
"""

from __future__ import annotations

import argparse
import html
from functools import lru_cache
from typing import Any

from PIL import Image

from reward_model.interface import DIMENSIONS, ImageItem
from t2i_guidance.aggregate import aggregate, parse_weights
from t2i_guidance.cli_common import MAX_CANDIDATES, UsageError, check_n, check_prompt
from t2i_guidance.presets import DEFAULT_PRESET, Preset, available_presets
from t2i_guidance.result import SearchResult

DEMO_MAX_N = min(32, MAX_CANDIDATES)  # a shared demo should not let one user hold the machine
MAX_UPLOAD = "8mb"
MAX_UPLOAD_PIXELS = 4096 * 4096


@lru_cache(maxsize=2)
def _search_parts(preset_name: str) -> tuple[Preset, Any, Any]:
    """Load a preset's generator and scorer once per process (through the run builder); later requests reuse them."""
    from t2i_guidance.search.run_builder import RunRequest, load_generator, load_scorer, plan_run

    plan = plan_run(RunRequest(preset=preset_name))
    return plan.preset, load_generator(plan), load_scorer(plan)


def _weights_text(technical: float, aesthetic: float, alignment: float) -> str:
    return f"technical={technical},aesthetic={aesthetic},alignment={alignment}"


def score_table_html(result: SearchResult) -> str:
    """Every candidate's scores and rationale, best first, failures shown as failures."""
    rows = []
    order = result.ranking + [c for c in result.candidates if c.rank is None]
    for scored in order:
        cells = []
        for dimension in scored.scores:
            s = scored.scores[dimension]
            value = f"{s.score:.2f}" if s.ok else f"<em>{s.status.value}</em>"
            why = html.escape(s.rationale or s.error or "")
            cells.append(f"<td><b>{value}</b><br><small>{why}</small></td>")
        aggregate_text = f"{scored.aggregate:.3f}" if scored.aggregate is not None else "not ranked"
        rows.append(f"<tr><td>{scored.rank or '–'}</td><td>{scored.id}</td><td>{aggregate_text}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{d}</th>" for d in (order[0].scores if order else []))
    return f"<table><tr><th>rank</th><th>id</th><th>aggregate</th>{head}</tr>{''.join(rows)}</table>"


def generate(
    prompt: str, n: int, seed: int, technical: float, aesthetic: float, alignment: float, preset_name: str
) -> tuple[list[tuple[Image.Image, str]], Image.Image | None, str]:
    """One best-of-N run; returns the ranked gallery, the best image, and the score table."""
    from t2i_guidance.search.run_builder import RunRequest, build_run

    try:
        prompt = check_prompt(prompt)
        n = check_n(int(n))
        if n > DEMO_MAX_N:
            raise UsageError(f"the demo makes at most {DEMO_MAX_N} candidates")
        weights = parse_weights(_weights_text(technical, aesthetic, alignment))
    except (UsageError, ValueError) as exc:
        raise _user_error(str(exc)) from None
    _, generator, scorer = _search_parts(preset_name)
    request = RunRequest(preset=preset_name, strategy="best-of-n", strategy_options={"n": n}, weights=weights)
    result = build_run(request, generator=generator, scorer=scorer)(prompt, seed=int(seed))
    order = result.ranking + [c for c in result.candidates if c.rank is None]
    gallery = [
        (c.candidate.image, f"#{c.rank or '–'} {c.id} · {c.aggregate:.2f}" if c.aggregate is not None else f"{c.id} · not scored")
        for c in order
    ]
    best = result.best.candidate.image if result.best else None
    return gallery, best, score_table_html(result)


def score_upload(image: Image.Image | None, prompt: str, preset_name: str) -> str:
    """Score an uploaded image on the three dimensions (alignment only when a prompt is given)."""
    if image is None:
        raise _user_error("upload an image first")
    if image.width * image.height > MAX_UPLOAD_PIXELS:
        raise _user_error("the image is too large")
    dimensions = list(DIMENSIONS) if prompt and prompt.strip() else ["technical", "aesthetic"]
    _, _, scorer = _search_parts(preset_name)
    row = scorer.score([ImageItem("upload", image.convert("RGB"))], prompt or None, dimensions)["upload"]
    lines = []
    for dimension, s in row.items():
        value = f"{s.score:.2f}" if s.ok else s.status.value
        lines.append(f"<p><b>{dimension}: {value}</b><br>{html.escape(s.rationale or s.error or '')}</p>")
    weights = parse_weights(",".join(f"{d}=1" for d in dimensions))
    total = aggregate(row, weights)
    lines.append(f"<p>mean: {total:.2f}</p>" if total is not None else "<p>mean: not available</p>")
    return "".join(lines)


def _user_error(message: str) -> Exception:
    import gradio as gr

    return gr.Error(message)


def build_demo(preset_name: str = DEFAULT_PRESET):
    import gradio as gr

    with gr.Blocks(title="t2i-guidance") as demo:
        gr.Markdown("# t2i-guidance\nGenerate several candidates, let OmniQuality-R judge them, keep the best.")
        preset = gr.State(preset_name)
        with gr.Tab("Generate"):
            with gr.Row():
                prompt = gr.Textbox(label="Prompt", value="a red circle above a small blue square on a white background")
            with gr.Row():
                n = gr.Slider(1, DEMO_MAX_N, value=8, step=1, label="Candidates (N)")
                seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Row():
                technical = gr.Slider(0, 3, value=1, step=0.5, label="Weight: technical")
                aesthetic = gr.Slider(0, 3, value=1, step=0.5, label="Weight: aesthetic")
                alignment = gr.Slider(0, 3, value=2, step=0.5, label="Weight: alignment")
            run = gr.Button("Generate", variant="primary")
            with gr.Row():
                best = gr.Image(label="Best", type="pil")
                gallery = gr.Gallery(label="All candidates, best first", columns=4)
            table = gr.HTML()
            run.click(generate, [prompt, n, seed, technical, aesthetic, alignment, preset], [gallery, best, table],
                      concurrency_limit=1)
        with gr.Tab("Score an image"):
            upload = gr.Image(label="Image", type="pil", sources=["upload", "clipboard"])
            upload_prompt = gr.Textbox(label="Prompt it was made from (optional, for alignment)")
            score_button = gr.Button("Score")
            scores = gr.HTML()
            score_button.click(score_upload, [upload, upload_prompt, preset], scores, concurrency_limit=1)
    return demo.queue(max_size=8, default_concurrency_limit=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="t2i-guidance demo")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(available_presets())}")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    build_demo(args.preset).launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()

"""The page's event handlers: Gradio values in, the run service called, rendered updates out. Every
problem reaches the user as one sentence."""

from __future__ import annotations

from collections.abc import Iterator

from PIL import Image

from apps.demo.limits import MAX_UPLOAD_PIXELS
from apps.demo.picks import choice_options, mark_pick, run_for_picks, worse_options
from apps.demo.rendering import (
    gallery_caption,
    history_gallery,
    ranked_first,
    rounds_html,
    score_table_html,
    summary_markdown,
    trade_off_html,
    upload_judgement_html,
)
from apps.demo.service import BackgroundRun, check_request, judge_picture, save_preview
from apps.demo.strategies import pictures_at_most
from reward_model.interface import DEFAULT_MAX_IMAGE_PIXELS, DIMENSIONS, ImageError, load_image
from t2i_guidance.input_checks import UsageError, check_prompt


def generate(
    prompt: str, strategy: str, settings: dict[str, float], seed: float, technical: float, aesthetic: float,
    alignment: float, budget: float | None, preset_name: str, history: list[dict] | None,
) -> Iterator[tuple]:
    """The Generate button: status first, then the run's pictures, rounds and judgements (a generator,
    so Gradio's Stop button can cancel between updates). Yields (status, best, best file, gallery,
    rounds, table, history, earlier runs, the run for picks, my-choice options, better-than options,
    pick status)."""
    import gradio as gr

    weights = {"technical": float(technical), "aesthetic": float(aesthetic), "alignment": float(alignment)}
    try:
        request = check_request(prompt, strategy, settings, seed, weights, preset_name, budget)
    except UsageError as exc:
        raise gr.Error(_sentence(str(exc)), print_exception=False) from None
    history = list(history or [])
    skip = gr.skip()
    pictures = pictures_at_most(request.strategy, request.options)
    waiting = [skip] * 4  # the pick controls keep the last run's until this one is done
    yield (f"Drawing up to {pictures} pictures, judging each one…", *[skip] * 5, history, skip, *waiting)

    background = BackgroundRun(request)
    while background.running_after(1.0):
        yield (background.status(pictures), *[skip] * 5, history, skip, *waiting)
    try:
        run = background.outcome()
    except Exception as exc:  # noqa: BLE001 - shown to the user as a sentence
        raise gr.Error(f"The run failed: {type(exc).__name__}: {exc}", print_exception=False) from None
    result = run.result
    gallery = [(str(run.downloads[c.id]), gallery_caption(c)) for c in ranked_first(result)]
    best_file = str(run.downloads[result.best.id]) if result.best else None
    if result.best is not None:
        history.insert(0, {"prompt": request.prompt, "seed": request.seed, "strategy": request.strategy,
                           "best": best_file, "overall": result.best.aggregate})
    best_display = str(run.best_display) if run.best_display else None
    picks = run_for_picks(result, {c.id: run.candidate_path(c) for c in result.candidates})
    pick_prompt = ("Which one do you like best? Choose it below (or click it in the gallery): the judge learns "
                   "nothing from you unless you tick “keep my picks”.")
    yield (summary_markdown(result), best_display, best_file, gallery,
           rounds_html(result) + trade_off_html(result), score_table_html(result), history, history_gallery(history),
           picks, gr.update(choices=choice_options(picks), value=None),
           gr.update(choices=worse_options(picks), value="all"), pick_prompt)


def pick(run: dict | None, choice: str | None, worse: str | None, keep: bool) -> str:
    """The "This one is my choice" button: the artist's pick beside the judge's, kept when asked."""
    import gradio as gr

    try:
        return mark_pick(run, choice, worse, bool(keep))
    except (ValueError, OSError) as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def score_upload(path: str | None, prompt: str, preset_name: str, technical: float = 1.0, aesthetic: float = 1.0,
                 alignment: float = 1.0) -> tuple[str, str | None]:
    """Score an uploaded file on the three dimensions (alignment when a prompt is given or stored in the
    PNG), the overall score weighted as on the Generate tab; returns the judgement as HTML and a large
    preview."""
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
    row = judge_picture(image, prompt or None, dimensions, preset_name)
    weights = {"technical": float(technical), "aesthetic": float(aesthetic), "alignment": float(alignment)}
    return upload_judgement_html(row, prompt, weights), str(save_preview(image))


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

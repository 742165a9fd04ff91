"""The page: the Gradio Blocks of the demo (a Generate tab and a Score-a-picture tab), wired to the
handlers."""

from __future__ import annotations

import html

from apps.demo.examples import COUNTING_EXAMPLES, WORLD_EXAMPLES
from apps.demo.handlers import generate, pick, score_upload
from apps.demo.limits import QUEUE_SIZE
from apps.demo.picks import shown_folder
from apps.demo.preset_facts import draws_only_world_grammar, picture_cost, preset_weights, prompt_warning
from apps.demo.rendering import BEST_DISPLAY_PX, ROUND_THUMB_PX, SCALE_TEXT, thumbnail_tag
from apps.demo.samples import samples
from apps.demo.strategies import (
    all_settings,
    setting_spec,
    strategy_help,
    strategy_label,
    strategy_names,
    strategy_settings,
)
from t2i_guidance.registries import DEFAULT_PRESET, load_preset
from t2i_guidance.world.plugin import draws_counts, world_grammar_summary

CSS = """
.pixelated img, img.pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
#best-image img { width: 384px !important; height: 384px !important; object-fit: contain; }
.scores td, .scores th { vertical-align: top; padding: 4px 8px; }
.scores .why { font-size: 0.85em; color: #555; }
.scores .failed { color: #b42318; }
.rounds .round { border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.rounds .winner-round { border: 3px solid #e8590c; }
.rounds .pics, .trade-offs .cards { display: flex; flex-wrap: wrap; gap: 10px; }
.rounds figure { margin: 0; text-align: center; font-size: 0.85em; }
.rounds figure.winner img { outline: 4px solid #e8590c; }
.trade-offs .card { text-align: center; font-size: 0.9em; }
.table-scroll { overflow-x: auto; max-width: 100%; }
#results { scroll-margin-top: 60px; }  /* the status line in full view, not under the edge */
.scores .doubt { color: #b54708; font-weight: 600; }
.samples { display: flex; flex-wrap: wrap; gap: 8px; }
.samples figure { margin: 0; width: 128px; font-size: 0.75em; text-align: center; }
#gallery .thumbnail-lg { display: flex; flex-direction: column; }
#gallery .thumbnail-lg > img { min-height: 96px; aspect-ratio: 1 / 1; height: auto; }
#gallery .caption-label { position: static; max-width: 100%; opacity: 1; border: 0; text-align: center; }
@media (max-width: 600px) { #best-image img { width: 100% !important; height: auto !important; } }
"""
SCROLL_TO_RESULTS = "() => { document.getElementById('results')?.scrollIntoView({behavior: 'smooth'}); }"


def samples_html(prompts: list[str]) -> str:
    """What the model draws, before anyone waits for it: shipped samples with their prompts."""
    figures = "".join(f"<figure>{thumbnail_tag(image, ROUND_THUMB_PX)}<figcaption>{html.escape(prompt)}"
                      "</figcaption></figure>" for image, prompt in samples(prompts))
    return f'<p><b>What this model draws</b> (seed 0):</p><div class="samples">{figures}</div>' if figures else ""


def build_demo(preset_name: str = DEFAULT_PRESET):
    import gradio as gr

    weights = preset_weights(preset_name)
    world = draws_only_world_grammar(preset_name)
    with gr.Blocks(title="t2i-guidance") as demo:
        gr.Markdown("# t2i-guidance\nDraw several pictures for your prompt, let the judge look at each one, "
                    "and keep the best – or pick the one you like and teach the judge your taste.")
        preset = gr.State(preset_name)
        history = gr.State([])
        last_run = gr.State(None)
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=3, min_width=300):
                    prompt = gr.Textbox(label="Prompt", value=WORLD_EXAMPLES[0] if world else "", elem_id="prompt")
                    warning = gr.Markdown(elem_id="prompt-warning")
                    with gr.Row():
                        run = gr.Button("Generate", variant="primary", elem_id="generate", min_width=120)
                        stop = gr.Button("Stop", variant="stop", elem_id="stop", min_width=80)
                if world:
                    with gr.Column(scale=2, min_width=300):
                        gr.HTML(samples_html(WORLD_EXAMPLES), elem_id="samples")
            if world:
                counts = draws_counts(load_preset(preset_name).generator)
                gr.Markdown(f"**What this model can draw:** {html.escape(world_grammar_summary(counts))}. "
                            "Anything else is refused. Click an example:")
                gr.Examples(WORLD_EXAMPLES + (COUNTING_EXAMPLES if counts else []), inputs=[prompt], label="Examples")
            names = strategy_names()
            strategy = gr.Radio([(strategy_label(name), name) for name in names], value=names[0],
                                label="How to search", elem_id="strategy")
            strategy_about = gr.Markdown(strategy_help(names[0]), elem_id="strategy-help")
            keys = all_settings()
            with gr.Row():
                sliders = []
                for key in keys:
                    label, low, high, default = setting_spec(key)
                    sliders.append(gr.Slider(low, high, value=default, step=1, label=label,
                                             visible=key in strategy_settings(names[0]),
                                             elem_id=key.replace("_", "-")))
            with gr.Row():
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (same seed, same pictures and ranking)")
                budget = gr.Number(value=0, precision=0, minimum=0, elem_id="budget",
                                   label=f"Stop after this much drawing work (0: no limit; one picture is "
                                         f"{picture_cost(preset_name)} steps)")
            with gr.Accordion("How much each judgement counts", open=False):
                gr.Markdown(SCALE_TEXT)
                with gr.Row():
                    technical = gr.Slider(0, 3, value=weights["technical"], step=0.5, label="Technical quality")
                    aesthetic = gr.Slider(0, 3, value=weights["aesthetic"], step=0.5, label="Aesthetics")
                    alignment = gr.Slider(0, 3, value=weights["alignment"], step=0.5, label="Matches the prompt")
            with gr.Column(elem_id="results"):
                status = gr.Markdown(elem_id="status")
                with gr.Row():
                    best = gr.Image(label="Best picture", type="filepath", format="png", height=BEST_DISPLAY_PX + 40,
                                    width=BEST_DISPLAY_PX + 20, interactive=False, elem_id="best-image",
                                    elem_classes="pixelated", buttons=["fullscreen"])
                    with gr.Column(min_width=300):
                        best_file = gr.File(label="Download the best picture (512 px PNG with prompt, seed and "
                                                  "scores)", interactive=False, elem_id="best-file")
                        pick_status = gr.Markdown(elem_id="pick-status")
                        choice = gr.Radio([], label="My choice", elem_id="my-choice")
                        worse = gr.Dropdown([], label="…is better than", elem_id="better-than")
                        keep = gr.Checkbox(False, elem_id="keep-picks",
                                           label=f"Keep my picks on this computer to teach the judge my taste "
                                                 f"(in {shown_folder()}; nothing is sent anywhere)")
                        save_pick = gr.Button("This one is my choice", elem_id="save-pick")
                gallery = gr.Gallery(label="All pictures, best first (click to choose or enlarge; downloads are "
                                           "512 px PNG)", columns=4, height="auto", object_fit="contain",
                                     format="png", elem_classes="pixelated", buttons=["download", "fullscreen"],
                                     elem_id="gallery")
                rounds = gr.HTML(elem_id="rounds")
                gr.Markdown(SCALE_TEXT)
                table = gr.HTML(elem_id="scores")
            earlier = gr.Gallery(label="Your earlier runs in this visit (best picture of each)", columns=8,
                                 height=220, object_fit="contain", format="png", elem_classes="pixelated",
                                 preview=False, allow_preview=False, fit_columns=False)
            prompt.change(prompt_warning, [prompt, preset], warning, show_progress="hidden", queue=False)
            def show_settings(name: str) -> list:
                return [strategy_help(name)] + [gr.update(visible=key in strategy_settings(name)) for key in keys]

            strategy.change(show_settings, strategy, [strategy_about, *sliders], queue=False, show_progress="hidden")

            def generate_with_progress(prompt, strategy, seed, technical, aesthetic, alignment, budget, preset, history,
                                       *values, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
                settings = dict(zip(keys, values, strict=True))  # the run's own tqdm bars are the progress bars
                yield from generate(prompt, strategy, settings, seed, technical, aesthetic, alignment, budget, preset,
                                    history)

            run.click(None, None, None, js=SCROLL_TO_RESULTS, queue=False)  # the results come into view
            event = run.click(generate_with_progress,
                              [prompt, strategy, seed, technical, aesthetic, alignment, budget, preset, history, *sliders],
                              [status, best, best_file, gallery, rounds, table, history, earlier,
                               last_run, choice, worse, pick_status], concurrency_limit=1, show_progress="full")
            stop.click(lambda: "Stopped. A run already inside the model finishes in the background and is "
                       "thrown away.", None, status, cancels=[event], queue=False)

            def choose_from_gallery(run: dict | None, selected: gr.SelectData):
                pictures = (run or {}).get("pictures", [])
                return pictures[selected.index]["id"] if 0 <= selected.index < len(pictures) else gr.skip()

            choose_from_gallery.__annotations__["selected"] = gr.SelectData  # gradio reads it to pass the click
            gallery.select(choose_from_gallery, last_run, choice, queue=False, show_progress="hidden")
            save_pick.click(pick, [last_run, choice, worse, keep], pick_status, queue=False)
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
            score_button.click(score_upload, [upload, upload_prompt, preset, technical, aesthetic, alignment],
                               [scores, preview], concurrency_limit=1)
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)

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
import inspect
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from reward_model.images import DEFAULT_MAX_IMAGE_PIXELS, ImageError, load_image
from reward_model.interface import DIMENSIONS, DimensionScore, ImageItem, ScoreStatus
from t2i_guidance.aggregate import aggregate, parse_weights
from t2i_guidance.input_checks import (
    MAX_CANDIDATES,
    UsageError,
    check_n,
    check_prompt,
    check_seed,
    pipeline_class,
)
from t2i_guidance.presets import DEFAULT_PRESET, Preset, available_presets, load_preset
from t2i_guidance.result import ScoredCandidate, SearchResult, pareto_front
from t2i_guidance.run_folder import png_bytes, write_run
from t2i_guidance.search import available_strategies, strategy_class
from t2i_guidance.world.plugin import (
    WORLD_PIPELINE,
    draws_counts,
    world_grammar_summary,
    world_prompt_problem,
)

DEMO_MAX_N = min(32, MAX_CANDIDATES)  # a shared demo should not let one user hold the machine
MAX_UPLOAD = "8mb"
MAX_UPLOAD_PIXELS = 4096 * 4096
BEST_DISPLAY_PX = 384  # the winner is the largest thing on the page
THUMB_PX = 96
ROUND_THUMB_PX = 128  # pictures of a round: large enough to judge by eye
RUNS_DIR = Path(tempfile.gettempdir()) / "t2i-guidance-demo"
WORLD_EXAMPLES = [
    "a red circle above a small blue square on a white background",
    "a large yellow triangle on the left on a black background",
    "a green square to the right of a purple circle",
    "a small orange circle in the center on a gray background",
]
COUNTING_EXAMPLES = ["three red squares on a white background"]  # when the generator knows count words
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
.rounds .round { border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.rounds .winner-round { border: 3px solid #e8590c; }
.rounds .pics, .trade-offs .cards { display: flex; flex-wrap: wrap; gap: 10px; }
.rounds figure { margin: 0; text-align: center; font-size: 0.85em; }
.rounds figure.winner img { outline: 4px solid #e8590c; }
.trade-offs .card { text-align: center; font-size: 0.9em; }
"""
_RUN_LOCK = threading.Lock()  # one run inside the models at a time, even after a cancelled one


# ---------------------------------------------------------------- strategies, from the search registry
# Words for the strategies and settings the demo knows; a strategy registered later appears anyway, under
# its own name, with a slider for each whole-number setting it takes (see `strategy_settings`).
STRATEGY_WORDS = {
    "best-of-n": ("Best of N", "Draw N pictures from different seeds and keep the one the judge likes best."),
    "refine": ("Prompt refinement", "Rounds of drawing, judging and rewriting the prompt from the judge's "
               "reasons; every picture is judged against YOUR prompt and the best of all rounds wins."),
    "zero-order": ("Noise search", "Draw a first set, then look for better pictures near the best one's "
                   "starting noise, round after round."),
    "cascade": ("Cascade", "A quick first look (aesthetics only) at every picture; only the best few get "
                "the full judgement. Cheaper, but can drop a picture that matches the prompt better."),
}
SETTINGS = {  # name: (label, lowest, highest, default)
    "n": ("How many candidates", 1, DEMO_MAX_N, 8),
    "per_round": ("Pictures per round", 1, 8, 4),
    "max_rounds": ("Rounds at most", 1, 4, 3),
    "neighbours": ("Neighbours per round", 1, 8, 4),
    "rounds": ("Rounds", 1, 4, 3),
    "keep": ("Judged in full (the best of the quick look)", 1, 16, 2),
}
HIDDEN_SETTINGS = {"patience", "feedback", "batch_size", "score_chunk_size"}  # sensible defaults; CLI only
CASCADE_QUICK_LOOK = ["aesthetic"]


def strategy_names() -> list[str]:
    """Every registered strategy, the demo's known ones first."""
    names = available_strategies()
    return [n for n in STRATEGY_WORDS if n in names] + [n for n in names if n not in STRATEGY_WORDS]


def strategy_label(name: str) -> str:
    return STRATEGY_WORDS.get(name, (name.replace("-", " ").capitalize(), ""))[0]


def strategy_help(name: str) -> str:
    words = STRATEGY_WORDS.get(name)
    if words:
        return words[1]
    doc = inspect.getdoc(strategy_class(name)) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def _init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            for name, parameter in inspect.signature(klass.__init__).parameters.items():
                found.setdefault(name, parameter)
    return found


@cache
def strategy_settings(name: str) -> tuple[str, ...]:
    """The settings the demo shows for a strategy: those of SETTINGS its constructor takes, plus any other
    whole-number setting with a positive default (a newly registered strategy's own knobs)."""
    shown = []
    for key, parameter in _init_parameters(strategy_class(name)).items():
        default = parameter.default
        if key in HIDDEN_SETTINGS:
            continue
        if key in SETTINGS or (isinstance(default, int) and not isinstance(default, bool) and default >= 1):
            shown.append(key)
    return tuple(sorted(shown, key=lambda k: list(SETTINGS).index(k) if k in SETTINGS else len(SETTINGS)))


def setting_spec(key: str) -> tuple[str, int, int, int]:
    """(label, lowest, highest, default) of a setting; unknown ones from the strategy's own default."""
    if key in SETTINGS:
        return SETTINGS[key]
    defaults = [p.default for n in strategy_names() for k, p in _init_parameters(strategy_class(n)).items()
                if k == key and isinstance(p.default, int)]
    default = defaults[0] if defaults else 1
    return key.replace("_", " ").capitalize(), 1, max(8, 2 * default), default


def all_settings() -> list[str]:
    """Every setting of every registered strategy, once, in a stable order (one slider each on the page)."""
    keys: list[str] = []
    for name in strategy_names():
        keys += [k for k in strategy_settings(name) if k not in keys]
    return keys


def max_pictures(options: dict[str, int]) -> int:
    """At most how many pictures a run with these settings draws (the demo caps it; seeds seed..seed+k)."""
    if "per_round" in options and "max_rounds" in options:
        return options["per_round"] * options["max_rounds"]
    if "neighbours" in options and "rounds" in options:
        return options.get("n", 1) + options["neighbours"] * (options["rounds"] - 1)
    return options.get("n", 1)


# ---------------------------------------------------------------- models, loaded once per process
@lru_cache(maxsize=2)
def build_search_parts(preset_name: str) -> tuple[Preset, Any, Any]:
    """Load a preset's generator and scorer once per process (through the run builder); later requests
    reuse them. The one place the demo builds models."""
    from t2i_guidance.search.run_builder import RunRequest, load_generator, load_scorer, plan_run

    plan = plan_run(RunRequest(preset=preset_name))
    return plan.preset, load_generator(plan), load_scorer(plan)


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


def preset_weights(preset_name: str) -> dict[str, float]:
    return parse_weights(load_preset(preset_name).weights)


def draws_only_world_grammar(preset_name: str) -> bool:
    return pipeline_class(load_preset(preset_name).generator) == WORLD_PIPELINE


def prompt_warning(prompt: str, preset_name: str) -> str:
    """A sentence under the prompt box while typing: empty when the model can draw it."""
    if not prompt or not prompt.strip() or not draws_only_world_grammar(preset_name):
        return ""
    problem = world_prompt_problem(prompt, load_preset(preset_name).generator)
    return f"⚠️ The embedded model cannot draw this ({problem}). Try one of the examples below." if problem else ""


# ---------------------------------------------------------------- a run, without any UI
@dataclass
class DemoRun:
    result: SearchResult
    folder: Path  # best.png, candidates/*.png (lossless, with metadata), result.json, index.html
    best_display: Path | None  # the winner scaled up with nearest-neighbour, for the big view

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
    pictures = max_pictures(options)
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
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=RUNS_DIR))
    write_run(result, folder)
    best_display = None
    if result.best is not None:
        best_display = folder / "best-large.png"
        best_display.write_bytes(png_bytes(upscale(result.best.candidate.image, BEST_DISPLAY_PX)))
    return DemoRun(result, folder, best_display)


_DRAWING: dict[str, Any] = {}  # what the running search last asked the generator for (status text)


class WatchedGenerator:
    """The loaded generator, noting each call's prompt and how many pictures the run has asked for, so
    the status line can say which round's prompt is being drawn. Everything else passes through."""

    def __init__(self, generator: Any) -> None:
        self._generator = generator
        _DRAWING.clear()

    def generate(self, prompts, seeds, *args, first_index: int = 0, **kwargs):
        _DRAWING.update(prompt=prompts if isinstance(prompts, str) else None, drawn=first_index + len(seeds))
        return self._generator.generate(prompts, seeds, *args, first_index=first_index, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)


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
    """Candidates no other candidate beats on every judged dimension (result.json's Pareto front)."""
    return set(pareto_front(result.candidates, result.weights))


def picture_name(scored: ScoredCandidate) -> str:
    return f"Picture {scored.candidate.index + 1}"


def round_of(result: SearchResult) -> dict[str, int]:
    """Candidate id -> round number (from 1), for strategies that work in rounds."""
    return {cid: r["round"] + 1 for r in result.rounds for cid in r.get("candidates", [])}


def not_ranked_reason(scored: ScoredCandidate) -> str:
    if scored.candidate.extra.get("pruned"):
        return "left out after the quick first look (only the best few were judged in full)"
    return "not ranked: a weighted judgement is missing"


def score_table_html(result: SearchResult) -> str:
    """Every candidate: thumbnail, place, overall score in words, each judgement with its reasoning."""
    dimensions = [d for d in DIMENSIONS if any(d in c.scores for c in result.candidates)]
    front = trade_off_front(result) if len(dimensions) > 1 else set()
    rounds = round_of(result)
    rows = []
    for scored in result.ranking + [c for c in result.candidates if c.rank is None]:
        if scored.aggregate is None:
            overall = f'<span class="failed">{not_ranked_reason(scored)}</span>'
        else:
            overall = f"<b>{scored.aggregate:.2f}</b> / 5 – {score_word(scored.aggregate)}"
        place = "best" if scored.rank == 1 else (f"#{scored.rank}" if scored.rank else "–")
        badge = "<br><small>on the trade-off front</small>" if scored.id in front else ""
        where = f"<br><small>round {rounds[scored.id]}</small>" if scored.id in rounds else ""
        cells = "".join(judgement_cell(scored.scores.get(d)) for d in dimensions)
        rows.append(
            f"<tr><td>{thumbnail_tag(scored.candidate.image)}</td>"
            f"<td><b>{place}</b><br>{picture_name(scored)}<br><small>seed {scored.candidate.seed}</small>"
            f"{where}{badge}</td><td>{overall}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{DIMENSION_NAMES[d]}</th>" for d in dimensions)
    note = (
        "<p><small>“On the trade-off front”: no other picture is at least as good on every judgement and "
        "better on one; pick among these to trade one quality for another.</small></p>" if front else ""
    )
    return (f'<table class="scores"><tr><th>Picture</th><th>Place</th><th>Overall</th>{head}</tr>'
            f"{''.join(rows)}</table>{note}")


def trade_off_html(result: SearchResult) -> str:
    """The Pareto front as a strip of pictures with their judgements side by side: choose a trade-off
    instead of the one weighted winner."""
    dimensions = [d for d in DIMENSIONS if result.weights.get(d, 0) > 0]
    front = [c for c in result.candidates if c.id in trade_off_front(result)]
    if len(dimensions) < 2 or len(front) < 2:
        return ""
    front.sort(key=lambda c: c.rank or 0)
    cards = []
    for scored in front:
        lines = "".join(f"<br>{DIMENSION_NAMES[d]}: <b>{scored.scores[d].score:.2f}</b>" for d in dimensions)
        cards.append(f'<div class="card">{thumbnail_tag(scored.candidate.image, ROUND_THUMB_PX)}'
                     f"<br><b>{picture_name(scored)}</b>{' (best overall)' if scored.rank == 1 else ''}"
                     f"<small>{lines}</small></div>")
    return ('<div class="trade-offs"><h3>Trade-offs</h3><p><small>No other picture beats these on every '
            "judgement at once: each is the best choice for some balance between them.</small></p>"
            f'<div class="cards">{"".join(cards)}</div></div>')


STOP_WORDS = {
    "target": "the target score was reached",
    "no_gain": "rounds in a row brought no better picture",
    "max_rounds": "the last round allowed was done",
    "rounds": "the last round allowed was done",
    "budget": "the compute limit was reached",
    "no_scores": "no picture could be judged",
}


ISSUE_WORDS = {  # the world rewriter's coarse kinds of fault, as a person says them
    "relation": "how the shapes are placed against each other", "position": "where the shape is",
    "background": "the background", "missing": "a missing shape", "shape": "the wrong shape", "size": "the size",
    "extra": "shapes nobody asked for", "quality": "blur, noise or blockiness",
}


def rewrite_reason(note: str) -> str:
    """A rewriter's note for the page ("issues: extra, relation" -> what the judge found wrong)."""
    if note.startswith("issues: "):
        kinds = [k.strip() for k in note.removeprefix("issues: ").split(",") if k.strip()]
        words = [ISSUE_WORDS.get(k, k) for k in kinds if k != "none named"]
        return ("Rewritten to address what the judge found wrong: " + "; ".join(words) + ".") if words \
            else "Rewritten in other words (the judge named no particular fault)."
    if not note or "rejected rewrite" in note:  # said below, with the reason the rewrite was refused
        return ""
    return f"Why: {note}"


def rounds_html(result: SearchResult) -> str:
    """Each round of a multi-round search: its prompt (or where it searched), its pictures large enough
    to judge, their overall scores; the round holding the overall winner is marked."""
    if not result.rounds:
        return ""
    by_id = {c.id: c for c in result.candidates}
    best = result.best
    rejected = {e.get("round"): e for e in result.events if e.get("event") == "rewrite_rejected"}
    blocks = []
    for entry in result.rounds:
        number = entry["round"] + 1
        members = [by_id[cid] for cid in entry.get("candidates", []) if cid in by_id]
        holds_winner = best is not None and best.id in entry.get("candidates", [])
        title = f"Round {number}" + (" ★ holds the overall winner" if holds_winner else "")
        lines = []
        if "prompt" in entry:
            changed = "" if entry["prompt"] == result.prompt else " (rewritten)"
            lines.append(f"Prompt{changed}: <i>“{html.escape(entry['prompt'])}”</i>")
            reason = rewrite_reason(str(entry.get("note") or ""))
            if reason:
                lines.append(f"<small>{html.escape(reason)}</small>")
        elif members and "pivot" in members[0].candidate.extra:  # noise search: where this round looked
            pivot = by_id.get(members[0].candidate.extra["pivot"] or "")
            lines.append(f"Searched near the starting noise of {picture_name(pivot)}" if pivot
                         else "Random starting noises")
        if number - 1 in rejected:
            reason = html.escape(str(rejected[number - 1].get("reason", "")))
            lines.append(f"<small>The rewrite proposed for this round was not used ({reason}); the best "
                         "prompt so far was drawn again with new seeds.</small>")
        if entry.get("best_value") is not None:
            gain = " – better than every earlier round" if entry.get("improved") and number > 1 else ""
            lines.append(f"Best this round: <b>{entry['best_value']:.2f}</b> / 5{gain}")
        pictures = []
        for scored in members:
            mark = " winner" if best is not None and scored.id == best.id else ""
            value = f"{scored.aggregate:.2f}" if scored.aggregate is not None else "not ranked"
            pictures.append(f'<figure class="pic{mark}">{thumbnail_tag(scored.candidate.image, ROUND_THUMB_PX)}'
                            f"<figcaption>{picture_name(scored)} · {value}</figcaption></figure>")
        css = "round winner-round" if holds_winner else "round"
        blocks.append(f'<div class="{css}"><h4>{title}</h4><p>{"<br>".join(lines)}</p>'
                      f'<div class="pics">{"".join(pictures)}</div></div>')
    stopped = STOP_WORDS.get(str(result.config.get("stopped", "")), "")
    footer = (f"<p><small>Stopped after round {len(result.rounds)}: {stopped}. The pick is the best picture "
              "of all rounds, each judged against your prompt.</small></p>") if stopped else ""
    return f'<div class="rounds"><h3>Rounds</h3>{"".join(blocks)}{footer}</div>'


def summary_markdown(run: DemoRun) -> str:
    result, best = run.result, run.result.best
    seconds = result.costs.seconds.get("total", 0.0)
    rounds = f" in {len(result.rounds)} rounds" if len(result.rounds) > 1 else ""
    if best is None:
        return (f"**No picture could be judged**, so none was chosen ({len(result.candidates)} drawn{rounds} in "
                f"{seconds:.1f} s). The table below says what went wrong for each.")
    where = f", from round {round_of(result)[best.id]}" if len(result.rounds) > 1 else ""
    return (f"**Best: {picture_name(best)}** (seed {best.candidate.seed}{where}), overall "
            f"**{best.aggregate:.2f} / 5** – {score_word(best.aggregate)}. {len(result.candidates)} pictures "
            f"drawn{rounds} and judged in {seconds:.1f} s ({strategy_label(result.strategy).lower()}).")


# ---------------------------------------------------------------- Gradio handlers
def generate(
    prompt: str, strategy: str, settings: dict[str, float], seed: float, technical: float, aesthetic: float,
    alignment: float, budget: float | None, preset_name: str, history: list[dict] | None,
) -> Iterator[tuple]:
    """The Generate button: status first, then the run's pictures, rounds and judgements (a generator,
    so Gradio's Stop button can cancel between updates). Yields (status, best, best file, gallery,
    rounds, table, history, earlier runs)."""
    import gradio as gr

    weights = {"technical": float(technical), "aesthetic": float(aesthetic), "alignment": float(alignment)}
    try:
        request = check_request(prompt, strategy, settings, seed, weights, preset_name, budget)
    except UsageError as exc:
        raise gr.Error(_sentence(str(exc)), print_exception=False) from None
    history = list(history or [])
    skip = gr.skip()
    pictures = max_pictures(request.options)
    yield (f"Drawing up to {pictures} pictures, judging each one…", *[skip] * 5, history, skip)

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # Gradio's progress tracking follows this context

    def work() -> None:
        with _RUN_LOCK:
            try:
                outcome["run"] = context.run(run_search, request, True)
            except Exception as exc:  # noqa: BLE001 - shown to the user as a sentence
                outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    started = time.monotonic()
    while worker.is_alive():
        worker.join(timeout=1.0)
        if worker.is_alive():
            status = f"{stage_text(request.prompt, pictures)} ({time.monotonic() - started:.0f} s)"
            yield (status, *[skip] * 5, history, skip)
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
        history.insert(0, {"prompt": request.prompt, "seed": request.seed, "strategy": request.strategy,
                           "best": str(run.folder / "best.png"), "overall": result.best.aggregate})
    best_display = str(run.best_display) if run.best_display else None
    best_file = str(run.folder / "best.png") if result.best else None
    yield (summary_markdown(run), best_display, best_file, gallery, rounds_html(result) + trade_off_html(result),
           score_table_html(result), history, history_gallery(history))


STAGE_WORDS = {"generate": "Drawing pictures", "score": "Judging pictures"}


def stage_text(prompt: str | None = None, pictures: int | None = None) -> str:
    """Where the run is, read from its progress bars (one per stage) and from what it last asked the
    generator for: how many pictures so far, and the rewritten prompt a refinement round draws."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", [])):
        words = STAGE_WORDS.get(getattr(bar, "desc", ""))
        if words and bar.total:
            text = f"{words}: {bar.n} of {bar.total} done"
            if pictures and _DRAWING.get("drawn") and pictures > bar.total:
                text += f" · {_DRAWING['drawn']} of at most {pictures} pictures asked for"
            drawing = _DRAWING.get("prompt")
            if prompt and drawing and drawing != prompt:
                text += f" · trying the rewritten prompt “{drawing}”"
            return text
    return "Loading the models and starting"


def history_gallery(history: list[dict]) -> list[tuple[str, str]]:
    return [(h["best"], f"{h['prompt']} · {strategy_label(h.get('strategy', 'best-of-n')).lower()} · seed "
             f"{h['seed']} · {h['overall']:.2f}") for h in history]


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
def picture_cost(preset_name: str) -> int:
    """Denoiser evaluations one picture costs with a preset: steps, twice with classifier-free guidance."""
    preset = load_preset(preset_name)
    return preset.num_inference_steps * (2 if (preset.guidance_scale or 0) > 1 else 1)


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
                                   label=f"Compute limit in denoising steps (0: none; one picture costs about "
                                         f"{picture_cost(preset_name)})")
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

            event = run.click(generate_with_progress,
                              [prompt, strategy, seed, technical, aesthetic, alignment, budget, preset, history, *sliders],
                              [status, best, best_file, gallery, rounds, table, history, earlier], concurrency_limit=1,
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

"""What the page shows: pictures scaled up crisp, and the run's judgements, rounds and trade-offs as
HTML and Markdown in words for people (no internal names or ids)."""

from __future__ import annotations

import base64
import html

from PIL import Image

from apps.demo.judge_notes import contradiction, plain_rationale, spread_text
from apps.demo.strategies import strategy_label
from reward_model.interface import DIMENSIONS, DimensionScore, ScoreStatus
from t2i_guidance.result import ScoredCandidate, SearchResult, aggregate, pareto_front, png_bytes

BEST_DISPLAY_PX = 384  # the winner is the largest thing on the page
THUMB_PX = 96
ROUND_THUMB_PX = 128  # pictures of a round: large enough to judge by eye
DIMENSION_NAMES = {"technical": "Technical quality", "aesthetic": "Aesthetics", "alignment": "Matches the prompt"}
SCALE_TEXT = (
    "Each picture is judged on up to three things, each from **0 (very poor) to 5 (excellent)**: "
    "*technical quality* (sharpness, noise, artefacts), *aesthetics* (composition, balance, colour) and "
    "*how well it matches your prompt*. The overall score is their mean, weighted as set under "
    "“How much each judgement counts” on the Generate tab; a weight of 0 leaves that judgement out. Each "
    "judgement comes with the judge's reasoning."
)


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


def judgement_html(result: DimensionScore, prompt: str | None) -> str:
    """A score in words with how sure the judge is (its spread over samples; a warning when the score
    contradicts the judge's own reasoning) and the reasoning in plain words."""
    why = html.escape(plain_rationale(result.rationale) or "(no reasoning given)")
    spread = spread_text(result)
    doubt = contradiction(result, prompt)
    return (f"<b>{result.score:.2f}</b> – {score_word(result.score)}"
            + (f" <small class=spread>{html.escape(spread)}</small>" if spread else "")
            + (f'<div class="doubt">⚠ {html.escape(doubt)}</div>' if doubt else "")
            + f"<div class=why>{why}</div>")


def judgement_cell(result: DimensionScore | None, prompt: str | None = None) -> str:
    if result is None:
        return "<td>not asked (weight 0)</td>"
    if not result.ok:
        return f'<td class="failed">{html.escape(failure_sentence(result))}</td>'
    return f"<td>{judgement_html(result, prompt)}</td>"


def thumbnail_tag(image: Image.Image, size: int = THUMB_PX) -> str:
    data = base64.b64encode(png_bytes(upscale(image, size))).decode()
    return f'<img class="pixelated" src="data:image/png;base64,{data}" width="{size}" height="{size}" alt="">'


def trade_off_front(result: SearchResult) -> set[str]:
    """Candidates no other candidate beats on every judged dimension (result.json's Pareto front)."""
    return set(pareto_front(result.candidates, result.weights))


def picture_name(scored: ScoredCandidate) -> str:
    return f"Picture {scored.candidate.index + 1}"


def again(scored: ScoredCandidate) -> str:
    """How to draw this picture again, said apart from its name (seeds start at 0, pictures at 1)."""
    return f"to draw it again: seed {scored.candidate.seed}"


def round_of(result: SearchResult) -> dict[str, int]:
    """Candidate id -> round number (from 1), for strategies that work in rounds."""
    return {cid: r["round"] + 1 for r in result.rounds for cid in r.get("candidates", [])}


def ranked_first(result: SearchResult) -> list[ScoredCandidate]:
    """The ranking, then the candidates left out of it."""
    return result.ranking + [c for c in result.candidates if c.rank is None]


def gallery_caption(scored: ScoredCandidate) -> str:
    place = "best" if scored.rank == 1 else f"#{scored.rank}" if scored.rank else "not ranked"
    value = f" · {scored.aggregate:.2f}" if scored.aggregate is not None else ""
    return f"{place}{value} · {picture_name(scored)}"


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
    for scored in ranked_first(result):
        if scored.aggregate is None:
            overall = f'<span class="failed">{not_ranked_reason(scored)}</span>'
        else:
            overall = f"<b>{scored.aggregate:.2f}</b> / 5 – {score_word(scored.aggregate)}"
        place = "best" if scored.rank == 1 else (f"#{scored.rank}" if scored.rank else "–")
        badge = "<br><small>unbeaten balance</small>" if scored.id in front else ""
        where = f"<br><small>round {rounds[scored.id]}</small>" if scored.id in rounds else ""
        cells = "".join(judgement_cell(scored.scores.get(d), result.prompt) for d in dimensions)
        rows.append(
            f"<tr><td>{thumbnail_tag(scored.candidate.image)}</td>"
            f"<td><b>{place}</b><br>{picture_name(scored)}<br><small>{again(scored)}</small>"
            f"{where}{badge}</td><td>{overall}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{DIMENSION_NAMES[d]}</th>" for d in dimensions)
    note = (
        "<p><small>“Unbeaten balance”: no other picture is at least as good on every judgement and "
        "better on one; pick among these to trade one quality for another.</small></p>" if front else ""
    )
    return (f'<div class="table-scroll"><table class="scores"><tr><th>Picture</th><th>Place</th><th>Overall</th>'
            f"{head}</tr>{''.join(rows)}</table></div>{note}")


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


def summary_markdown(result: SearchResult) -> str:
    best = result.best
    seconds = result.costs.seconds.get("total", 0.0)
    rounds = f" in {len(result.rounds)} rounds" if len(result.rounds) > 1 else ""
    if best is None:
        return (f"**No picture could be judged**, so none was chosen ({len(result.candidates)} drawn{rounds} in "
                f"{seconds:.1f} s). The table below says what went wrong for each.")
    where = f", from round {round_of(result)[best.id]}" if len(result.rounds) > 1 else ""
    return (f"**Best: {picture_name(best)}** ({again(best)}{where}), overall "
            f"**{best.aggregate:.2f} / 5** – {score_word(best.aggregate)}. {len(result.candidates)} pictures "
            f"drawn{rounds} and judged in {seconds:.1f} s ({strategy_label(result.strategy).lower()}).")


def history_gallery(history: list[dict]) -> list[tuple[str, str]]:
    return [(h["best"], f"{h['prompt']} · {strategy_label(h.get('strategy', 'best-of-n')).lower()} · "
             f"{h['overall']:.2f}") for h in history]


def upload_judgement_html(row: dict[str, DimensionScore], prompt: str | None, weights: dict[str, float]) -> str:
    """An uploaded picture's judgements with their reasoning, and the overall score weighted as on the
    Generate tab (alignment left out when there is no prompt to judge against)."""
    parts = [f"<p><small>{html.escape(SCALE_TEXT.replace('**', '').replace('*', ''))}</small></p>"]
    if prompt:
        parts.append(f"<p>Judged against the prompt: <i>{html.escape(prompt)}</i></p>")
    else:
        parts.append("<p>No prompt given, so how well it matches a prompt is not judged.</p>")
    for dimension, result in row.items():
        parts.append(f"<h4>{DIMENSION_NAMES[dimension]}</h4>")
        if result.ok:
            parts.append(f"<p>{judgement_html(result, prompt)}</p>")
        else:
            parts.append(f'<p class="failed">{html.escape(failure_sentence(result))}</p>')
    used = {d: (w if d in row else 0.0) for d, w in weights.items()}
    total = aggregate(row, used) if any(used.values()) else None
    if total is not None:
        parts.append(f"<p>Overall (weighted as on the Generate tab): <b>{total:.2f}</b> / 5 – "
                     f"{score_word(total)}</p>")
    return "".join(parts)

"""What a search returns, and the run folder it is written to.

- The result: every candidate with its scores, the pick, the rounds, and what it cost (`SearchResult`),
  ranked by one number (`aggregate`: the weighted mean over the three dimensions, `parse_weights` reads
  "technical=1,aesthetic=1,alignment=2"; or its `lower_confidence_bound`), and the Pareto front.
- The run folder (`write_run`): the images, result.json and an HTML contact sheet, each file atomically.
"""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL.PngImagePlugin import PngInfo

from reward_model.interface import DIMENSIONS, DimensionScore
from t2i_guidance.generator import Candidate
from t2i_guidance.ledger import CostLedger

DEFAULT_WEIGHTS: dict[str, float] = {"technical": 1.0, "aesthetic": 1.0, "alignment": 1.0}


def parse_weights(text: str) -> dict[str, float]:
    """Parse "technical=1,aesthetic=1,alignment=2"; dimensions not named get weight 0."""
    weights = dict.fromkeys(DIMENSIONS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DIMENSIONS:
            raise ValueError(f"bad weight {part!r}: expected DIMENSION=NUMBER with DIMENSION in {DIMENSIONS}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"bad weight {part!r}: {value.strip()!r} is not a number") from None
        if weights[name] < 0:
            raise ValueError(f"bad weight {part!r}: weights must be >= 0")
    if not any(weights.values()):
        raise ValueError("at least one weight must be positive")
    return weights


def active_dimensions(weights: Mapping[str, float]) -> list[str]:
    return [d for d in DIMENSIONS if weights.get(d, 0.0) > 0]


def aggregate(scores: Mapping[str, DimensionScore], weights: Mapping[str, float]) -> float | None:
    """Weighted mean over the weighted dimensions, or None when any of them has no valid score.

    A candidate with a missing score is not ranked: filling the gap would invent a number.
    """
    total = weight_sum = 0.0
    for dimension in active_dimensions(weights):
        result = scores.get(dimension)
        if result is None or not result.ok:
            return None
        total += weights[dimension] * result.score
        weight_sum += weights[dimension]
    return total / weight_sum


def lower_confidence_bound(
    scores: Mapping[str, DimensionScore], weights: Mapping[str, float], lam: float
) -> float | None:
    """Weighted mean of (mean - lam * std) per dimension: resists the winner's curse of noisy scores.

    A dimension scored from one sample has no spread and counts at its value; None as for `aggregate`.
    """
    total = weight_sum = 0.0
    for dimension in active_dimensions(weights):
        result = scores.get(dimension)
        if result is None or not result.ok:
            return None
        total += weights[dimension] * (result.score - lam * (result.std or 0.0))
        weight_sum += weights[dimension]
    return total / weight_sum


RESULT_VERSION = 2  # 2: rounds, events, pareto_front, selection and the ledger's saved / by_scorer


@dataclass
class ScoredCandidate:
    candidate: Candidate
    scores: dict[str, DimensionScore]
    aggregate: float | None  # None: not ranked, some weighted dimension has no valid score
    rank: int | None = None  # 1 is best
    lcb: float | None = None  # weighted mean - lambda * std, when selection is by lower confidence bound

    @property
    def id(self) -> str:
        return self.candidate.id

    def selection_value(self, selection: str = "mean") -> float | None:
        return self.lcb if selection == "lcb" else self.aggregate

    def to_dict(self, image_path: str | None = None) -> dict:
        data = self.candidate.metadata()
        data.update(
            image=image_path,
            aggregate=self.aggregate,
            lcb=self.lcb,
            rank=self.rank,
            scores={d: s.to_dict() for d, s in self.scores.items()},
        )
        return data


@dataclass
class SearchResult:
    prompt: str  # the user's original prompt: alignment is always judged against it
    strategy: str
    weights: dict[str, float]
    candidates: list[ScoredCandidate]
    costs: CostLedger
    config: dict = field(default_factory=dict)
    selection: str = "mean"
    rounds: list[dict] = field(default_factory=list)  # per round: prompt used, candidate ids, best, notes
    events: list[dict] = field(default_factory=list)  # what went wrong and was handled (rejected rewrites...)

    @property
    def ranking(self) -> list[ScoredCandidate]:
        ranked = [c for c in self.candidates if c.rank is not None]
        return sorted(ranked, key=lambda c: c.rank)

    @property
    def best(self) -> ScoredCandidate | None:
        ranking = self.ranking
        return ranking[0] if ranking else None

    def to_dict(self, image_paths: dict[str, str] | None = None) -> dict:
        image_paths = image_paths or {}
        best = self.best
        return {
            "version": RESULT_VERSION,
            "strategy": self.strategy,
            "prompt": self.prompt,
            "weights": self.weights,
            "selection": self.selection,
            "config": self.config,
            "best": best.id if best else None,
            "ranking": [c.id for c in self.ranking],
            "pareto_front": pareto_front(self.candidates, self.weights),
            "rounds": self.rounds,
            "events": self.events,
            "candidates": [c.to_dict(image_paths.get(c.id)) for c in self.candidates],
            "costs": self.costs.to_dict(),
        }


def rank_candidates(candidates: list[ScoredCandidate], selection: str = "mean") -> None:
    """Rank by the selection value, highest first; ties go to the lower candidate index (repeatable)."""
    for scored in candidates:
        scored.rank = None
    ranked = [c for c in candidates if c.selection_value(selection) is not None]
    ranked.sort(key=lambda c: (-c.selection_value(selection), c.candidate.index))
    for position, scored in enumerate(ranked, start=1):
        scored.rank = position


def pareto_front(candidates: list[ScoredCandidate], weights: dict[str, float] | None = None) -> list[str]:
    """Ids of the candidates no other candidate beats on every judged dimension (the weighted ones, or all).

    Only candidates that were ranked-eligible (a valid score on each of those dimensions, not pruned by a
    cascade) take part; the front is in id order.
    """
    dims = [d for d in DIMENSIONS if (weights or {}).get(d, 0) > 0] or list(DIMENSIONS)
    points = {}
    for c in candidates:
        if c.aggregate is not None and all(d in c.scores and c.scores[d].ok for d in dims):
            points[c.id] = [c.scores[d].score for d in dims]

    def dominated(a: list[float]) -> bool:
        return any(all(x >= y for x, y in zip(b, a, strict=True)) and b != a for b in points.values())

    return sorted(i for i, p in points.items() if not dominated(p))


RUN_MARKERS = ("result.json", "candidates")


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file.

    mkstemp creates the file 0600; it gets the mode a plain open() would give (0666 less the umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def png_bytes(image, metadata: dict[str, str] | None = None) -> bytes:
    """Lossless PNG; `metadata` goes into its text chunks (readable with PIL's Image.text or exiftool)."""
    info = PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, value)  # iTXt: UTF-8, any prompt survives
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def candidate_metadata(result: SearchResult, scored: ScoredCandidate) -> dict[str, str]:
    """What made this picture and what it scored, to travel inside its PNG."""
    scores = {
        dimension: round(s.score, 4) if s.ok else s.status.value
        for dimension, s in scored.scores.items()
    }
    return {
        "prompt": scored.candidate.prompt,
        "seed": str(scored.candidate.seed),
        "settings": json.dumps(scored.candidate.settings, default=str),
        "scores": json.dumps(scores),
        "weighted_score": "" if scored.aggregate is None else f"{scored.aggregate:.4f}",
        "weights": json.dumps(result.weights),
        "strategy": result.strategy,
        "software": "t2i-guidance",
    }


def clean_text(text: str) -> str:
    """Control characters (NUL, escape ...) out of text bound for HTML; line breaks and tabs stay."""
    return "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc" else "\ufffd" for c in text)


def holds_run(out_dir: Path) -> bool:
    return any((out_dir / marker).exists() for marker in RUN_MARKERS)


class NotFiniteError(ValueError):
    """A run's numbers hold NaN or an infinity: result.json would not be valid JSON."""


def result_json(data: dict) -> str:
    """result.json's text; never NaN or Infinity (which json.dumps writes by default and no JSON reader
    accepts): inputs are checked finite before a run, so one here is a bug to report, not to hide."""
    try:
        return json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        raise NotFiniteError("the run's result holds a number that is not finite (NaN or infinity); "
                             "result.json was not written") from None


def clear_run(out_dir: Path) -> None:
    """Remove the files a run writes (result.json first: without it the folder is no complete run), so an
    overwrite with fewer candidates leaves none of the old ones behind. Other files stay."""
    for name in ("result.json", "best.png", "index.html"):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "candidates", ignore_errors=True)


def write_run(result: SearchResult, out_dir: Path) -> dict:
    """Write every file of a run, replacing any run already there.

    Everything is written into a hidden folder beside it first and then moved in, result.json last, so
    its presence means the run is complete, and an interrupted write leaves the old run or nothing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_paths = {scored.id: f"candidates/{scored.id}.png" for scored in result.candidates}
    data = result.to_dict(image_paths)
    text = result_json(data)  # refused before any file is touched
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".writing-"))
    try:
        for scored in result.candidates:
            metadata = candidate_metadata(result, scored)
            atomic_write_bytes(staging / image_paths[scored.id], png_bytes(scored.candidate.image, metadata))
        best = result.best
        if best is not None:
            atomic_write_bytes(staging / "best.png", png_bytes(best.candidate.image, candidate_metadata(result, best)))
        atomic_write_text(staging / "index.html", contact_sheet(result, image_paths))
        clear_run(out_dir)
        (staging / "candidates").mkdir(exist_ok=True)  # a run with no candidate still has the folder
        for name in ("candidates", "best.png", "index.html"):
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
        atomic_write_text(out_dir / "result.json", text)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data


def _score_cell(scored: ScoredCandidate, dimension: str) -> str:
    result = scored.scores[dimension]
    if result.ok:
        spread = f" ± {result.std:.2f}" if result.std else ""
        value = f"<b>{result.score:.2f}</b>{spread}"
    else:
        value = f'<span class="fail">{html.escape(result.status.value)}</span>'
    detail = result.rationale or result.error or result.raw
    text = html.escape(clean_text(detail)) if detail else "<i>no rationale</i>"
    return f"<tr><th>{dimension}</th><td>{value}</td></tr><tr><td colspan=2><details><summary>why</summary><p>{text}</p></details></td></tr>"


def _drawn_from(scored: ScoredCandidate, result: SearchResult) -> str:
    """The round, and the prompt that drew the candidate when it is not the user's."""
    text = f" · round {scored.candidate.extra['round']}" if "round" in scored.candidate.extra else ""
    if scored.candidate.prompt != result.prompt:
        text += f"<br>drawn from: {html.escape(scored.candidate.prompt)}"
    return text


def _rounds_section(result: SearchResult) -> str:
    """Each round's prompt (or noise pivot, or denoising checkpoint) and its best candidate, and every problem that was handled."""
    if not result.rounds and not result.events:
        return ""
    rows = []
    for r in result.rounds:
        drawn = html.escape(str(r.get("prompt") or r.get("checkpoint") or f"pivot {r.get('pivot')}"))
        links = " ".join(f'<a href="#{c}">{c}</a>' for c in r["candidates"])
        value = "–" if r["best_value"] is None else f"{r['best_value']:.3f}"
        rows.append(f"<tr><td>{r['round']}</td><td>{drawn}</td><td>{links}</td><td>{r['best'] or '–'}</td>"
                    f"<td>{value}</td></tr>")
    events = "".join(f"<li>{html.escape(json.dumps(e))}</li>" for e in result.events)
    return ("<h2>Rounds</h2><table><tr><th>round</th><th>prompt / pivot</th><th>candidates</th><th>best</th>"
            f"<th>value</th></tr>{''.join(rows)}</table>" + (f"<h3>Handled problems</h3><ul>{events}</ul>" if events else ""))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#fafafa;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.card{background:#fff;border:2px solid #ddd;border-radius:8px;padding:.6rem;width:220px}
.card.best{border-color:#1a7f37;box-shadow:0 0 0 3px #1a7f3744}
.card img{width:200px;height:200px;object-fit:contain;image-rendering:pixelated;background:#eee}
.card table{width:100%;font-size:.85rem}.card th{text-align:left;font-weight:normal;color:#555}
.fail{color:#b42318}.tag{font-size:.8rem;color:#555}.badge{color:#1a7f37;font-weight:bold}
details p{font-size:.8rem;white-space:pre-wrap;margin:.3rem 0}
"""


def contact_sheet(result: SearchResult, image_paths: dict[str, str]) -> str:
    best = result.best
    cards = []
    order = result.ranking + [c for c in result.candidates if c.rank is None]
    for scored in order:
        is_best = best is not None and scored.id == best.id
        aggregate = f"{scored.aggregate:.3f}" if scored.aggregate is not None else "not ranked"
        rows = "".join(_score_cell(scored, d) for d in scored.scores)
        badge = '<span class="badge">★ best</span> ' if is_best else ""
        cards.append(
            f'<div class="card{" best" if is_best else ""}" id="{scored.id}">'
            f'<img src="{html.escape(image_paths.get(scored.id, ""))}" alt="{scored.id}">'
            f"<div>{badge}<b>{scored.id}</b> <span class=tag>seed {scored.candidate.seed}"
            f" · rank {scored.rank or '–'} · {scored.candidate.nfes:g} NFEs{_drawn_from(scored, result)}</span></div>"
            f"<div>aggregate {aggregate}</div><table>{rows}</table></div>"
        )
    costs = result.costs
    rounds = _rounds_section(result)
    seconds = ", ".join(f"{k} {v:.2f}s" for k, v in costs.seconds.items())
    weights = ", ".join(f"{k}={v:g}" for k, v in result.weights.items() if v)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>t2i-guidance run</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(clean_text(result.prompt))}</h1>"
        f"<p>{html.escape(result.strategy)} · {len(result.candidates)} candidates · weights {weights}"
        f" · best: <b>{best.id if best else 'none (no candidate could be scored)'}</b></p>"
        f"<p class=tag>{costs.nfes:g} NFEs · {costs.scorer_requests} scorer requests"
        f" ({costs.scorer_cache_hits} cached) · {costs.generated_tokens} generated tokens · {seconds}"
        f" · peak RSS {costs.peak_rss_mb:.0f} MB</p>"
        f'{rounds}<div class="grid">{"".join(cards)}</div></body></html>'
    )

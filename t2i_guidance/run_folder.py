"""Writing a run to disk: images, result.json and an HTML contact sheet, each file atomically."""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

from PIL.PngImagePlugin import PngInfo

from t2i_guidance.result import ScoredCandidate, SearchResult

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

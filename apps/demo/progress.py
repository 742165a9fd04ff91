"""Where a running search is, in words for the status line: read from the run's progress bars and from
what it last asked the generator to draw."""

from __future__ import annotations

from typing import Any

STAGE_WORDS = {"generate": "Drawing pictures", "score": "Judging pictures"}
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

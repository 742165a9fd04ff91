"""The artist's pick: any candidate marked "my choice" (or one picture as better than another), shown
beside the judge's pick and, when the artist ticks "keep my picks", appended to a preference file on
this machine (`reward_model.data.preferences`), which can fine-tune the judge to their taste. Nothing is
sent anywhere."""

from __future__ import annotations

from pathlib import Path

from apps.demo.rendering import picture_name, ranked_first
from reward_model.data.preferences import DEFAULT_FOLDER, PickedPicture, append_preference, read_preferences
from t2i_guidance.result import SearchResult

ALL_OTHERS = "all"
_FOLDER = {"path": DEFAULT_FOLDER}  # where kept picks go; `python -m apps.demo --preferences DIR` sets it


def shown_folder() -> str:
    """The preference folder as the page names it: under the home folder as ~/..., else in full."""
    folder = preference_folder()
    try:
        return f"~/{folder.relative_to(Path.home()).as_posix()}"
    except ValueError:
        return str(folder)


def set_preference_folder(folder: str | Path) -> None:
    _FOLDER["path"] = Path(folder).expanduser()


def preference_folder() -> Path:
    return _FOLDER["path"]


def run_for_picks(result: SearchResult, originals: dict[str, Path]) -> dict:
    """What a pick needs of a finished run, as plain data for the page's state (the pictures as the
    judge saw them, at their own size)."""
    return {
        "prompt": result.prompt,
        "judge": result.best.id if result.best is not None else None,
        "pictures": [{"id": c.id, "name": picture_name(c), "seed": c.candidate.seed, "file": str(originals[c.id]),
                      "scores": {d: (s.score if s.ok else None) for d, s in c.scores.items()}}
                     for c in ranked_first(result)],
    }


def choice_options(run: dict) -> list[tuple[str, str]]:
    return [(p["name"], p["id"]) for p in run["pictures"]]


def worse_options(run: dict) -> list[tuple[str, str]]:
    return [("every other picture", ALL_OTHERS), *choice_options(run)]


def mark_pick(run: dict | None, choice: str | None, worse: str | None, keep: bool) -> str:
    """The artist's pick beside the judge's, in words; appended to the preference file when `keep`.
    Raises ValueError with a sentence for the page when the pick cannot be made."""
    if not run or not run.get("pictures"):
        raise ValueError("Generate pictures first, then mark the one you like best.")
    by_id = {p["id"]: p for p in run["pictures"]}
    if choice not in by_id:
        raise ValueError("Choose the picture you like best first.")
    worse = worse or ALL_OTHERS
    if worse == choice:
        raise ValueError("A picture cannot be better than itself: choose another one to compare it with.")
    beaten = [p for p in run["pictures"] if p["id"] != choice] if worse == ALL_OTHERS else [by_id[worse]]
    if not beaten:
        raise ValueError("There is only one picture: nothing to compare it with.")
    mine, judge = by_id[choice], by_id.get(run.get("judge") or "")
    than = "every other picture" if worse == ALL_OTHERS else beaten[0]["name"]
    words = f"**Your choice: {mine['name']}** (better than {than}). "
    if judge is None:
        words += "The judge picked none."
    elif judge["id"] == choice:
        words += "The judge picked the same one."
    else:
        words += f"**The judge picked {judge['name']}** – you disagree."
    if not keep:
        return words + " Not kept (tick “keep my picks” to teach the judge your taste)."
    folder = preference_folder()
    append_preference(folder, run["prompt"], _picked(mine), [_picked(p) for p in beaten],
                      judge_pick_seed=judge["seed"] if judge else None)
    count = sum(1 for _ in read_preferences(folder))
    return words + f" Kept on this computer ({count} picks so far, in {folder})."


def _picked(picture: dict) -> PickedPicture:
    return PickedPicture(Path(picture["file"]).read_bytes(), picture["seed"], picture["scores"])

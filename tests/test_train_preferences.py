"""An artist's picks as training data: the preference file the demo appends to, its dataset adapter, and
a few GRPO steps of the judge on it with the rank reward (a tiny model built from config)."""

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from reward_model.data.adapters import ADAPTERS, convert
from reward_model.data.preferences import (
    MARGIN,
    PREFERENCE_FILE,
    PickedPicture,
    append_preference,
    ordered_labels,
    read_preferences,
)
from reward_model.data.schema import read_records

CONFIG = Path(__file__).parents[1] / "reward_model" / "configs" / "my_taste.yaml"


COLOUR_NAMES = {(200, 0, 0): "red", (0, 0, 200): "blue", (0, 200, 0): "green"}


def picture(colour: tuple[int, int, int], seed: int, aesthetic: float | None) -> PickedPicture:
    """A picked picture as the demo keeps it: a world picture (a circle of that colour), PNG bytes."""
    from t2i_guidance.world.render import render_clean
    from t2i_guidance.world.scene import Scene, SceneObject

    buffer = io.BytesIO()
    render_clean(Scene((SceneObject("circle", COLOUR_NAMES[colour], "large", 0.5, 0.5),), "white"), 32).save(
        buffer, format="PNG")
    return PickedPicture(buffer.getvalue(), seed, {"aesthetic": aesthetic, "technical": 4.0})


def write_picks(folder):
    red, blue, green = picture((200, 0, 0), 0, 4.5), picture((0, 0, 200), 1, 2.0), picture((0, 200, 0), 2, None)
    append_preference(folder, "a red circle", better=blue, worse=[red, green], judge_pick_seed=0)  # judge disagrees
    append_preference(folder, "a red circle", better=red, worse=[green])
    return red, blue, green


def test_picks_are_appended_with_their_pictures_once(tmp_path):
    write_picks(tmp_path)
    entries = list(read_preferences(tmp_path))
    assert [len(e["worse"]) for e in entries] == [2, 1] and entries[0]["judge_pick_seed"] == 0
    assert entries[0]["better"]["seed"] == 1 and entries[0]["prompt"] == "a red circle"
    assert len(list((tmp_path / "pictures").iterdir())) == 3  # the red picture is stored once
    with open(tmp_path / PREFERENCE_FILE, "a", encoding="utf-8") as handle:
        handle.write('{"prompt": "cut sh')  # a write cut short by a crash is not a pick
    assert len(list(read_preferences(tmp_path))) == 2


def test_labels_follow_the_artist_and_keep_the_judges_scores_where_they_agree():
    assert ordered_labels(4.0, [2.0, 3.0]) == (4.0, [2.0, 3.0])  # already in the artist's order: unchanged
    top, others = ordered_labels(2.0, [4.5, None])
    assert top == 5.0 and others == [5.0 - MARGIN, 2.5]
    assert all(top - other >= MARGIN for other in others)


def test_the_adapter_orders_each_pick_as_the_artist_did(tmp_path):
    write_picks(tmp_path / "picks")
    assert "preferences" in ADAPTERS.names()
    out = tmp_path / "train.jsonl"
    assert convert("preferences", tmp_path / "picks", out) == 5
    records = list(read_records(out))
    by_pick: dict[str, list] = {}
    for record in records:
        assert record.task == "aesthetic" and record.prompt == "a red circle" and record.split == "train"
        assert Image.open(record.image).size == (32, 32)
        by_pick.setdefault(record.source, []).append(record.label)
    for labels in by_pick.values():  # the preferred picture first, above every picture it beat
        assert all(labels[0] - other >= MARGIN for other in labels[1:])
    assert len(by_pick) == 2


def test_the_rank_reward_prefers_the_artists_order(tmp_path):
    """On the adapter's records, a judge that orders a pick as the artist did earns more than one that
    orders it as the judge first did."""
    from reward_model.rewards import rank_reward

    write_picks(tmp_path / "picks")
    convert("preferences", tmp_path / "picks", tmp_path / "train.jsonl")
    first_pick = [r for r in read_records(tmp_path / "train.jsonl") if r.source == "preferences:1"]
    labels = [r.label for r in first_pick]  # blue (the artist's), red (the judge's), green

    def answers(scores):
        return [f"<think>x</think><answer>{s}</answer>" for s in scores]

    ids = [r.source + r.image for r in first_pick]
    artist = rank_reward(answers([4.0, 3.0, 2.0]), labels, ids, mode="fidelity", gather=lambda e: (e, 0))
    judge = rank_reward(answers([2.0, 4.5, 1.0]), labels, ids, mode="fidelity", gather=lambda e: (e, 0))
    assert sum(artist) > sum(judge)


def test_the_judge_trains_a_few_steps_on_the_picks(tmp_path):
    """The documented command: the shipped judge, GRPO with the rank reward, on the picks' file."""
    from safetensors.torch import load_file

    from reward_model.backends import EMBEDDED_DIR
    from reward_model.train import main

    if not (EMBEDDED_DIR / "config.json").exists():
        pytest.skip("embedded judge not shipped")
    write_picks(tmp_path / "picks")
    data = tmp_path / "train.jsonl"
    convert("preferences", tmp_path / "picks", data)
    out = tmp_path / "judge"
    stage = "grpo.stages.0"
    code = main(["grpo", "--config", str(CONFIG), "--set", f"data.train={data}", "--set", f"{stage}.model={EMBEDDED_DIR}",
                 "--set", f"{stage}.out={out}", "--set", f"{stage}.args.max_steps=2",
                 "--set", f"{stage}.args.learning_rate=0.001", "--set", f"{stage}.args.logging_steps=1",
                 "--set", "threads=1"])
    assert code == 0
    history = json.loads((out / "reward_history.json").read_text())
    assert len(history) == 2 and all("rewards/rank/mean" in entry for entry in history)
    assert any(entry["rewards/rank/mean"] > 0 for entry in history)  # the judge's answers were ranked
    start, trained = load_file(EMBEDDED_DIR / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not start[name].equal(trained[name]) for name in start if name in trained)

"""The world's IQA export: valid records, a spread of labels, facts, the scene split, determinism."""

import hashlib
import random
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

from reward_model.data.schema import read_records
from t2i_guidance.world.oracles import aesthetic_score, alignment_score, technical_score
from t2i_guidance.world.scene import is_held_out
from t2i_guidance.world.training import iqa_export

N = 90


def export(tmp_path: Path, seed: int, name: str, size: int = 64) -> Path:
    out = tmp_path / name
    iqa_export.export(out, N, seed=seed, size=size, progress=False)
    return out


def all_records(out: Path) -> list:
    return list(read_records(out / "train.jsonl")) + list(read_records(out / "test.jsonl"))


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(out.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_records_are_valid_with_spread_labels_and_facts(tmp_path):
    out = export(tmp_path, 0, "a")
    records = all_records(out)
    assert len(records) == N
    for task in iqa_export.TASKS:
        labels = [r.label for r in records if r.task == task]
        assert len(labels) == N // 3
        assert len({round(x) for x in labels}) >= 4, (task, labels)  # a spread over 0..5
    for r in records:
        image = Image.open(out / r.image)
        assert image.size == (64, 64)
        assert r.source == "world" and {"seen", "issues", "unmet"} <= set(r.facts) and r.facts["seen"]
        assert (r.prompt is not None) == (r.task == "alignment")
        if r.task == "alignment" and r.label < 5:
            assert r.facts["unmet"]
        if r.task == "technical" and r.label < 4:
            assert r.facts["issues"]


def test_same_seed_same_export_and_another_seed_differs(tmp_path):
    assert digest(export(tmp_path, 3, "a")) == digest(export(tmp_path, 3, "b"))
    assert digest(export(tmp_path, 4, "c")) != digest(export(tmp_path, 3, "a"))


def test_held_out_scenes_only_in_test(tmp_path):
    out = export(tmp_path, 1, "a")
    splits = {r.image: r.split for r in all_records(out)}
    assert set(splits.values()) == {"train", "test"}
    for index in range(N):  # remake each record's scene from its own stream
        rng = random.Random(f"1:{index}")
        split = "test" if rng.random() < iqa_export.TEST_FRACTION else "train"
        task = iqa_export.TASKS[index % 3]
        assert splits[f"images/{task}_{index:06d}.png"] == split
        assert is_held_out(iqa_export._scene(rng, split)) == (split == "test")


def test_oracles_agree_with_the_ground_truth_labels(tmp_path):
    out = export(tmp_path, 2, "a", size=112)
    records = all_records(out)
    judges = {
        "technical": lambda r, im: technical_score(im).score,
        "aesthetic": lambda r, im: aesthetic_score(im).score,
        "alignment": lambda r, im: alignment_score(im, r.prompt).score,
    }
    for task, judge in judges.items():
        rows = [r for r in records if r.task == task]
        read = [judge(r, Image.open(out / r.image)) for r in rows]
        assert spearmanr([r.label for r in rows], read)[0] > 0.85, task
    alignment = [r for r in records if r.task == "alignment"]
    exact = [abs(alignment_score(Image.open(out / r.image), r.prompt).score - r.label) < 0.01 for r in alignment]
    assert np.mean(exact) >= 0.9

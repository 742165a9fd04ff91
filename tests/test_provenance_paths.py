"""Committed provenance carries repository-relative paths, never the absolute paths of the machine."""

from __future__ import annotations

import json

from reward_model.export_embedded import export_embedded
from reward_model.provenance import REPO, portable
from tests.train_support import make_tiny_model


def test_portable_rewrites_absolute_paths_only():
    inside = str(REPO / "runs" / "refresh" / "grpo_stage2")
    value = {"source": inside, "outside": "/elsewhere/runs/sft", "steps": 3, "ratio": "5/5",
             "command": f"python -m x --out {inside} --steps 4", "nested": [{"path": REPO / "reward_model"}]}
    assert portable(value) == {"source": "runs/refresh/grpo_stage2", "outside": "sft", "steps": 3, "ratio": "5/5",
                               "command": "python -m x --out runs/refresh/grpo_stage2 --steps 4",
                               "nested": [{"path": "reward_model"}]}


def test_exported_provenance_has_no_absolute_path(tmp_path):
    source = make_tiny_model(tmp_path / "trained")
    target = tmp_path / "weights" / "tiny-omniquality-r"
    export_embedded(source, target, provenance={"fine_tuned_from": {"path": str(REPO / "reward_model" / "weights")},
                                                "command": f"python -m t2i_guidance.world.training.refresh_scorer --out {tmp_path}"})
    text = (target / "provenance.json").read_text()
    assert str(tmp_path) not in text and str(REPO) not in text
    provenance = json.loads(text)
    assert provenance["source"] == "trained"
    assert provenance["fine_tuned_from"]["path"] == "reward_model/weights"

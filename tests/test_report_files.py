"""A written run: files get the user's umask (issue 12, item 12), PNGs are lossless and carry what made
them (item 2), and control characters never reach the HTML (item 10)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from PIL import Image

from reward_model.interface import DimensionScore, ScoreStatus
from t2i_guidance.generator import Candidate
from t2i_guidance.ledger import CostLedger
from t2i_guidance.result import ScoredCandidate, SearchResult, rank_candidates, write_run


def small_result(prompt: str = "a red circle on the left") -> SearchResult:
    candidates = []
    for index, (value, status) in enumerate([(4.25, ScoreStatus.OK), (None, ScoreStatus.PARSE_FAILURE)]):
        image = Image.new("RGB", (8, 8), (30 * index, 200, 10))
        candidate = Candidate(f"c{index:03d}", index, 7 + index, prompt, image,
                              {"num_inference_steps": 4, "guidance_scale": 3.0}, 8.0)
        score = (DimensionScore("alignment", status, score=value, rationale="I see a red\x00 circle.")
                 if value is not None else DimensionScore.failure("alignment", status, "no <answer>"))
        candidates.append(ScoredCandidate(candidate, {"alignment": score}, value))
    rank_candidates(candidates)
    return SearchResult(prompt, "best-of-n", {"alignment": 1.0}, candidates, CostLedger(seconds={"total": 0.1}))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_run(small_result(), tmp_path)
    finally:
        os.umask(previous)
    for name in ("result.json", "index.html", "best.png", "candidates/c000.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_pngs_are_lossless_and_say_what_made_them(tmp_path):
    result = small_result()
    write_run(result, tmp_path)
    with Image.open(tmp_path / "best.png") as best:
        assert best.format == "PNG"
        assert list(best.convert("RGB").getdata()) == list(result.best.candidate.image.getdata())
        text = best.text
    assert text["prompt"] == "a red circle on the left" and text["seed"] == "7"
    assert json.loads(text["settings"])["num_inference_steps"] == 4
    assert json.loads(text["scores"]) == {"alignment": 4.25}
    with Image.open(tmp_path / "candidates" / "c001.png") as failed:
        assert json.loads(failed.text["scores"]) == {"alignment": "parse_failure"}
        assert failed.text["weighted_score"] == ""


def test_control_characters_never_reach_the_html(tmp_path):
    write_run(small_result("a red circle\x1b[2J on the left"), tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "\x00" not in page and "\x1b" not in page and "I see a red" in page

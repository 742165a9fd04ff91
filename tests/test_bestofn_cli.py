"""The best-of-N command line: bad input is one line and exit 2 before any model loads; a run writes
the documented files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reward_model.interface import register_scorer
from t2i_guidance import bestofn
from tests.pixel_scorers import brightness

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red circle above a small blue square"


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    from tests.tiny_pipelines import save_tiny_pipeline

    return str(save_tiny_pipeline("sd15", tmp_path_factory.mktemp("gen") / "sd15"))


@pytest.fixture(autouse=True, scope="module")
def register_test_scorers():
    from tests.pixel_scorers import FailingOnSomeScorer, ShuffledBrightnessScorer

    register_scorer("test-brightness", ShuffledBrightnessScorer)
    register_scorer(
        "test-failing", lambda: FailingOnSomeScorer(parse_fail={"c001"}, error={"c002"}, missing=set())
    )


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bestofn.main(args)
    return exit_info.value.code, capsys.readouterr()


def base_args(out, generator="./no/such/model"):
    return ["--prompt", PROMPT, "--n", "2", "--out", str(out), "--generator", generator, "--scorer", "test-brightness"]


@pytest.mark.parametrize(
    "change, message",
    [
        (["--prompt", "   "], "prompt is empty"),
        (["--prompt", ""], "prompt is empty"),
        (["--n", "0"], "--n must be between 1 and 256"),
        (["--n", "100000"], "--n must be between 1 and 256"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--scorer", "nope"], "unknown scorer 'nope'"),
        (["--generator", "./no/such/model"], "does not exist"),
        (["--generator", "/tmp/definitely/missing/model"], "does not exist"),
        (["--weights", "beauty=2"], "bad weight"),
        (["--steps", "0"], "--steps must be between 1 and"),
        (["--batch-size", "0"], "--batch-size must be between 1 and"),
        (["--n", "three"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, change, message, monkeypatch):
    # Any attempt to load a model would be a bug: fail loudly if it happens.
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    args = base_args(tmp_path / "out", generator=str(tmp_path))
    for i in range(0, len(change), 2):
        flag = change[i]
        if flag in args:
            args[args.index(flag) + 1] = change[i + 1]
        else:
            args += change[i : i + 2]
    (tmp_path / "model_index.json").write_text("{}")
    code, captured = run_cli(args, capsys)
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], captured.err


def test_output_folder_with_a_run_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text("{}")
    (tmp_path / "model_index.json").write_text("{}")
    code, captured = run_cli(base_args(out, generator=str(tmp_path)), capsys)
    assert code == 2 and "already holds a run" in captured.err


def test_output_path_that_is_a_file_or_unwritable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "model_index.json").write_text("{}")
    code, captured = run_cli(base_args(blocker, generator=str(tmp_path)), capsys)
    assert code == 2 and "is a file" in captured.err
    code, captured = run_cli(base_args(blocker / "inside", generator=str(tmp_path)), capsys)
    assert code == 2 and "not writable" in captured.err


def test_end_to_end_writes_the_documented_files(tmp_path, tiny_generator, capsys):
    out = tmp_path / "run"
    args = ["--prompt", PROMPT, "--n", "5", "--out", str(out), "--generator", tiny_generator,
            "--scorer", "test-brightness", "--steps", "2", "--batch-size", "2", "--seed", "7", "--quiet", "--json",
            "--weights", "technical=1,aesthetic=1,alignment=0"]
    assert bestofn.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert (out / "best.png").is_file() and (out / "index.html").is_file()
    assert sorted(p.name for p in (out / "candidates").iterdir()) == [f"c00{k}.png" for k in range(5)]
    assert json.loads((out / "result.json").read_text()) == result
    assert [c["seed"] for c in result["candidates"]] == [7, 8, 9, 10, 11]
    # The best is the brightest candidate, and every score is its own image's brightness.
    by_id = {c["id"]: c for c in result["candidates"]}
    for cand in by_id.values():
        value = brightness(Image.open(out / cand["image"]))
        assert cand["scores"]["technical"]["score"] == pytest.approx(value, abs=1e-6)
        assert set(cand["scores"]) == {"technical", "aesthetic"}
    assert result["best"] == max(by_id, key=lambda c: (by_id[c]["aggregate"], -by_id[c]["index"]))
    assert result["ranking"][0] == result["best"] and len(result["ranking"]) == 5
    costs = result["costs"]
    assert costs["nfes"] > 0 and costs["scorer_requests"] == 10
    assert {"generate", "score", "total"} <= set(costs["seconds"])
    html = (out / "index.html").read_text()
    assert f'class="card best" id="{result["best"]}"' in html and "mean brightness" in html
    assert list(Image.open(out / "best.png").getdata()) == list(
        Image.open(out / by_id[result["best"]]["image"]).getdata()
    )


def test_failed_candidates_are_reported_not_ranked(tmp_path, tiny_generator, capsys):
    out = tmp_path / "run"
    args = ["--prompt", PROMPT, "--n", "4", "--out", str(out), "--generator", tiny_generator,
            "--scorer", "test-failing", "--steps", "2", "--quiet", "--weights", "technical=1,aesthetic=1,alignment=0"]
    assert bestofn.main(args) == 0
    result = json.loads((out / "result.json").read_text())
    by_id = {c["id"]: c for c in result["candidates"]}
    assert by_id["c001"]["rank"] is None and by_id["c001"]["aggregate"] is None
    assert by_id["c001"]["scores"]["technical"]["status"] == "parse_failure"
    assert by_id["c002"]["scores"]["aesthetic"]["status"] == "error"
    assert set(result["ranking"]) == {"c000", "c003"}
    assert "parse_failure" in (out / "index.html").read_text()


def test_module_runs_as_a_program_and_fails_cleanly(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "t2i_guidance.bestofn", "--prompt", " ", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: the prompt is empty"

"""Every strategy from the command line and from the run builder, on a tiny world generator saved to disk
and the world's oracle scorer; bad input is one line and exit 2 before any model loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from t2i_guidance import cli, refine
from t2i_guidance.ledger import Budget
from t2i_guidance.search.run_builder import RunError, RunRequest, build_run, plan_run
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from tests.search_fixtures import PROMPT, SMALL

ROOT = Path(__file__).resolve().parents[1]
STRATEGY_ARGS = {
    "best-of-n": ["--n", "3"],
    "refine": ["--per-round", "2", "--max-rounds", "2", "--patience", "3"],
    "zero-order": ["--n", "2", "--neighbours", "2", "--rounds", "2", "--step-size", "0.4"],
    "cascade": ["--n", "4", "--keep", "2", "--cheap-dimensions", "aesthetic"],
    "particles": ["--n", "3", "--checkpoints", "1", "--resample-lambda", "8"],
    "path-search": ["--n", "4", "--keep", "2", "--checkpoints", "1", "--cheap-dimensions", "alignment"],
}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preset")
    WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=SMALL).save_pretrained(folder / "gen")
    path = folder / "tiny-world.json"
    path.write_text(json.dumps({"description": "test", "generator": "./gen", "scorer": "oracle",
                                "num_inference_steps": 2, "guidance_scale": 3.0,
                                "weights": "technical=1,aesthetic=1,alignment=2"}))
    return str(path)


def run_main(args, capsys, entry=cli.main):
    code = entry(args)
    return code, capsys.readouterr()


@pytest.mark.parametrize("strategy", sorted(STRATEGY_ARGS))
def test_each_strategy_runs_from_the_command_line(tmp_path, preset, capsys, strategy):
    out = tmp_path / strategy
    args = ["--strategy", strategy, "--prompt", PROMPT, "--preset", preset, "--out", str(out), "--quiet",
            "--json", *STRATEGY_ARGS[strategy]]
    code, captured = run_main(args, capsys)
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result == json.loads((out / "result.json").read_text())
    assert result["strategy"] == strategy and result["best"] == result["ranking"][0]
    assert result["config"]["preset"] == "tiny-world" and result["config"]["scorer"] == "oracle"
    assert set(result["pareto_front"]) <= set(result["ranking"])
    assert result["costs"]["nfes"] == 4.0 * len(result["candidates"])
    assert (out / "best.png").is_file() and len(list((out / "candidates").iterdir())) == len(result["candidates"])
    if strategy == "cascade":  # 4 x 3 dimensions for best-of-N vs 4 x aesthetic + 2 survivors x 2 more
        assert result["costs"]["saved"]["scorer_requests"] == 4 * 3 - (4 + 2 * 2)
        assert sum(not c["extra"].get("pruned") for c in result["candidates"]) == 2
    if strategy in ("refine", "zero-order"):
        assert len(result["rounds"]) == 2 and "<h2>Rounds</h2>" in (out / "index.html").read_text()
    if strategy in ("particles", "path-search"):  # one checkpoint, judged on the cheap dimensions
        n, cheap = len(result["candidates"]), len(result["config"]["cheap_dimensions"])
        assert result["costs"]["by_scorer"]["intermediate"]["requests"] == n * cheap
        assert result["costs"]["by_scorer"]["main"]["requests"] == n * 3
        assert len(result["rounds"]) == 1 and "step 1/2" in (out / "index.html").read_text()


@pytest.mark.parametrize("strategy", ["particles", "path-search"])
def test_denoising_path_strategies_on_a_tiny_stable_diffusion_from_the_command_line(tmp_path, preset, capsys, strategy):
    from tests.tiny_pipelines import save_tiny_pipeline

    folder = save_tiny_pipeline("sd15", tmp_path / "sd15")
    out = tmp_path / "out"
    code, captured = run_main(["--strategy", strategy, "--prompt", "a red circle", "--preset", preset,
                               "--generator", str(folder), "--height", "32", "--width", "32", "--steps", "3",
                               "--n", "3", "--checkpoints", "2", "--out", str(out), "--quiet", "--json"], capsys)
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["costs"]["nfes"] == 3 * 3 * 2 and len(result["rounds"]) == 2
    assert result["costs"]["by_scorer"]["intermediate"]["requests"] == 2 * 3 * 3


def test_refine_alias_and_budget_in_nfes(tmp_path, preset, capsys):
    out = tmp_path / "r"
    code, captured = run_main(["--prompt", PROMPT, "--preset", preset, "--out", str(out), "--quiet", "--json",
                               "--budget", "20", "--per-round", "2", "--patience", "9"], capsys, refine.main)
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["strategy"] == "refine" and result["costs"]["nfes"] == 20.0
    assert [len(r["candidates"]) for r in result["rounds"]] == [2, 2, 1]
    assert result["config"]["budget"] == {"nfes": 20.0, "seconds": None}


@pytest.mark.parametrize(
    "change, message",
    [
        (["--strategy", "annealing"], "unknown strategy 'annealing'"),
        (["--budget", "lots"], "bad budget"),
        (["--budget", "0"], "bad budget"),
        (["--strategy", "best-of-n", "--rounds", "3"], "option rounds does not apply to strategy 'best-of-n'"),
        (["--strategy", "refine", "--rewriter", "gpt"], "unknown rewriter 'gpt'"),
        (["--strategy", "refine", "--per-round", "0"], "per_round must be a whole number of at least 1"),
        (["--strategy", "zero-order", "--step-size", "-1"], "step_size must be positive"),
        (["--strategy", "cascade", "--cheap-scorer", "nope"], "unknown scorer 'nope'"),
        (["--strategy", "best-of-n", "--cheap-scorer", "oracle"], "does not apply to strategy"),
        (["--selection", "max"], "invalid choice"),
        (["--strategy", "particles", "--checkpoints", "-1"], "checkpoints must be a whole number >= 0"),
        (["--strategy", "particles", "--resample-lambda", "nan"], "resample_lambda must be a finite number"),
        (["--strategy", "path-search", "--keep", "0"], "keep must be a whole number of at least 1"),
        (["--strategy", "path-search", "--resample-lambda", "2"], "option resample_lambda does not apply"),
        (["--strategy", "best-of-n", "--cheap-mode", "answer-only"], "--cheap-mode does not apply"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--n", "0"], "--n must be between 1 and 256"),
        (["--strategy", "cascade", "--cheap-dimensions", "beauty"], "--cheap-dimensions: unknown dimension"),
        (["--strategy", "refine", "--cheap-dimensions", "aesthetic"], "option cheap_dimensions does not apply"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_model_loads(tmp_path, preset, capsys, monkeypatch, change, message):
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--prompt", PROMPT, "--preset", preset, "--out", str(tmp_path / "o"), *change])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


@pytest.mark.parametrize("strategy", sorted(STRATEGY_ARGS))
def test_each_strategy_from_the_run_builder(preset, strategy):
    options = {"best-of-n": {"n": 2}, "refine": {"per_round": 2, "max_rounds": 2},
               "zero-order": {"n": 2, "neighbours": 1, "rounds": 2}, "cascade": {"n": 3, "keep": 1},
               "particles": {"n": 3, "checkpoints": 1, "resample_lambda": 2.0},
               "path-search": {"n": 3, "checkpoints": 1, "keep": 1}}[strategy]
    plan = plan_run(RunRequest(preset=preset, strategy=strategy, strategy_options=options, device="cpu",
                               weights="aesthetic=1,alignment=1", budget=Budget(nfes=400)))
    assert plan.weights == {"technical": 0.0, "aesthetic": 1.0, "alignment": 1.0}
    run = build_run(plan)
    result = run(PROMPT, seed=2)
    assert result.strategy == strategy and result.best is not None
    assert result.config["preset"] == "tiny-world" and result.config["budget"]["nfes"] == 400
    assert all(set(c.scores) <= {"aesthetic", "alignment"} for c in result.candidates)
    # The same generator and scorer can be handed to another run (the demo and benchmarks reuse them).
    again = build_run(plan, generator=run.generator, scorer=run.scorer)(PROMPT, seed=2)
    assert [c.id for c in again.ranking] == [c.id for c in result.ranking]


def test_run_builder_refuses_bad_requests_without_loading(preset):
    with pytest.raises(RunError, match="unknown preset"):
        plan_run(RunRequest(preset="nope"))
    with pytest.raises(RunError, match="does not apply"):
        plan_run(RunRequest(preset=preset, strategy="zero-order", strategy_options={"keep": 2}))
    with pytest.raises(RunError, match="bad weight"):
        plan_run(RunRequest(preset=preset, weights="beauty=1"))


def test_search_module_runs_as_a_program_and_fails_cleanly(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "t2i_guidance.search", "--strategy", "nope", "--prompt", "x", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown strategy 'nope'")

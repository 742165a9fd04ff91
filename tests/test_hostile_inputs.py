"""Odd and hostile input for the command lines and what the demo calls: each is normalised or refused in
one line before any model loads; numbers are finite; user files are checked by type; Ctrl-C ends in one
line with nothing half-written; an overwrite leaves no stale file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2i_guidance import cli
from t2i_guidance.input_checks import UsageError, check_prompt
from t2i_guidance.world.plugin import world_prompt_problem

DRAWABLE = "a red circle above a small blue square on a white background"
GENERATOR = Path(__file__).resolve().parents[1] / "t2i_guidance" / "world" / "weights" / "generator"


@pytest.fixture(autouse=True)
def no_model_may_load(monkeypatch):
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr("t2i_guidance.registries.build_scorer", lambda *a, **k: pytest.fail("scorer loaded"))


def run_cli(args: list[str], capsys, strategy: str = "best-of-n") -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args, strategy=strategy)
    return exit_info.value.code, capsys.readouterr().err


def assert_one_error_line(code: int, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0], lines[0]


# ---- prompts: invisible marks removed, what the world cannot draw refused


def test_prompts_are_normalised_before_any_check():
    assert check_prompt("a red cafe\u0301") == "a red caf\u00e9"  # NFC: one character, as typed elsewhere
    assert check_prompt("a red\u200f circle\u200b on a\ufeff white background") == "a red circle on a white background"
    with pytest.raises(UsageError, match="empty"):
        check_prompt("\u200f\u200b\u2066")  # only invisible marks
    with pytest.raises(UsageError, match="must be text"):
        check_prompt(5)


@pytest.mark.parametrize("prompt, why", [
    (DRAWABLE + "\U0001f642", "'\U0001f642'"),
    (DRAWABLE + ".", "'.'"),
    (DRAWABLE + "!", "'!'"),
    ("a red circle on a blue background", "background can be white, black or gray, not blue"),
    ("a red circle on a background", "background can be white, black or gray"),
    ("a red circle on a white white background", "one background"),
    ("a red circle on a blue", "colour word that belongs to no shape"),
    ("a small large red circle", "size word that belongs to no shape"),
    ("a red circle,,, on the left", "',,,'"),  # one token to the tokenizer, and an unknown one
    ("a red circle above", "'above' needs a second shape"),
    ("a red circle on the left, sharp blurry", "exclude each other"),
])
def test_the_world_refuses_what_it_would_draw_wrongly(prompt, why):
    problem = world_prompt_problem(prompt)
    assert problem is not None and why in problem, problem


def test_an_invisible_mark_is_removed_not_refused(tmp_path, capsys):
    assert world_prompt_problem("a red\u200f circle on a white background") is None
    # Passing every check means reaching the model load, which the fixture turns into a failure.
    with pytest.raises(pytest.fail.Exception, match="loaded"):
        cli.main(["--prompt", "a red\u200f circle", "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("prompt, why", [
    ("a red circle on a blue background", "not blue"),
    (DRAWABLE + " \U0001f642", "\U0001f642"),
    ("a red circle\u200f!", "'!'"),
])
def test_the_cli_refuses_undrawable_prompts_in_one_line(tmp_path, capsys, prompt, why):
    code, err = run_cli(["--prompt", prompt, "--out", str(tmp_path / "o")], capsys)
    assert_one_error_line(code, err, why)
    assert "it draws only" in err


# ---- numbers: finite everywhere


@pytest.mark.parametrize("strategy, extra, message", [
    ("best-of-n", ["--selection", "lcb", "--lcb-lambda", "nan"], "--lcb-lambda must be a finite number"),
    ("best-of-n", ["--lcb-lambda", "inf"], "--lcb-lambda must be a finite number"),
    ("refine", ["--target", "nan"], "target must be a finite number"),
    ("zero-order", ["--step-size", "inf"], "step_size must be a finite number"),
    ("particles", ["--resample-lambda", "nan"], "finite"),
    ("best-of-n", ["--lcb-lambda", "1e308"], "between 0 and 100"),  # lambda * std would overflow
    ("zero-order", ["--step-size", "1e300"], "at most 100"),  # step^2 overflows: an all-zero neighbour
])
def test_non_finite_numbers_are_refused(tmp_path, capsys, strategy, extra, message):
    code, err = run_cli(["--prompt", DRAWABLE, "--out", str(tmp_path / "o"), *extra], capsys, strategy)
    assert_one_error_line(code, err, message)


def test_a_benchmark_strategy_with_a_nan_option_is_refused():
    from benchmarks.strategy_specs import parse_strategy

    with pytest.raises(ValueError, match="target must be a finite number"):
        parse_strategy("refine,target=NaN:embedded")


def test_a_yes_or_no_is_no_number():
    from benchmarks.strategy_specs import parse_strategy

    with pytest.raises(ValueError, match="n must be a number, got True"):
        parse_strategy("best-of-n,n=true:embedded")


def test_result_json_never_holds_nan(tmp_path):
    from t2i_guidance.result import NotFiniteError, write_run
    from tests.test_report_files import small_result

    result = small_result()
    result.candidates[0].aggregate = float("nan")
    with pytest.raises(NotFiniteError, match="not finite"):
        write_run(result, tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before any file is written


# ---- a user's preset file: checked by type, one line naming the file


@pytest.mark.parametrize("change, message", [
    ({"generator": 5}, "generator must be a string, got 5"),
    ({"num_inference_steps": "abc"}, 'num_inference_steps must be a whole number, got "abc"'),
    ({"num_inference_steps": True}, "num_inference_steps must be a whole number"),
    ({"weights": 3}, "weights must be a string, got 3"),
    ({"scorer_kwargs": []}, "scorer_kwargs must be an object"),
    ({"height": 0}, "height must be at least 1"),
    ({"colour": "red"}, "unknown field colour"),
])
def test_a_user_preset_of_the_wrong_types_is_one_line(tmp_path, capsys, change, message):
    data = {"description": "mine", "generator": str(GENERATOR), "scorer": "oracle", "num_inference_steps": 2,
            **change}
    (tmp_path / "mine.json").write_text(json.dumps(data))
    code, err = run_cli(["--prompt", DRAWABLE, "--preset", str(tmp_path / "mine.json"),
                         "--out", str(tmp_path / "o")], capsys)
    assert_one_error_line(code, err, message)
    assert "mine.json" in err


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected a JSON object"),
    ('{"guidance_scale": NaN}', "not readable JSON"),
    ("{", "not readable JSON"),
])
def test_a_preset_file_that_is_no_preset_is_one_line(tmp_path, capsys, text, message):
    (tmp_path / "mine.json").write_text(text)
    code, err = run_cli(["--prompt", DRAWABLE, "--preset", str(tmp_path / "mine.json"),
                         "--out", str(tmp_path / "o")], capsys)
    assert_one_error_line(code, err, message)


# ---- sizes, devices, output folders: refused before loading


@pytest.mark.parametrize("extra", [["--height", "33"], ["--height", "64"], ["--width", "16"]])
def test_a_size_the_world_model_cannot_draw_is_refused_before_loading(tmp_path, capsys, extra):
    code, err = run_cli(["--prompt", DRAWABLE, "--out", str(tmp_path / "o"), *extra], capsys)
    assert_one_error_line(code, err, "draws 32 x 32 pixel pictures only")


def test_the_world_models_own_size_passes(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="loaded"):
        cli.main(["--prompt", DRAWABLE, "--out", str(tmp_path / "o"), "--height", "32", "--width", "32"])


@pytest.mark.parametrize("device, message", [
    ("tpu", "--device must be cpu, cuda, cuda:N or mps"),
    ("cuda:99", "this machine has"),
    ("", "--device must be"),
])
def test_an_unknown_device_is_refused_before_loading(tmp_path, capsys, device, message):
    code, err = run_cli(["--prompt", DRAWABLE, "--out", str(tmp_path / "o"), "--device", device], capsys)
    assert_one_error_line(code, err, message)


@pytest.mark.parametrize("out", ["", "   "])
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["--prompt", DRAWABLE, "--out", out], capsys)
    assert_one_error_line(code, err, "--out is empty")
    assert list(tmp_path.iterdir()) == []


# ---- writing a run: no stale files, nothing half-written, Ctrl-C in one line


def test_an_overwrite_with_fewer_candidates_leaves_no_stale_ones(tmp_path):
    from t2i_guidance.result import rank_candidates, write_run
    from tests.test_report_files import small_result

    write_run(small_result(), tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    smaller = small_result()
    smaller.candidates = smaller.candidates[:1]
    rank_candidates(smaller.candidates)
    write_run(smaller, tmp_path)
    assert sorted(p.name for p in (tmp_path / "candidates").iterdir()) == ["c000.png"]
    assert len(json.loads((tmp_path / "result.json").read_text())["candidates"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.png", "candidates", "index.html", "notes.txt",
                                                          "result.json"]


def test_a_write_interrupted_midway_leaves_the_old_run_whole(tmp_path, monkeypatch):
    from t2i_guidance import result as run_folder
    from tests.test_report_files import small_result

    run_folder.write_run(small_result(), tmp_path)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return b"png"

    monkeypatch.setattr(run_folder, "png_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_folder.write_run(small_result("a blue square"), tmp_path)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # the old run, whole, and no hidden half-written folder


def test_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    def interrupted(plan, memory=None):
        raise KeyboardInterrupt

    monkeypatch.setattr("t2i_guidance.placement.load_generator", interrupted)  # the first model to load
    assert cli.main(["--prompt", DRAWABLE, "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: interrupted; no new run was written"]
    assert not any((tmp_path / "o").iterdir())

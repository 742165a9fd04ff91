"""Bad input the command lines must refuse in one line with exit 2, before any model loads (issue 12,
items 8 and 10): prompts the embedded world cannot draw, non-finite or huge numbers, empty model
folders, giant prompts, control characters, empty or repeated weights; reward_model.score likewise."""

from __future__ import annotations

import pytest

from t2i_guidance import bestofn
from t2i_guidance.world.plugin import world_prompt_problem

DRAWABLE = "a red circle above a small blue square on a white background"


@pytest.fixture(autouse=True)
def no_model_may_load(monkeypatch):
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr("t2i_guidance.registries.build_scorer", lambda *a, **k: pytest.fail("scorer loaded"))


def run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        bestofn.main(args)
    return exit_info.value.code, capsys.readouterr().err


def assert_one_error_line(code: int, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("preset", ["embedded", "embedded-oracle"])
@pytest.mark.parametrize(
    "prompt, why",
    [
        ("a cat on a sofa", "unknown words: cat, sofa"),
        ("a red", "no object"),
        ("دائرة حمراء فوق مربع أزرق", "unknown words"),
        ("עיגול אדום", "unknown words"),
        ("a red circle above a red square", "same colour"),
        ("a red circle next to a blue square", "unknown word: next"),
    ],
)
def test_embedded_presets_refuse_prompts_outside_the_grammar(tmp_path, capsys, preset, prompt, why):
    code, err = run_cli(["--prompt", prompt, "--preset", preset, "--out", str(tmp_path / "o")], capsys)
    assert_one_error_line(code, err, why)
    assert "it draws only" in err and "circle" in err and "e.g." in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_grammar_check_accepts_what_the_grammar_writes():
    import random

    from t2i_guidance.world.captions import caption
    from t2i_guidance.world.scene import sample_scene

    rng = random.Random(0)
    for seed in range(200):
        text = caption(sample_scene(seed), rng)
        assert world_prompt_problem(text) is None, text


def test_other_generators_take_any_prompt(tmp_path, capsys, monkeypatch):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    # Passing every check means reaching the model load, which the fixture turns into a failure.
    with pytest.raises(pytest.fail.Exception, match="loaded"):
        bestofn.main(["--prompt", "a cat on a sofa", "--generator", str(tmp_path / "gen"),
                      "--scorer", "oracle", "--out", str(tmp_path / "o")])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--guidance-scale", "nan"], "--guidance-scale must be a finite number"),
        (["--guidance-scale=-inf"], "--guidance-scale must be a finite number"),
        (["--guidance-scale", "inf"], "--guidance-scale must be a finite number"),
        (["--steps", "100000"], "--steps must be between 1 and 1,000"),
        (["--seed", str(2**70)], "--seed must be between 0 and"),
        (["--seed", "-1"], "--seed must be between 0 and"),
        # candidate k draws from seed + k: the second candidate's seed would overflow torch's range
        (["--seed", str(2**63 - 1), "--n", "2"], "--seed must be between 0 and 9,223,372,036,854,775,806"),
        (["--height", "0"], "--height must be between"),
        (["--width", "100000"], "--width must be between"),
        (["--weights", ""], "--weights is empty"),
        (["--weights", " , "], "--weights is empty"),
        (["--weights", "alignment=1,alignment=2"], "names alignment more than once"),
        (["--weights", "alignment=nan"], "must be finite"),
        (["--weights", "alignment=inf"], "must be finite"),
        (["--prompt", "a red circle " * 10_000], "the limit is 2,000"),
        (["--prompt", "a red\x00 circle"], "control characters (U+0000)"),
        (["--prompt", "a red circle\x1b[31m"], "control characters (U+001B)"),
        (["--negative-prompt", "blurry\x07"], "control characters (U+0007)"),
        (["--scorer", "oracle", "--scorer-mode", "prob-weighted"], "has no modes"),
        (["--scorer", "oracle", "--verdicts", "own"], "writes no checks; --verdicts is for omniquality-r"),
        (["--verdicts", "mine"], "--verdicts mine: unknown; choose own or world-grounded"),
    ],
)
def test_bad_numbers_and_text_are_one_line(tmp_path, capsys, extra, message):
    args = ["--prompt", DRAWABLE, "--out", str(tmp_path / "o"), *extra]
    code, err = run_cli(args, capsys)
    assert_one_error_line(code, err, message)
    assert "\x00" not in err and "\x1b" not in err


def test_an_empty_generator_folder_is_refused_before_the_scorer_loads(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = run_cli(["--prompt", DRAWABLE, "--generator", str(tmp_path / "empty"),
                         "--out", str(tmp_path / "o")], capsys)
    assert_one_error_line(code, err, "has no model_index.json")


def test_the_seed_bound_leaves_room_for_every_candidate():
    from t2i_guidance.input_checks import MAX_SEED, UsageError, check_seed

    assert MAX_SEED == 2**63 - 1  # torch.Generator.manual_seed's largest seed
    assert check_seed(MAX_SEED) == MAX_SEED and check_seed(MAX_SEED - 3, n=4) == MAX_SEED - 3
    assert check_seed(0, n=64) == 0
    for seed, n in ((MAX_SEED - 2, 4), (MAX_SEED, 2), (-1, 1)):
        with pytest.raises(UsageError, match="--seed must be between 0 and"):
            check_seed(seed, n)


def test_line_breaks_and_tabs_in_a_prompt_are_spaces():
    from t2i_guidance.input_checks import check_prompt

    assert check_prompt("  a red\tcircle\n on the left ") == "a red circle on the left"


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "required: --image"),
        (["--image", "a.png", "--mode", "fast"], "invalid choice"),
        (["--image", "a.png", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--image", "a.png", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["--image", "a.png", "--seed", "-3"], "--seed must be between"),
        (["--image", "a.png", "--samples", "x"], "invalid int value"),
        (["--image", "a.png", "--prompt", "x" * 5000], "the limit is 2,000"),
        (["--image", "a.png", "--prompt", "a\x00b"], "control characters"),
        (["--image", "a.png", "--prompt", "  "], "--prompt is empty"),
        (["--image", "a.png", "--dimensions", "sharpness"], "sharpness"),
    ],
)
def test_score_cli_usage_errors_are_one_line(capsys, args, message):
    from reward_model import score_cli as score

    with pytest.raises(SystemExit) as exit_info:
        code = score.main(args)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert_one_error_line(exit_info.value.code, err, message)
    assert "usage:" not in err


@pytest.mark.parametrize("cli", ["refine", "search-cascade", "search-zero-order"])
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", "a cat on a sofa"], "unknown words: cat, sofa"),
        (["--guidance-scale", "nan"], "--guidance-scale must be a finite number"),
        (["--weights", "alignment=1,alignment=2"], "names alignment more than once"),
        (["--scorer", "oracle", "--scorer-mode", "answer-only"], "has no modes"),
    ],
)
def test_every_search_cli_runs_the_same_checks(tmp_path, capsys, cli, extra, message):
    from t2i_guidance import cli as search_cli
    from t2i_guidance import refine

    main, strategy = {"refine": (refine.main, []), "search-cascade": (search_cli.main, ["--strategy", "cascade"]),
                      "search-zero-order": (search_cli.main, ["--strategy", "zero-order"])}[cli]
    with pytest.raises(SystemExit) as exit_info:
        main([*strategy, "--prompt", DRAWABLE, "--out", str(tmp_path / "o"), *extra])
    assert_one_error_line(exit_info.value.code, capsys.readouterr().err, message)


def test_the_plan_hands_mode_and_seed_to_scorers_that_take_them():
    from t2i_guidance.search.run_builder import RunRequest, plan_run

    plan = plan_run(RunRequest(preset="embedded", scorer_mode="prob-weighted", seed=5, strategy="cascade"))
    assert plan.scorer_kwargs["mode"] == "prob-weighted" and plan.scorer_kwargs["seed"] == 5
    assert plan.cheap[1]["mode"] == "prob-weighted" and plan.cheap[1]["seed"] == 5  # the embedded preset's cheap mode
    assert "seed" not in plan_run(RunRequest(preset="embedded-oracle", seed=5)).scorer_kwargs  # oracle takes none
    assert "seed" not in plan_run(RunRequest(preset="embedded")).scorer_kwargs  # no run seed, none handed on
    # the embedded preset reads alignment verdicts from the judge's description; --verdicts own undoes it
    assert plan_run(RunRequest(preset="embedded")).scorer_kwargs["verdicts"] == "world-grounded"
    own = plan_run(RunRequest(preset="embedded", scorer_options={"verdicts": "own"}, strategy="cascade"))
    assert own.scorer_kwargs["verdicts"] == "own" and own.cheap[1]["verdicts"] == "own"

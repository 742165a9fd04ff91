"""The input checks one by one: what each accepts, what it refuses and the one line it says, including the
edges (the bounds themselves, None for "not given", true/false passed as numbers)."""

from __future__ import annotations

import json
import math
import os
import tempfile

import pytest

from t2i_guidance.input_checks import (
    MAX_CANDIDATES,
    MAX_GUIDANCE_SCALE,
    MAX_SIDE,
    MAX_STEPS,
    OneLineParser,
    UsageError,
    accepts_keyword,
    check_device,
    check_drawable,
    check_finite_options,
    check_float,
    check_generation_values,
    check_image_size,
    check_int,
    check_model_location,
    check_n,
    check_output_dir,
    check_prompt,
    check_weights,
    fail,
)
from t2i_guidance.result import parse_weights
from t2i_guidance.world.captions import extended_vocabulary, vocabulary
from t2i_guidance.world.plugin import WORLD_PIPELINE


def refused(check, *args, **kwargs) -> str:
    with pytest.raises(UsageError) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_fail_and_the_parser_print_one_error_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        fail("no such thing")
    assert info.value.code == 2 and capsys.readouterr().err == "error: no such thing\n"
    with pytest.raises(SystemExit) as info:
        fail("broken", code=3)
    assert info.value.code == 3 and capsys.readouterr().err == "error: broken\n"
    parser = OneLineParser(prog="x")
    parser.add_argument("--n", type=int, required=True)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--n", "many"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: ") and "invalid int value" in err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err


def test_a_prompt_must_be_text_that_says_something():
    assert refused(check_prompt, 42) == "the prompt must be text, got 42"
    assert refused(check_prompt, b"a red circle").startswith("the prompt must be text")
    for empty in (None, "", "   ", "\t\n", "\u200b"):
        assert refused(check_prompt, empty) == "the prompt is empty"
    assert check_prompt("x" * 2000) == "x" * 2000  # exactly the limit passes
    assert refused(check_prompt, "x" * 2001) == "the prompt is 2,001 characters long; the limit is 2,000"
    assert refused(check_prompt, "a\x01b\x00c\x01") == "the prompt contains control characters (U+0000, U+0001)"


def test_whole_numbers_between_bounds_none_passes():
    assert check_int("--steps", None, 1, 10) is None
    assert check_int("--steps", 1, 1, 10) == 1 and check_int("--steps", 10, 1, 10) == 10  # both bounds pass
    assert refused(check_int, "--steps", 0, 1, 10) == "--steps must be between 1 and 10, got 0"
    assert refused(check_int, "--steps", 11, 1, 10) == "--steps must be between 1 and 10, got 11"
    assert refused(check_int, "--steps", 12345, 1, 10) == "--steps must be between 1 and 10, got 12,345"
    assert refused(check_int, "--steps", True, 0, 10) == "--steps must be a whole number, got True"
    assert refused(check_int, "--steps", 2.0, 1, 10) == "--steps must be a whole number, got 2.0"
    assert refused(check_int, "--steps", "3", 1, 10) == "--steps must be a whole number, got '3'"


def test_finite_numbers_between_bounds_none_passes():
    assert check_float("--scale", None, 0.0) is None
    assert check_float("--scale", 0.0, 0.0, 2.0) == 0.0 and check_float("--scale", 2.0, 0.0, 2.0) == 2.0
    assert check_float("--scale", 3, 0.0) == 3  # a whole number is a number; no upper bound by default
    assert check_float("--scale", 1e300, 0.0) == 1e300
    assert refused(check_float, "--scale", 2.5, 0.0, 2.0) == "--scale must be a finite number between 0 and 2, got 2.5"
    assert refused(check_float, "--scale", -0.5, 0.0, 2.0) == "--scale must be a finite number between 0 and 2, got -0.5"
    assert refused(check_float, "--scale", -0.5, 0.0) == "--scale must be a finite number >= 0, got -0.5"
    assert refused(check_float, "--scale", math.inf, 0.0) == "--scale must be a finite number >= 0, got inf"
    assert refused(check_float, "--scale", math.nan, 0.0, 2.0).endswith("got nan")
    assert refused(check_float, "--scale", False, 0.0) == "--scale must be a number, got False"
    assert refused(check_float, "--scale", "1.5", 0.0) == "--scale must be a number, got '1.5'"


def test_strategy_options_must_be_finite_numbers_not_yes_or_no():
    check_finite_options({"n": 4, "target": 3.5, "lcb_lambda": 0.0, "name": "x"})  # passes
    assert refused(check_finite_options, {"n": 4, "refine": True}) == "refine must be a number, got True"
    assert refused(check_finite_options, {"a": 1.0, "target": math.nan}) == "target must be a finite number, got nan"
    assert refused(check_finite_options, {"step_size": -math.inf}) == "step_size must be a finite number, got -inf"


def test_devices_are_checked_before_a_model_loads():
    assert check_device(None) is None and check_device("cpu") == "cpu"
    assert refused(check_device, "gpu0") == "--device must be cpu, cuda, cuda:N or mps, got 'gpu0'"
    assert "CUDA device" in refused(check_device, "cuda:999")


def test_generation_values_check_every_setting_at_its_bounds():
    ok = {"steps": MAX_STEPS, "guidance_scale": MAX_GUIDANCE_SCALE, "height": MAX_SIDE, "width": 8,
          "batch_size": MAX_CANDIDATES, "seed": 0, "candidates": 4}
    check_generation_values(**ok)
    check_generation_values(**{**ok, "guidance_scale": None, "height": None, "width": None, "batch_size": None,
                               "seed": None})
    check_generation_values(**{**ok, "guidance_scale": 0.0, "steps": 1, "height": 8, "width": MAX_SIDE,
                               "batch_size": 1})
    cases = [
        ("steps", 0, "--steps must be between 1 and 1,000, got 0"),
        ("steps", MAX_STEPS + 1, "--steps must be between 1 and 1,000, got 1,001"),
        ("guidance_scale", -0.1, "--guidance-scale must be a finite number between 0 and 100, got -0.1"),
        ("guidance_scale", MAX_GUIDANCE_SCALE + 1, "--guidance-scale must be a finite number between 0 and 100"),
        ("height", 7, "--height must be between 8 and 4,096, got 7"),
        ("height", MAX_SIDE + 1, "--height must be between 8 and 4,096, got 4,097"),
        ("width", 7, "--width must be between 8 and 4,096, got 7"),
        ("width", MAX_SIDE + 1, "--width must be between 8 and 4,096, got 4,097"),
        ("batch_size", 0, "--batch-size must be between 1 and 256, got 0"),
        ("batch_size", MAX_CANDIDATES + 1, "--batch-size must be between 1 and 256, got 257"),
        ("seed", 2**63 - 3, "--seed must be between 0 and 9,223,372,036,854,775,804"),  # 4 candidates need room
    ]
    for name, value, message in cases:
        assert refused(check_generation_values, **{**ok, name: value}).startswith(message), name
    check_generation_values(**{**ok, "seed": 2**63 - 3, "candidates": 1})


def test_weights_refuse_nothing_repeats_and_non_finite_numbers():
    assert check_weights(" technical = 1 , alignment=2 ", parse_weights)["alignment"] == 2.0
    assert check_weights("alignment=1,", parse_weights)["alignment"] == 1.0  # a trailing comma names nothing
    for empty in ("", " ", ",,", " , "):
        assert refused(check_weights, empty, parse_weights).startswith("--weights is empty")
    assert refused(check_weights, "aesthetic=1, technical=1,aesthetic=2,technical =3", parse_weights) == (
        "--weights names aesthetic, technical more than once")
    assert refused(check_weights, "alignment=1,technical=inf", parse_weights) == (
        "--weights must be finite numbers, got technical=inf")
    assert refused(check_weights, "technical=inf,alignment=nan", parse_weights) == (
        "--weights must be finite numbers, got technical=inf, alignment=nan")


def test_accepts_keyword_reads_the_signature():
    def factory(prompt, *, seed=0):
        return prompt

    assert accepts_keyword(factory, "seed") and not accepts_keyword(factory, "mode")
    assert accepts_keyword(dict, "seed") is False  # no signature to read: it takes no such keyword


def world_folder(tmp_path, sample_size=32):
    folder = tmp_path / "world"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": WORLD_PIPELINE}))
    (folder / "unet" / "config.json").write_text(json.dumps({"sample_size": sample_size}))
    return str(folder)


def test_the_world_generator_refuses_prompts_and_sizes_it_cannot_draw(tmp_path):
    folder = world_folder(tmp_path)
    check_drawable("a red circle above a small blue square on a white background", folder)
    assert "cannot draw this prompt" in refused(check_drawable, "a cat on a sofa", folder)
    assert "not trained on counts" in refused(check_drawable, "three red squares", folder)
    # the generator's own tokenizer decides: one that knows the count words draws counting prompts
    words = [*vocabulary(), *extended_vocabulary()]
    (tmp_path / "world" / "tokenizer").mkdir()
    (tmp_path / "world" / "tokenizer" / "tokenizer.json").write_text(
        json.dumps({"model": {"vocab": {word: index for index, word in enumerate(words)}}}))
    check_drawable("three red squares", folder)
    check_image_size(folder, None, None)
    check_image_size(folder, 32, 32)
    for height, width in ((64, None), (None, 64), (32, 16)):
        assert refused(check_image_size, folder, height, width) == (
            "the embedded model draws 32 x 32 pixel pictures only; leave out --height and --width")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    check_drawable("a cat on a sofa", str(other))
    check_image_size(str(other), 64, 48)


def test_the_candidate_count_is_between_1_and_the_maximum():
    assert check_n(1) == 1 and check_n(MAX_CANDIDATES) == MAX_CANDIDATES
    assert refused(check_n, 0) == "--n must be between 1 and 256, got 0"
    assert refused(check_n, MAX_CANDIDATES + 1) == "--n must be between 1 and 256, got 257"


def test_a_model_location_is_a_folder_that_exists_or_a_hub_id(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model_index.json").write_text("{}")
    (tmp_path / "file").write_text("")
    assert check_model_location(str(tmp_path / "model"), "generator", "model_index.json") == str(tmp_path / "model")
    assert refused(check_model_location, str(tmp_path / "file"), "generator") == (
        f"generator {str(tmp_path / 'file')!r} is a file, not a model folder")
    (tmp_path / "bare").mkdir()
    assert check_model_location(str(tmp_path / "bare"), "scorer") == str(tmp_path / "bare")  # no index asked for
    assert refused(check_model_location, str(tmp_path / "bare"), "scorer", "config.json") == (
        f"scorer folder {str(tmp_path / 'bare')!r} has no config.json: not a saved model")
    assert check_model_location("org/model-1.5", "generator") == "org/model-1.5"
    assert check_model_location("Org_2/name_x.y", "generator") == "Org_2/name_x.y"
    for missing in ("./org/model", "/no/such/model", "~/org", "model", "org/", "/org", "-org/model",
                    "org/model/extra", "org /model", "org/mo del", str(tmp_path / "gone")):
        assert refused(check_model_location, missing, "generator") == f"generator path {missing!r} does not exist"


def test_a_home_relative_model_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models" / "gen").mkdir(parents=True)
    assert check_model_location("~/models/gen", "generator") == str(tmp_path / "models" / "gen")


def test_the_output_folder_is_made_and_must_be_writable_and_free(tmp_path, monkeypatch):
    for empty in ("", "  "):
        assert refused(check_output_dir, empty, False) == "--out is empty; name the folder for the run"
    made = check_output_dir(str(tmp_path / "a" / "b"), False)
    assert made == tmp_path / "a" / "b" and made.is_dir() and not any(made.iterdir())
    (tmp_path / "file").write_text("")
    assert refused(check_output_dir, str(tmp_path / "file"), True) == (
        f"output {str(tmp_path / 'file')!r} is a file, not a folder")
    (made / "result.json").write_text("{}")
    assert refused(check_output_dir, str(made), False) == (
        f"output folder {str(made)!r} already holds a run (use --overwrite to replace it)")
    assert check_output_dir(str(made), True) == made
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_output_dir("~/c", False) == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_an_output_folder_that_cannot_be_written_is_refused_with_the_reason(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_space)
    assert refused(check_output_dir, str(tmp_path / "o"), False) == (
        f"output folder {str(tmp_path / 'o')!r} is not writable: No space left on device")
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda *a, **k: (_ for _ in ()).throw(OSError("full")))
    assert refused(check_output_dir, str(tmp_path / "o"), False) == (
        f"output folder {str(tmp_path / 'o')!r} is not writable: full")


def test_an_output_folder_that_refuses_writes_only_by_its_mode_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert refused(check_output_dir, str(tmp_path / "o"), False) == f"output folder {str(tmp_path / 'o')!r} is not writable"


def test_the_write_probe_is_made_in_the_output_folder_itself(tmp_path, monkeypatch):
    read_only = tmp_path / "mounted"
    real = tempfile.NamedTemporaryFile

    def read_only_there(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, read_only):
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only_there)
    assert refused(check_output_dir, str(read_only), False) == (
        f"output folder {str(read_only)!r} is not writable: Read-only file system")
    assert check_output_dir(str(tmp_path / "elsewhere"), False) == tmp_path / "elsewhere"

"""Odd input for `benchmarks.run` and `reward_model.score`: a user's prompts the preset's model cannot
draw, damaged prompt and rows files, an empty --out, an unknown device; each refused in one line (or a
broken last row skipped with a warning), before any model loads."""

from __future__ import annotations

import json

import pytest

from benchmarks.rows import RowsError, RowWriter, read_rows
from benchmarks.run import main as run_main


@pytest.fixture(autouse=True)
def no_model_may_load(monkeypatch):
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr("t2i_guidance.registries.build_scorer", lambda *a, **k: pytest.fail("scorer loaded"))


def bench_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--strategies", "unguided:embedded", "--quiet", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error:") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("lines, message", [
    (["a red circle on the left", "a photo of a cat on a sofa"], "prompt p00001 of file:"),
    (["a red circle on a blue background"], "not blue"),
    (["a red circle on the left\U0001f642"], "\U0001f642"),
])
def test_a_prompt_file_with_prompts_the_model_cannot_draw_is_refused(tmp_path, capsys, lines, message):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(lines) + "\n")
    err = bench_error(["--out", str(tmp_path / "run"), "--prompt-set", f"file:{path}"], capsys)
    assert message in err and "cannot draw" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, message", [
    ('{"prompt": "a red circle on the left"}\nnot json\n', "mine.jsonl"),
    ('["a red circle on the left"]\n', "mine.jsonl"),
    ('{"text": "a red circle on the left"}\n', "has no 'prompt' field"),
    ('{"prompt": 5}\n', "the prompt must be text"),
    ("\n\n", "holds no prompt"),
])
def test_a_damaged_prompt_file_is_one_line_naming_it(tmp_path, capsys, text, message):
    path = tmp_path / "mine.jsonl"
    path.write_text(text)
    err = bench_error(["--out", str(tmp_path / "run"), "--prompt-set", f"file:{path}"], capsys)
    assert message in err


@pytest.mark.parametrize("strategy, message", [
    ("best-of-4,steps=nan:embedded", "--steps must be a whole number, got 'nan'"),  # was a TypeError traceback
    ("best-of-4,batch_size=true:embedded", "--batch-size must be a whole number, got True"),
    ("best-of-4,guidance_scale=Infinity:embedded", "--guidance-scale must be a finite number"),
    ("best-of-4,height=64:embedded", "draws 32 x 32 pixel pictures only"),
])
def test_strategy_settings_of_the_wrong_type_are_one_line(tmp_path, capsys, strategy, message):
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--out", str(tmp_path / "run"), "--strategies", strategy])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("args, message", [
    (["--out", ""], "--out is empty"),
    (["--out", "run", "--device", "tpu"], "--device must be"),
])
def test_bench_out_and_device_are_checked(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert message in bench_error(args, capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_broken_last_row_ending_in_a_newline_is_skipped_with_a_warning_and_cut(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    with RowWriter(path) as writer:
        writer.append({"a": 1})
    with open(path, "a") as handle:
        handle.write('{"a": 2, "half\n')  # a broken line that still ends in a newline
    assert read_rows(path) == [{"a": 1}]
    assert "line 2 is not a complete row" in capsys.readouterr().err
    with RowWriter(path) as writer:  # appends after cutting it, so it never ends up mid-file
        writer.append({"a": 3})
    assert read_rows(path) == [{"a": 1}, {"a": 3}]
    assert path.read_text().count("\n") == 2


def test_a_row_broken_before_the_last_is_refused(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n{"a": 3}\n')
    with pytest.raises(RowsError, match="rows.jsonl line 2 is not a JSON row"):
        read_rows(path)


def test_a_damaged_rows_file_stops_a_resumed_benchmark_in_one_line(tmp_path, capsys):
    from tests.test_bench_runner import GENERATOR

    out = tmp_path / "run"
    preset = tmp_path / "fast.json"
    preset.write_text(json.dumps({"description": "t", "generator": str(GENERATOR), "scorer": "oracle",
                                  "num_inference_steps": 1}))
    args = ["--out", str(out), "--per-task", "1", "--images", "1", "--strategies", f"unguided:{preset}"]
    with pytest.raises(pytest.fail.Exception, match="loaded"):  # config.json written, then no model may load
        run_main([*args, "--quiet"])
    (out / "rows.jsonl").write_text('oops\n{"a": 1}\n')
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main([*args, "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "line 1 is not a JSON row" in err, err


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or mps"),
    (["--device", "cuda:99"], "this machine has"),
    (["--prompt", "\u200f\u200b"], "--prompt is empty"),
])
def test_score_cli_refuses_before_loading(tmp_path, capsys, args, message):
    from reward_model.score_cli import main as score_main

    assert score_main(["--image", str(tmp_path / "none.png"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_score_cli_normalises_the_prompt():
    from reward_model.score_cli import check_prompt

    assert check_prompt("a red\u200f circle\u00a0 cafe\u0301") == "a red circle caf\u00e9"


def test_ctrl_c_stops_a_benchmark_in_one_line_keeping_finished_rows(tmp_path, capsys, monkeypatch):
    def interrupted(self, spec, record, image_index):
        raise KeyboardInterrupt

    monkeypatch.setattr("benchmarks.run_engine.Runner.run_item", interrupted)
    out = tmp_path / "run"
    assert run_main(["--out", str(out), "--per-task", "1", "--images", "1", "--quiet",
                     "--strategies", "unguided:embedded"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: interrupted;") and "resume" in err, err
    assert not (out / "rows.jsonl").read_text()  # opened for appending, nothing half-written into it

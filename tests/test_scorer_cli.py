"""python -m reward_model.score on real image files."""

from __future__ import annotations

import json
import subprocess
import sys

from reward_model.score_cli import main
from tests.scorer_fixtures import TRAIN_PROMPT, random_image, trained_scorer_dir  # noqa: F401 - fixture


def test_table_with_good_and_bad_files(trained_scorer_dir, tmp_path, capsys):  # noqa: F811
    good = tmp_path / "good.png"
    random_image(1, (80, 60)).save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    argv = [
        "--image",
        str(good),
        "--image",
        str(empty),
        "--image",
        str(text),
        "--prompt",
        TRAIN_PROMPT,
        "--dimensions",
        "technical,alignment",
        "--model",
        trained_scorer_dir,
        "--decoding",
        "greedy",
        "--max-new-tokens",
        "24",
    ]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 1  # some images failed; the good one is still scored
    lines = out.splitlines()
    assert lines[0].split() == ["image", "dimension", "score", "std", "status", "tokens", "note"]
    good_rows = [line.split() for line in lines if line.startswith(str(good))]
    assert [row[1:3] for row in good_rows] == [["technical", "3.47"], ["alignment", "1.25"]]
    assert any("empty file" in line for line in lines if line.startswith(str(empty)))
    assert any("not an image" in line for line in lines if line.startswith(str(text)))


def test_json_output(trained_scorer_dir, tmp_path, capsys):  # noqa: F811
    image = tmp_path / "a.png"
    random_image(2).save(image)
    code = main(
        [
            "--image",
            str(image),
            "--dimensions",
            "technical",
            "--model",
            trained_scorer_dir,
            "--decoding",
            "greedy",
            "--max-new-tokens",
            "24",
            "--json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    technical = rows[0]["scores"]["technical"]
    assert rows[0]["image"] == str(image) and technical["status"] == "ok" and technical["score"] == 3.47
    assert technical["rationale"] == "sharp" and "<answer>" in technical["raw"]


def test_bad_arguments_give_one_line_and_exit_2(tmp_path):
    image = tmp_path / "a.png"
    random_image(3).save(image)
    for extra in (
        ["--model", str(tmp_path / "no-such-model")],
        ["--dimensions", "sharpness"],
        ["--samples", "0"],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "reward_model.score", "--image", str(image), *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 2
        assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("error:")

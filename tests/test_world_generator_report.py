"""The world generator report's counting row: held-out counting prompts, the count judged from pixels."""

from __future__ import annotations

import json

import pytest

from benchmarks import world_generator_report as report
from t2i_guidance.world.captions import parse_prompt
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import COUNTS, is_held_out


def test_counting_prompts_are_held_out_contents_with_every_attribute_named():
    scenes = report.held_out_count_scenes(12)
    assert all(is_held_out(scene) for scene in scenes)
    assert [len(scene.objects) for scene in scenes[:3]] == list(COUNTS)
    assert len({scene.content_key() for scene in scenes}) == 12
    for scene in scenes:
        request = parse_prompt(report.count_prompt(scene)).objects[0]
        obj = scene.objects[0]
        assert (request.count, request.shape, request.colour, request.size) == (
            len(scene.objects), obj.shape, obj.colour, obj.size)


def test_count_is_right_only_for_the_asked_number():
    scene = report.held_out_count_scenes(2)[1]  # three objects
    picture = render_scene(scene, 32)
    prompt = report.count_prompt(scene)
    assert report.count_is_right(picture, prompt)
    assert not report.count_is_right(picture, prompt.replace("three", "two", 1))


def test_report_runs_with_the_grown_tokenizer_and_writes_the_counting_row(tmp_path, capsys):
    generator = tmp_path / "generator"
    pipe = WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=(8, 16, 16))
    assert "three" in pipe.tokenizer.get_vocab()
    pipe.save_pretrained(generator)
    out = tmp_path / "results"
    report.main(["--generator", str(generator), "--prompts", "2", "--count-prompts", "3", "--seeds", "1",
                 "--n-best", "2", "--steps", "2", "--bank", "10", "--timing-runs", "1", "--threads", "1",
                 "--out-dir", str(out)])
    written = json.loads((out / "world_generator.json").read_text())
    counting = written["counting"]
    assert counting["all"]["prompts"] == 3 and set(counting["per_count"]) == {"2", "3", "4"}
    assert counting["true_renders_count_accuracy"] > 0.5  # the judge counts true renders right
    rows = written["per_count_prompt"]
    assert all(len(row["count_right"]) == 2 for row in rows)
    assert counting["all"]["single_count_accuracy"] == pytest.approx(sum(r["count_right"][0] for r in rows) / 3)
    assert "| reference: the true renders of the prompts | 3 |" in (out / "world_generator.md").read_text()
    assert (out / "world_generator_samples.png").is_file()


def test_bad_input_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--generator", str(tmp_path / "none")])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error: no pipeline")

"""The fresh held-out prompts: fixed, out of every split that training and selection sample, read by reports only."""

from pathlib import Path

from t2i_guidance.world import fresh_prompts
from t2i_guidance.world.captions import parse_prompt
from t2i_guidance.world.scene import is_fresh, is_held_out, sample_fresh_scene, sample_split_scene

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_file_is_its_recipe_and_each_prompt_is_fresh_and_in_grammar():
    rows = fresh_prompts.draw()
    assert [row["prompt"] for row in rows] == fresh_prompts.fresh_prompts()
    assert len({row["content_key"] for row in rows}) == fresh_prompts.COUNT
    for row in rows[:24]:
        scene = sample_fresh_scene(row["seed"])
        assert scene.content_key() == row["content_key"] and is_held_out(scene) and is_fresh(scene)
        assert parse_prompt(row["prompt"]).objects  # the training grammar reads it


def test_neither_side_of_the_split_ever_returns_a_fresh_content():
    for seed in range(0, 3000, 3):
        for held_out in (False, True):
            scene = sample_split_scene(seed, held_out=held_out)
            assert is_held_out(scene) == held_out and not is_fresh(scene)


def test_no_training_data_or_ship_code_names_the_fresh_set():
    readers = ("fresh_prompts", "FRESH_FILE", "sample_fresh_scene", "fresh_heldout")
    guarded = [*REPO.glob("reward_model/**/*.py"), *REPO.glob("t2i_guidance/world/**/*.py")]
    allowed = {"fresh_prompts.py", "scene.py", "plugin.py", "prompt_sets.py"}  # the set itself, its registration
    offenders = [str(p.relative_to(REPO)) for p in guarded
                 if p.name not in allowed and any(name in p.read_text(encoding="utf-8") for name in readers)]
    assert offenders == []


def test_the_capture_share_is_the_picks_gain_over_the_oracles_gain():
    from benchmarks.guided_vs_unguided import capture

    rows = [{"total": {"unguided": 2.0, "guided": 3.0, "ceiling": 4.0}},
            {"total": {"unguided": 1.0, "guided": 1.0, "ceiling": 3.0}},
            {"total": {"unguided": 3.0, "guided": 3.0, "ceiling": 3.0}}]
    result = capture(rows, "total", rounds=400)
    assert result["share"] == 0.25  # (1 + 0 + 0) / (2 + 2 + 0)
    low, high = result["share_95ci"]
    assert 0.0 <= low <= 0.25 <= high <= 0.5


def test_reports_draw_their_pictures_from_the_fresh_set_when_asked():
    from benchmarks.common import report_prompts, report_render_scenes

    assert report_prompts(5, fresh=True) == fresh_prompts.fresh_prompts(5)
    assert all(is_fresh(scene) for scene in report_render_scenes(4, fresh=True))
    assert not any(is_fresh(scene) for scene in report_render_scenes(4, fresh=False))


def test_the_fresh_set_is_a_registered_prompt_set_judged_by_full_alignment():
    from t2i_guidance.registries import load_prompt_set
    from t2i_guidance.world.render import render_clean

    loaded = load_prompt_set("world-fresh")
    assert [r["prompt"] for r in loaded.records] == fresh_prompts.fresh_prompts()
    scene = sample_fresh_scene(fresh_prompts.draw(1)[0]["seed"])
    assert loaded.correctness(loaded.records[0], render_clean(scene, 32))[0] is True
    other = sample_fresh_scene(fresh_prompts.draw(2)[1]["seed"])
    assert loaded.correctness(loaded.records[0], render_clean(other, 32))[0] is False

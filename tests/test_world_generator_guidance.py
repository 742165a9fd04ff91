"""The guidance sweep sorts the oracle's own unmet sentences into the kinds its table reports."""

from __future__ import annotations

from benchmarks.world_generator_guidance import unmet_kind
from t2i_guidance.world.oracles import alignment_score
from t2i_guidance.world.render import render_scene
from t2i_guidance.world.scene import Scene, SceneObject


def kinds_for(scene: Scene, prompt: str) -> set[str]:
    return {unmet_kind(s) for s in alignment_score(render_scene(scene, 32), prompt).unmet}


RED_LEFT_OF_BLUE = Scene(
    (SceneObject("circle", "red", "large", 0.3, 0.5), SceneObject("square", "blue", "small", 0.7, 0.5)),
    "white", relation="left_of",
)


def test_each_kind_of_mistake_is_named_from_the_oracles_sentence():
    assert kinds_for(RED_LEFT_OF_BLUE, "a large red circle to the left of a small blue square on a white background") == set()
    assert kinds_for(RED_LEFT_OF_BLUE, "a large red triangle to the left of a small blue square on a white background") == {"wrong shape"}
    assert kinds_for(RED_LEFT_OF_BLUE, "a small red circle to the left of a small blue square on a white background") == {"wrong size"}
    assert kinds_for(RED_LEFT_OF_BLUE, "a large red circle to the right of a small blue square on a white background") == {"wrong relation or position"}
    assert kinds_for(RED_LEFT_OF_BLUE, "a large red circle to the left of a small blue square on a black background") == {"wrong background"}
    assert kinds_for(RED_LEFT_OF_BLUE, "a large red circle on the left on a white background") == {"object not asked for"}
    assert "object missing" in kinds_for(RED_LEFT_OF_BLUE, "a large green circle to the left of a small blue square on a white background")
    assert "other" not in kinds_for(RED_LEFT_OF_BLUE, "a large green circle to the left of a small blue square on a white background")


def test_the_sweep_judges_every_scale_on_the_same_prompts_and_seeds(tmp_path):
    from benchmarks import world_generator_guidance

    report = world_generator_guidance.main(
        ["--scales", "1,3", "--prompts", "2", "--seeds", "2", "--threads", "1", "--out-dir", str(tmp_path)]
    )
    first, second = report["rows"]["1.0"], report["rows"]["3.0"]
    assert first["alignment_change_95ci"] is None and second["alignment_change_95ci"] is not None
    assert len(first["per_prompt_alignment"]) == len(second["per_prompt_alignment"]) == 2
    again = world_generator_guidance.main(
        ["--scales", "3", "--prompts", "2", "--seeds", "2", "--threads", "1", "--out-dir", str(tmp_path / "again")]
    )
    assert again["rows"]["3.0"]["per_prompt_alignment"] == second["per_prompt_alignment"]  # same seeds, same pictures
    table = (tmp_path / "world_generator_guidance.md").read_text()
    assert "| 1 |" in table and "| 3 |" in table

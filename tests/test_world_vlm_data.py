"""The world VLMs' data: oracle-written descriptions, restatements, the generator pool and scorer records."""

import random

import numpy as np
import pytest
from PIL import Image

from reward_model.cot.teachers import RuleBasedTeacher, split_plan
from reward_model.data.schema import IQARecord, read_records
from t2i_guidance.world.captions import canonical_caption, caption, parse_prompt
from t2i_guidance.world.describe import levels_sentence, picture_facts, restate
from t2i_guidance.world.oracles import alignment_score, technical_score
from t2i_guidance.world.pipeline import WorldDiffusionPipeline
from t2i_guidance.world.render import degrade, render_clean
from t2i_guidance.world.scene import Scene, SceneObject, sample_scene
from t2i_guidance.world.training import generated_pool, scorer_data

PAIR = Scene((SceneObject("circle", "red", "large", 0.5, 0.28), SceneObject("square", "blue", "small", 0.5, 0.72)),
             "white", relation="above")


@pytest.mark.parametrize("seed", range(40))
def test_restatement_reads_back_as_the_same_request(seed):
    rng = random.Random(seed)
    prompt = caption(sample_scene(seed), rng)
    spec = parse_prompt(prompt)
    again = parse_prompt(restate(spec))
    assert (again.objects, again.position, again.relation, again.background) == (
        spec.objects, spec.position, spec.relation, spec.background)


def test_facts_of_a_clean_render_match_the_scene():
    image = render_clean(PAIR, 32)
    facts = picture_facts(image, canonical_caption(PAIR))
    assert facts.seen == ["a large red circle at the top", "a small blue square at the bottom", "a white background"]
    assert facts.alignment == pytest.approx(5.0) and facts.unmet == []
    assert facts.asks == "a large red circle above a small blue square on a white background"
    assert facts.description().startswith("I see a large red circle at the top. I see a small blue square")
    assert facts.description().endswith("Blur level 0, noise level 0, compression level 0.")


def test_facts_follow_the_oracles_on_a_damaged_picture_with_a_wrong_prompt():
    image = degrade(render_clean(PAIR, 32), "blur", 4)
    prompt = "a green circle above a small blue square on a black background"
    facts = picture_facts(image, prompt)
    assert facts.alignment == pytest.approx(alignment_score(image, prompt).score)
    assert facts.technical == pytest.approx(technical_score(image).score) and facts.technical < 3.5
    assert facts.elements == len(facts.unmet) + round(facts.alignment / 5 * facts.elements)
    assert "Blur level 4" in facts.description() or "Blur level 3" in facts.description()
    assert facts.label("alignment") < 3.5
    with pytest.raises(ValueError):
        picture_facts(image).label("alignment")  # no prompt, no alignment label


def test_levels_sentence_rounds_and_clips():
    assert levels_sentence({"blur": 2.6, "noise": -0.2, "jpeg": 7.0}) == \
        "Blur level 3, noise level 0, compression level 5."


def test_teacher_restates_the_prompt_and_counts_what_it_noticed():
    image = render_clean(PAIR, 32)
    prompt = "a green circle above a small blue square on a black background"
    facts = picture_facts(image, prompt)
    record = IQARecord(image="x.png", task="alignment", label=facts.label("alignment"), prompt=prompt,
                       facts=facts.teacher_facts("alignment"))
    teacher = RuleBasedTeacher(p_overlook=0.0, noise_std=0.0)
    _, text = split_plan(teacher.write_one(record, 0))
    assert text.startswith(f"<think> The prompt asks for {facts.asks}. I see a large red circle")
    met = facts.elements - len(facts.unmet)
    assert f"{met} of {facts.elements} elements are met." in text
    overlooking = RuleBasedTeacher(p_overlook=1.0, noise_std=0.0)  # notices nothing: all elements "met"
    _, text = split_plan(overlooking.write_one(record, 0))
    assert f"{facts.elements} of {facts.elements} elements are met." in text


def test_pool_prompts_are_deterministic_training_contents():
    items = generated_pool.pool_prompts(12, seed=3)
    assert items == generated_pool.pool_prompts(12, seed=3)
    assert [s for _, s in items[:4]] == [0, 1, 1000, 1001]  # two candidates per prompt
    assert items[0][0] == items[1][0] and items[0][0] != items[2][0]
    for prompt, _ in items:
        parse_prompt(prompt)


def test_pool_resumes_by_chunk(tmp_path, monkeypatch):
    generator = tmp_path / "generator"
    WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=(8, 16, 16)).save_pretrained(generator)
    monkeypatch.setattr(generated_pool, "CHUNK", 2)
    out = tmp_path / "pool"
    generated_pool.build_pool(out, 3, generator=generator, steps=2, progress=False)
    images, prompts, seeds = generated_pool.load_pool(out)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and seeds == [0, 1, 1000]
    first = (out / "chunk_0000.npz").stat().st_mtime_ns
    (out / "chunk_0001.npz").unlink()  # as if killed while writing the second chunk
    generated_pool.build_pool(out, 3, generator=generator, steps=2, progress=False)
    again, _, _ = generated_pool.load_pool(out)
    assert (out / "chunk_0000.npz").stat().st_mtime_ns == first  # kept, not redone
    assert np.array_equal(images, again)  # the redone chunk is the same pictures


def test_scorer_records_carry_oracle_labels_and_checkable_facts(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    pixels = np.stack([np.asarray(render_clean(PAIR, 32))] * 2)
    np.savez_compressed(pool / "chunk_0000.npz", images=pixels, prompts=np.array([canonical_caption(PAIR)] * 2),
                        seeds=np.array([0, 1]))
    counts = scorer_data.export(tmp_path / "data", renders=12, pool=pool, progress=False)
    assert counts["train"] + counts["test"] == 12 + 6
    records = list(read_records(tmp_path / "data" / "train.jsonl")) + list(read_records(tmp_path / "data" / "test.jsonl"))
    for record in records:
        image = Image.open(tmp_path / "data" / record.image)
        assert image.size == (32, 32)
        facts = picture_facts(image, record.prompt)
        assert record.label == pytest.approx(facts.label(record.task), abs=1e-3)
        if record.task == "alignment":
            assert record.facts["asks"] == restate(parse_prompt(record.prompt))
        if record.task == "technical":
            assert record.facts["levels"].startswith("Blur level")
    generated = [r for r in records if r.source == "world-generator"]
    assert {r.task for r in generated} == {"technical", "aesthetic", "alignment"} and len(generated) == 6
    assert all(r.split == "train" for r in generated)


def test_objects_are_described_in_reading_order_not_by_size():
    scene = Scene((SceneObject("square", "blue", "large", 0.5, 0.72), SceneObject("circle", "red", "small", 0.3, 0.25)),
                  "black", relation="below")
    facts = picture_facts(render_clean(scene, 32))
    assert facts.seen[:2] == ["a small red circle at the top", "a large blue square at the bottom"]


def _small_red_circle_above_large_green_square():
    from t2i_guidance.world.oracles import Observation, SeenObject

    red = SeenObject("red", "circle", "small", 0.5, 0.25, 0.02, (0.4, 0.15, 0.6, 0.35))
    green = SeenObject("green", "square", "large", 0.5, 0.75, 0.06, (0.3, 0.55, 0.7, 0.95))
    return red, Observation("white", (1.0, 1.0, 1.0), (red, green), 0)


def test_pairs_name_each_requested_object_and_what_answers_it():
    from t2i_guidance.world.captions import parse_prompt
    from t2i_guidance.world.oracles import alignment_checks, requested_pairs

    red, seen = _small_red_circle_above_large_green_square()
    spec = parse_prompt("a large red circle above a blue square on a white background")
    pairs = requested_pairs(spec, seen)
    assert pairs == [("large red circle", red.describe(), 3), ("blue square", None, 2)]
    # the objects' own checks come first, then placement, background and the stray green square
    checks = alignment_checks(spec, seen)
    assert sum(count for _, _, count in pairs) + 3 == len(checks)
    assert "large" in checks[2][1] and "blue" in checks[3][1] and "green" in checks[-1][1]
    assert requested_pairs(parse_prompt("two red circles"), seen) is None  # the counting grammar has none


def test_compared_checks_follow_the_checks_order_and_verdicts():
    from t2i_guidance.world.captions import parse_prompt
    from t2i_guidance.world.oracles import Observation, SeenObject, alignment_checks, compared_checks

    red, seen = _small_red_circle_above_large_green_square()
    spec = parse_prompt("a large red circle above a blue square on a gray background")
    rows = compared_checks(spec, seen)
    assert [ok for *_, ok in rows] == [ok for ok, _ in alignment_checks(spec, seen)]
    assert rows[:5] == [("colour", "red", "red", True), ("shape", "circle", "circle", True),
                        ("size", "large", "small", False), ("colour", "blue", "none", False),
                        ("shape", "square", "none", False)]
    assert rows[5][:3] == ("placement", "the large red circle above the blue square", "an object is missing")
    assert rows[6] == ("background", "gray", "white", False)
    assert rows[7][0] == "other objects" and "green square" in rows[7][2] and not rows[7][3]
    both = Observation("white", (1.0, 1.0, 1.0), (red, SeenObject("blue", "square", "small", 0.5, 0.75, 0.02,
                                                                 (0.4, 0.65, 0.6, 0.85))), 0)
    placed = compared_checks(parse_prompt("a red circle above a blue square"), both)
    assert ("placement", "the red circle above the blue square", "the red circle at the top, the blue square at the bottom",
            True) in placed
    assert compared_checks(parse_prompt("two red circles"), seen) is None

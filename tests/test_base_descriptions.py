"""benchmarks.base_descriptions: a description is scored claim by claim against the oracles' reading."""

import numpy as np

from benchmarks import base_descriptions as bench
from t2i_guidance.world.oracles import observe


def test_a_true_description_scores_every_attribute_and_a_wrong_place_only_position():
    pictures = bench.held_out_pictures(4)
    truth = [" ".join(f"I see {o.describe()}." for o in observe(np.asarray(p)).objects) for p in pictures]
    right = bench.tally(truth, pictures)
    objects = sum(len(observe(np.asarray(p)).objects) for p in pictures)
    assert objects > 0 and right["object"] == {"true": objects, "claims": objects}
    assert all(right[a]["true"] == right[a]["claims"] > 0 for a in ("colour", "shape", "size", "position"))

    first = observe(np.asarray(pictures[0])).objects[0]
    elsewhere = "on the left" if "left" not in first.describe() else "on the right"
    moved = first.describe().rsplit(" ", 3)[0]  # "a small red circle" without its place
    wrong = bench.tally([f"I see {moved} {elsewhere}."], pictures[:1])
    assert wrong["position"] == {"true": 0, "claims": 1} and wrong["colour"]["true"] == 1
    assert wrong["object"]["true"] == 0

"""The world's GRPO rewards: an exact consistency reward and a true-claims reward, by name."""


from reward_model.reward_registry import build_reward_funcs
from t2i_guidance.world.render import render_clean
from t2i_guidance.world.scene import Scene, SceneObject
from t2i_guidance.world.training.claim_rewards import (
    claims_reward,
    consistency_reward,
    register_claim_rewards,
)

RESTATED = "The prompt asks for a red circle above a small blue square on a white background."
SEEN = "I see a large red circle at the top. I see a small blue square at the bottom. I see a white background."


def _completion(*sentences: str, score: float) -> str:
    return f"<think> {' '.join(sentences)} </think><answer> {score:.2f} </answer>"


def test_consistency_is_one_only_when_verdict_and_score_follow_from_the_claims():
    right = _completion(RESTATED, SEEN, "8 of 8 elements are met.", score=5.0)
    wrong_count = _completion(RESTATED, SEEN, "6 of 8 elements are met.", score=3.75)
    wrong_score = _completion(RESTATED, SEEN, "8 of 8 elements are met.", score=2.0)
    no_verdict = _completion(RESTATED, SEEN, score=5.0)
    rewards = consistency_reward([right, wrong_count, wrong_score, no_verdict, right], task=["alignment"] * 4 + ["technical"])
    assert rewards == [1.0, 0.5, 0.5, 0.0, None]


def test_claims_reward_is_the_share_of_true_perception_claims():
    scene = Scene((SceneObject("circle", "red", "large", 0.5, 0.25), SceneObject("square", "blue", "small", 0.5, 0.75)),
                  "white", relation="above")
    picture = render_clean(scene, 32)
    true = _completion(SEEN, score=5.0)
    half = _completion("I see a large red circle at the top.", "I see a large green triangle on the left.", score=2.0)
    rewards = claims_reward([true, half, _completion("Overall it is good.", score=4.0)], image=[picture] * 3)
    assert rewards == [1.0, 0.5, 0.0]
    assert claims_reward([true], image=[[picture]]) == [1.0]  # TRL may give a list of images per row


def test_both_are_chosen_by_name_after_registering_twice():
    register_claim_rewards()
    register_claim_rewards()
    consistency, claims = build_reward_funcs(["world-consistency", "world-claims"])
    assert consistency.__name__ == "world-consistency" and claims.__name__ == "world-claims"
    assert consistency([_completion(RESTATED, SEEN, "8 of 8 elements are met.", score=5.0)], task=["alignment"]) == [1.0]

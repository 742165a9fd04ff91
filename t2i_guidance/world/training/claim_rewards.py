"""GRPO rewards the embedded world can give because it knows the truth (TRL's reward signature).

- `world-consistency` (Q-Ponder's reasoning-consistency idea, made exact here): 1 when an alignment
  rationale's stated verdict ("N of M elements are met.") is the count its own claims imply and its score
  lies in that count's band, 0.5 when only one holds, 0 otherwise; None (not scored) for other tasks.
- `world-claims`: the share of the rationale's perception claims ("I see ...", "No ... is visible") that
  the oracles find true in the picture; 0 for a rationale that claims nothing.

Both are registered by name (world/plugin.py), so a GRPO stage asks for them like any built-in reward.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from reward_model.interface import parse_answer
from reward_model.rewards import completion_text
from t2i_guidance.world.claims import PERCEPTION_KINDS, check_rationale
from t2i_guidance.world.consistency import check_consistency
from t2i_guidance.world.oracles import degradation_levels, observe


def consistency_reward(completions: Sequence[object], task: Sequence[str], **_: object) -> list[float | None]:
    rewards: list[float | None] = []
    for completion, kind in zip(completions, task, strict=True):
        if kind != "alignment":
            rewards.append(None)
            continue
        parsed = parse_answer(completion_text(completion))
        check = check_consistency(parsed.rationale, parsed.score)
        rewards.append(0.5 * bool(check.verdict_agrees) + 0.5 * bool(check.band_agrees))
    return rewards


def _pixels(image: object) -> np.ndarray:
    if isinstance(image, (list, tuple)):  # TRL may hand a list of images per row
        image = image[0]
    if not isinstance(image, Image.Image):
        image = Image.open(str(image))
    return np.asarray(image.convert("RGB"))


def claims_reward(completions: Sequence[object], image: Sequence[object], **_: object) -> list[float]:
    rewards = []
    for completion, picture in zip(completions, image, strict=True):
        pixels = _pixels(picture)
        check = check_rationale(parse_answer(completion_text(completion)).rationale, observe(pixels),
                                degradation_levels(pixels))
        perception = check.of_kind(*PERCEPTION_KINDS)
        rewards.append(sum(claim.true for claim in perception) / len(perception) if perception else 0.0)
    return rewards


def register_claim_rewards() -> None:
    """Add both rewards to reward_model's registry (once; a second call changes nothing)."""
    from reward_model.reward_registry import REWARDS, register_reward

    for name, target in (("world-consistency", f"{__name__}:consistency_reward"),
                         ("world-claims", f"{__name__}:claims_reward")):
        if name not in REWARDS.names():
            register_reward(name, target)

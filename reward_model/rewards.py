"""GRPO reward functions, registered by name so extra rewards plug in without touching the trainer.

Every function has TRL's reward signature: `f(completions, **columns) -> list[float | None]`, where the
dataset columns (`label`, `task`, ...) arrive as keyword lists aligned with `completions`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from reward_model.interface import has_strict_format, parse_answer

RewardFunc = Callable[..., list[float | None]]

DEFAULT_SIGMA = 0.8
FORMAT_REWARD = 0.5
# Per-task sigma multipliers present (off by default) in the authors' code.
PAPER_TASK_SIGMA_SCALE = {"technical": 0.8, "aesthetic": 1.5, "alignment": 1.5}


def completion_text(completion: object) -> str:
    """The text of a completion, whether TRL passes a string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""


def gaussian_accuracy(prediction: float | None, label: float, sigma: float = DEFAULT_SIGMA) -> float:
    """exp(-(pred - label)^2 / (2 sigma^2)); 0 when no number could be read."""
    if prediction is None:
        return 0.0
    return math.exp(-((prediction - label) ** 2) / (2.0 * sigma**2))


def accuracy_reward(
    completions: Sequence[object],
    label: Sequence[float],
    task: Sequence[str] | None = None,
    sigma: float = DEFAULT_SIGMA,
    task_sigma_scale: dict[str, float] | None = None,
    **_: object,
) -> list[float]:
    """Gaussian closeness of the parsed answer to the label, optionally with a per-task sigma."""
    rewards = []
    for index, completion in enumerate(completions):
        task_sigma = sigma
        if task_sigma_scale and task is not None:
            task_sigma = sigma * task_sigma_scale.get(task[index], 1.0)
        score = parse_answer(completion_text(completion)).score
        rewards.append(gaussian_accuracy(score, float(label[index]), task_sigma))
    return rewards


def format_reward(completions: Sequence[object], value: float = FORMAT_REWARD, **_: object) -> list[float]:
    """`value` for exactly one think block followed by exactly one answer block, else 0."""
    return [value if has_strict_format(completion_text(c)) else 0.0 for c in completions]


def gather_across_processes(payload: list) -> tuple[list, int]:
    """(every process's list concatenated in rank order, where this process's entries start).

    TRL calls reward functions on each process's own slice of the batch, in lockstep, so a collective
    here is safe; under the release's layout a slice holds few prompts, too few to rank. Not distributed:
    the local list, offset 0.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(payload), 0
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(payload))
    offset = sum(len(part) for part in gathered[: dist.get_rank()])
    return [entry for part in gathered for entry in part], offset


def _thurstone_fidelity(mine: float, other_mean: float, variance: float, label_order: float) -> float:
    """Fidelity between the predicted P(mine > other) under a Gaussian (Thurstone) model and the label order."""
    p = 0.5 * (1.0 + math.erf((mine - other_mean) / math.sqrt(2.0 * variance)))
    return math.sqrt(p * label_order) + math.sqrt((1.0 - p) * (1.0 - label_order))


def rank_reward(
    completions: Sequence[object],
    label: Sequence[float],
    record_id: Sequence[str] | None = None,
    mode: str = "sign",
    min_variance: float = 0.01,
    gather: Callable[[list], tuple[list, int]] = gather_across_processes,
    **_: object,
) -> list[float]:
    """A PreResQ-R1 style ranking reward over the WHOLE batch, gathered from every process.

    Each completion is compared with the other records of the batch (a different record and a different
    label; a record's own rollouts share its label and are never compared):
    - "sign": the fraction of those records whose rollouts it orders as the labels do, pair by pair;
    - "fidelity": PreResQ-R1's pairwise fidelity: P(mine > theirs) from a Thurstone model (their rollouts'
      mean, both groups' variance) against the label order, averaged over the other records.
    Unreadable answers get 0 and are not compared.
    """
    if mode not in ("sign", "fidelity"):
        raise ValueError("rank mode must be 'sign' or 'fidelity'")
    local = [parse_answer(completion_text(c)).score for c in completions]
    ids = list(record_id) if record_id is not None else None
    mine_entries = [(score, float(y), ids[i] if ids else None) for i, (score, y) in enumerate(zip(local, label, strict=True))]
    entries, offset = gather(mine_entries)
    if ids is None:  # no record ids: every completion is its own record
        entries = [(score, y, str(index)) for index, (score, y, _) in enumerate(entries)]
    groups: dict[str, list[float]] = {}
    labels: dict[str, float] = {}
    for score, y, key in entries:
        labels[key] = y
        if score is not None:
            groups.setdefault(key, []).append(score)
    rewards = []
    for index, mine in enumerate(local):
        _, my_label, my_key = entries[offset + index]
        if mine is None:
            rewards.append(0.0)
            continue
        total = agree = 0.0
        for key, scores in groups.items():
            if key == my_key or labels[key] == my_label:
                continue
            order = 1.0 if my_label > labels[key] else 0.0
            if mode == "sign":
                total += len(scores)
                agree += sum((mine - other) * (my_label - labels[key]) > 0 for other in scores)
            else:
                mean = sum(scores) / len(scores)
                variance = _variance(scores) + _variance(groups.get(my_key, [mine])) + min_variance
                total += 1
                agree += _thurstone_fidelity(mine, mean, variance, order)
        rewards.append(agree / total if total else 0.0)
    return rewards


def _variance(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


# Verdict words and the score band each one claims (the bands the project's teachers write with).
VERDICT_BANDS = (
    ("very poor", 0.0, 1.25), ("excellent", 4.5, 5.0), ("good", 3.75, 4.5), ("fair", 2.5, 3.75),
    ("poor", 1.25, 2.5),
)


def stated_verdict(rationale: str) -> tuple[float, float] | None:
    """The score band of the LAST verdict word in the reasoning ("... overall it is good."), or None."""
    text = rationale.lower()
    best, position = None, -1
    for word, low, high in VERDICT_BANDS:
        for match in re.finditer(rf"\b{word}\b", text):
            start = match.start()
            if word == "poor" and re.search(r"(?:^|[^a-z])very $", text[max(0, start - 6) : start]):
                continue  # part of "very poor" (but not of "every poor")
            if start > position:
                best, position = (low, high), start
    return best


def consistency_reward(
    completions: Sequence[object],
    sigma: float = 0.5,
    judge: Callable[[str], tuple[float, float] | None] = stated_verdict,
    **_: object,
) -> list[float]:
    """A Q-Ponder-style reasoning-consistency reward: does the answer agree with what the reasoning says?

    `judge` reads the score band the reasoning claims (default: its last verdict word, see VERDICT_BANDS);
    1 inside the band, falling as a Gaussian of the distance outside it; 0 when there is no readable answer
    or the reasoning states no verdict (an empty rationale cannot be consistent). Q-Ponder judges with a
    model; a model-based judge plugs in through `judge`.
    """
    rewards = []
    for completion in completions:
        parsed = parse_answer(completion_text(completion))
        band = judge(parsed.rationale) if parsed.score is not None else None
        if band is None:
            rewards.append(0.0)
            continue
        low, high = band
        distance = max(low - parsed.score, 0.0, parsed.score - high)
        rewards.append(math.exp(-(distance**2) / (2.0 * sigma**2)))
    return rewards

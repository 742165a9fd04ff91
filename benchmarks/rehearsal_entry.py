"""What each process of the multi-process rehearsal runs: the training CLI plus two probes.

- Every dataset fetch is logged (rank, dataset indices) to $REHEARSAL_LOG: which records each rank saw,
  in which order (SFT).
- A `seen` reward (always 0, so it changes nothing) logs (rank, global step, record ids) of every
  generation batch (GRPO).
- `label_noise`: a deterministic reward (a hash of the completion text) for labels >= 2.5 and a constant
  0.5 below, so the STD filter drops the low-label groups and keeps the others; being a function of the
  completion alone, a resumed run reproduces it. On the generation made at global step
  $REHEARSAL_FLAT_STEP it is constant for every label: the whole generation batch is filtered out and its
  optimizer steps must be skipped.
"""

import hashlib
import json
import os
import sys

import torch.utils.data._utils.fetch as fetch

from reward_model.reward_registry import register_reward
from reward_model.rewards import completion_text
from reward_model.train import main

LOG = os.environ["REHEARSAL_LOG"]
RANK = int(os.environ.get("RANK", "0"))
FLAT_STEP = int(os.environ.get("REHEARSAL_FLAT_STEP", "-1"))


def _write(entry: dict) -> None:
    with open(LOG, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


_original_fetch = fetch._MapDatasetFetcher.fetch


def _logged_fetch(self, possibly_batched_index):
    indices = list(possibly_batched_index) if self.auto_collation else [possibly_batched_index]
    _write({"kind": "fetch", "rank": RANK, "indices": [int(i) for i in indices]})
    return _original_fetch(self, possibly_batched_index)


def seen(completions, record_id, trainer_state=None, **_):
    step = trainer_state.global_step if trainer_state is not None else -1
    _write({"kind": "generation", "rank": RANK, "step": step, "record_ids": list(record_id)})
    return [0.0] * len(completions)


def label_noise(completions, label, trainer_state=None, **_):
    flat = trainer_state is not None and trainer_state.global_step == FLAT_STEP
    rewards = []
    for completion, y in zip(completions, label, strict=True):
        digest = hashlib.sha256(completion_text(completion).encode()).digest()
        rewards.append(digest[0] / 255 if y >= 2.5 and not flat else 0.5)
    return rewards


if __name__ == "__main__":
    fetch._MapDatasetFetcher.fetch = _logged_fetch
    register_reward("seen", seen)
    register_reward("label_noise", label_noise)
    raise SystemExit(main(sys.argv[1:]))

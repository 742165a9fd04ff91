"""Entry point for the 2-process test: adds a reward that varies only for high labels, then runs the CLI.

Groups of high-label prompts have reward variance (kept), the others are constant (dropped), so the
STD filter leaves the two ranks with different numbers of rows: the padding path runs for real.
"""

import random
import sys

from reward_model.reward_registry import register_reward
from reward_model.train import main

_rng = random.Random(0)


def high_label_noise(completions, label, **_):
    return [_rng.random() if y >= 2.5 else 0.5 for y in label]


if __name__ == "__main__":
    register_reward("high_label_noise", high_label_noise)
    raise SystemExit(main(sys.argv[1:]))

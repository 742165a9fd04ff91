"""The fresh held-out prompt set: in the training grammar, read by no training, selection or ship rule.

    python -m t2i_guidance.world.fresh_prompts --check      # the committed file matches its recipe

How it was drawn (fixed on 2026-12-03, before the 224 px scorer was trained): scene contents are split by
a hash of their content key (scene.is_held_out, one in eight held out); one held-out content in eight is
*fresh* (scene.is_fresh), and `sample_split_scene` never returns a fresh content, so no data builder,
trainer or benchmark that samples held-out scenes can reach one. The set is the canonical captions of
`sample_fresh_scene(7_000_000 + i)` for i = 0, 1, ..., one per content key, until COUNT prompts. The file
is committed so the set cannot drift with the code; `--check` rebuilds it and compares.

Only reports read it (benchmarks' `--prompt-set world-fresh`); a test checks that no training or ship
module names it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from t2i_guidance.world.captions import canonical_caption
from t2i_guidance.world.scene import sample_fresh_scene

FRESH_FILE = Path(__file__).resolve().parent / "prompts" / "fresh_heldout.jsonl"
COUNT = 96
FIRST_SEED = 7_000_000


def draw(count: int = COUNT) -> list[dict]:
    """The recipe: one row per distinct fresh content key, in seed order."""
    rows, keys, seed = [], set(), FIRST_SEED
    while len(rows) < count:
        scene = sample_fresh_scene(seed)
        if scene.content_key() not in keys:
            keys.add(scene.content_key())
            rows.append({"prompt": canonical_caption(scene), "content_key": scene.content_key(), "seed": seed})
        seed += 1
    return rows


def fresh_prompts(limit: int | None = None) -> list[str]:
    """The committed fresh prompts (the first `limit` of them)."""
    rows = [json.loads(line) for line in FRESH_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["prompt"] for row in rows[:limit]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the committed file with the recipe")
    parser.add_argument("--write", action="store_true", help="(re)write the file from the recipe")
    args = parser.parse_args(argv)
    text = "".join(json.dumps(row) + "\n" for row in draw())
    if args.write:
        FRESH_FILE.parent.mkdir(parents=True, exist_ok=True)
        FRESH_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {COUNT} fresh prompts")
    if args.check:
        same = FRESH_FILE.read_text(encoding="utf-8") == text
        print("the committed fresh prompts match their recipe" if same else "error: the fresh prompts differ")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m t2i_guidance.refine`: the `t2i-refine` command (t2i_guidance.cli).

    python -m t2i_guidance.refine --prompt "a red circle above a blue square" --rounds 4 --per-round 4 --out runs/r
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from t2i_guidance.cli import refine_main


def main(argv: Sequence[str] | None = None) -> int:
    return refine_main(argv, prog="python -m t2i_guidance.refine")


if __name__ == "__main__":
    sys.exit(main())

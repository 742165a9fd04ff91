"""Command line: iterative prompt refinement for one prompt (`python -m t2i_guidance.search --strategy refine`).

    python -m t2i_guidance.refine --prompt "a red circle above a blue square" --rounds 4 --per-round 4 --out runs/r
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from t2i_guidance.search.cli import main as search_main


def main(argv: Sequence[str] | None = None) -> int:
    return search_main(argv, strategy="refine", prog="python -m t2i_guidance.refine")


if __name__ == "__main__":
    sys.exit(main())

"""Command line: best-of-N for one prompt (the same as `python -m t2i_guidance.search --strategy best-of-n`).

    python -m t2i_guidance.bestofn --prompt "a red circle above a blue square" --n 8 --out runs/demo
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from t2i_guidance.search.cli import main as search_main


def main(argv: Sequence[str] | None = None) -> int:
    return search_main(argv, strategy="best-of-n", prog="python -m t2i_guidance.bestofn")


if __name__ == "__main__":
    sys.exit(main())

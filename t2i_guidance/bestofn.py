"""`python -m t2i_guidance.bestofn`: the `t2i-bestofn` command (t2i_guidance.cli).

    python -m t2i_guidance.bestofn --prompt "a red circle above a blue square" --n 8 --out runs/demo
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from t2i_guidance.cli import bestofn_main


def main(argv: Sequence[str] | None = None) -> int:
    return bestofn_main(argv, prog="python -m t2i_guidance.bestofn")


if __name__ == "__main__":
    sys.exit(main())

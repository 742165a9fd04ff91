"""`python -m t2i_guidance.search`: the `t2i-search` command (t2i_guidance.cli)."""

import sys

from t2i_guidance.cli import search_main

sys.exit(search_main(prog="python -m t2i_guidance.search"))

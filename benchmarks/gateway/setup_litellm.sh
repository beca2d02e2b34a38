#!/usr/bin/env bash
# Install the LiteLLM proxy, the gateway benchmark's third target, into its own venv.
#
#     benchmarks/gateway/setup_litellm.sh            # idempotent: a no-op when installed
#
# Its own venv because litellm[proxy] pins versions of fastapi, uvicorn, pydantic, ...
# that may conflict with the project's. LITELLM_VENV overrides the location,
# LITELLM_VERSION the release (1.108.7: the newest whose [proxy] extra installs here).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${LITELLM_VENV:-$here/.venv-litellm}"
version="${LITELLM_VERSION:-1.108.7}"
python="${PYTHON:-python3.11}"

if [ -x "$venv/bin/litellm" ] && "$venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('litellm') != '$version')" 2>/dev/null; then
  echo "litellm $version already installed in $venv"
  exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "litellm[proxy]==$version"
"$venv/bin/python" -c "import litellm.proxy.proxy_server" >/dev/null
echo "litellm $version installed in $venv"

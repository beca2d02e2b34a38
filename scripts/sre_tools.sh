#!/usr/bin/env bash
# Install the offline checkers the SRE tests (tests/sre/) need. Idempotent: each step is
# skipped when its tool is already there.
#   - Debian `prometheus`: promtool (check/test rules) and the server (live query test);
#   - PyPI, into the project venv (the `sre` extra): helm-python-sdk, kubernetes-validate,
#     grafana-client, PyYAML;
#   - npm, under grafana/.schema-check/ (package.json + lockfile): @grafana/schema,
#     typescript, @kubernetes-models/prometheus-operator.
# Usage: scripts/sre_tools.sh   (from anywhere; VENV=path overrides the venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "sre_tools: installing Debian prometheus (promtool and server)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
fi

if ! "$VENV/bin/python" -c 'import helm_python, kubernetes_validate, grafana_client, yaml' 2>/dev/null; then
  echo "sre_tools: installing the sre extra's Python packages into $VENV"
  "$VENV/bin/pip" install -q "helm-python-sdk==0.2.2" "kubernetes-validate>=1.31" \
    "grafana-client>=5" "PyYAML>=6"
fi

CHECK_DIR="$ROOT/grafana/.schema-check"
if [ ! -x "$CHECK_DIR/node_modules/.bin/tsc" ] \
  || [ ! -d "$CHECK_DIR/node_modules/@grafana/schema" ] \
  || [ ! -d "$CHECK_DIR/node_modules/@kubernetes-models/prometheus-operator" ]; then
  if ! command -v npm >/dev/null; then
    echo "sre_tools: installing Debian nodejs and npm"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  echo "sre_tools: installing node packages under grafana/.schema-check"
  if [ -f "$CHECK_DIR/package-lock.json" ]; then
    (cd "$CHECK_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$CHECK_DIR" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
echo "sre_tools: promtool, prometheus, helm-python-sdk, kubernetes-validate, grafana-client, tsc ready"

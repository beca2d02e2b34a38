#!/usr/bin/env bash
# Install the load generators the benchmarks need (Debian `wrk` and `hey`; `taskset` from
# util-linux pins processes to cores). Idempotent: nothing happens when they are there.
# The LiteLLM proxy the gateway benchmark compares against is installed by
# benchmarks/gateway/setup_litellm.sh on the first full run (quick mode skips it).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v hey >/dev/null || missing+=(hey)
command -v taskset >/dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench_tools: installing Debian ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "bench_tools: wrk, hey, taskset ready"

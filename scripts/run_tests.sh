#!/usr/bin/env bash
# `make test`: the test-only tools (promtool, Prometheus, the schema checkers, a throwaway
# PostgreSQL and Redis), then lint, doctests, unit tests and the end-to-end tests with the real vLLM,
# then the benchmark suite's quick mode (so the benchmark scripts cannot rot).
# Extra arguments go to the main pytest run (e.g. -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

scripts/sre_tools.sh
export DRIFTGATE_TEST_POSTGRES_URL="$(scripts/start_test_postgres.sh)"
export DRIFTGATE_TEST_REDIS_URL="$(scripts/start_test_redis.sh)"
trap 'scripts/start_test_postgres.sh stop || true; scripts/start_test_redis.sh stop || true' EXIT

echo "[test] lint"
$BIN/ruff check driftgate gateway drift retrain rollout tests benchmarks grafana
$BIN/ruff format --check driftgate gateway drift retrain rollout tests benchmarks grafana
$BIN/mypy
$BIN/lint-imports  # the layer contract (pyproject.toml [tool.importlinter])

echo "[test] doctests"
$BIN/pytest -q -p no:cacheprovider --doctest-modules driftgate gateway drift retrain rollout \
    --ignore=driftgate/core/state/migrations  # Alembic runs env.py; importing it alone fails

echo "[test] unit and end-to-end tests"
$BIN/pytest -ra -p no:cacheprovider --durations=15 "$@" tests

echo "[test] benchmark scripts (quick mode: they run and write well-formed results)"
scripts/bench_tools.sh
$BIN/python -m benchmarks.suite --quick

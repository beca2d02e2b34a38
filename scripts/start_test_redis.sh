#!/usr/bin/env bash
# A throwaway Redis for the shared-limits tests (CI and local runs).
#
#   scripts/start_test_redis.sh        install Debian's redis-server if missing, start it on
#                                      127.0.0.1:63799 (no persistence) and print its URL
#   scripts/start_test_redis.sh stop   stop it
#
# Use it as: export DRIFTGATE_TEST_REDIS_URL="$(scripts/start_test_redis.sh)"
# Everything but the URL goes to stderr. Re-running while it runs only prints the URL.
# The tests that stop Redis mid-test start their own (tests/gateway/redis_server.py).
set -euo pipefail

PORT="${DRIFTGATE_TEST_REDIS_PORT:-63799}"
DIR="${DRIFTGATE_TEST_REDIS_DIR:-/tmp/driftgate-test-redis}"
URL="redis://127.0.0.1:${PORT}/0"

if ! command -v redis-server >/dev/null; then
    echo "[redis] installing Debian's redis-server" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq redis-server >&2
fi

if [[ "${1:-start}" == "stop" ]]; then
    if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
        redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >&2 || true
    fi
    exit 0
fi

if ! redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
    mkdir -p "$DIR"
    # no RDB/AOF: a test store, thrown away
    redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --save "" --appendonly no \
        --daemonize yes --logfile "$DIR/redis.log" --pidfile "$DIR/redis.pid" >&2
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null
echo "$URL"

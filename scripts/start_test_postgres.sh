#!/usr/bin/env bash
# A throwaway PostgreSQL for the drift store tests (CI and local runs).
#
#   scripts/start_test_postgres.sh        install Debian's postgresql if missing, start a cluster
#                                         on 127.0.0.1:54329 and print its SQLAlchemy URL
#   scripts/start_test_postgres.sh stop   stop that cluster
#
# Use it as: export DRIFTGATE_TEST_POSTGRES_URL="$(scripts/start_test_postgres.sh)"
# Everything but the URL goes to stderr. Re-running while it runs only prints the URL.
set -euo pipefail

PORT="${DRIFTGATE_TEST_POSTGRES_PORT:-54329}"
DIR="${DRIFTGATE_TEST_POSTGRES_DIR:-/tmp/driftgate-test-postgres}"
DB="driftgate_test"
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/${DB}"

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(find_bin)"
if [[ -z "$BIN" ]]; then
    echo "[postgres] installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi

# initdb and postgres refuse to run as root: run them as the postgres user then.
AS=()
if [[ "$(id -u)" == 0 ]]; then
    AS=(runuser -u postgres --)
fi

if [[ "${1:-start}" == "stop" ]]; then
    if [[ -f "$DIR/data/postmaster.pid" ]]; then
        "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2
    fi
    exit 0
fi

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    mkdir -p "$DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$DIR"
    if [[ ! -f "$DIR/data/PG_VERSION" ]]; then
        "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync >&2
    fi
    # fsync off: a test cluster, thrown away; the tests check behaviour, not crash safety
    "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PORT -k $DIR -F" start >&2
fi

if [[ -z "$("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]]; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
fi
echo "$URL"

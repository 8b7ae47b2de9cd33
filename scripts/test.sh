#!/usr/bin/env bash
# Runs all of ferry's tests on this machine, installing whatever is missing first.
# This is the README's test command, and what .ci/run calls.
#
#   scripts/test.sh            set up, build and install the extension, run every test
#   scripts/test.sh -- ARGS    extra arguments passed to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/install-extension.sh

# Many concurrent streams and clusters want file descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); fi

# The extension crate builds against the system Postgres 15 headers.
export PGRX_PG_CONFIG_PATH=${PG_CONFIG:-/usr/bin/pg_config}

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy (all crates, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "[test] cargo test: unit tests of every crate, then the end-to-end tests (real Postgres, gateway, clients)"
cargo test "${extra[@]}"
echo "[test] cargo test -p ferry --lib: the extension's pure unit tests"
cargo test -p ferry --lib --quiet
echo "[test] all tests passed"

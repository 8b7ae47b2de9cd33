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

echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "[test] cargo test (unit and end-to-end)"
cargo test --workspace "${extra[@]}"
echo "[test] all tests passed"

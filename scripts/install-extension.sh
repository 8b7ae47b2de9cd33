#!/usr/bin/env bash
# Builds the ferry extension (release) and installs it into the system Postgres 15.
# Fast when nothing changed (cargo is incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
echo "[install-extension] cargo pgrx install --release (pg15)"
(cd pg-ext && cargo pgrx install --release --pg-config "$PG_CONFIG" 2>&1 | grep -Ev '^\s+(Compiling|Checking|Downloaded|Downloading)' ) 
test -f "$($PG_CONFIG --sharedir)/extension/ferry.control" || { echo "install-extension: ferry.control missing after install" >&2; exit 1; }

#!/usr/bin/env bash
# Installs everything ferry needs to build and test on a fresh Debian 12 machine.
# Idempotent: every step checks first and is skipped when already done.
set -euo pipefail

PGRX_VERSION=0.18.1
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt packages: Postgres 15 server headers (pull clang/libclang for bindgen), sudo for pgrx's --runas.
need_apt=()
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-contrib sudo clang libclang-dev pkg-config curl python3; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing apt packages: ${need_apt[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
    log "apt packages present"
fi

# The Debian package starts a default cluster on 5432; ferry never uses it, and it only costs memory.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    log "stopping Debian's default cluster (ferry runs its own throwaway clusters)"
    pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r ver name; do
        as_root pg_ctlcluster "$ver" "$name" stop || true
    done
fi

# cargo-pgrx, exactly the version the extension builds with.
if cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    log "cargo-pgrx $PGRX_VERSION present"
else
    log "installing cargo-pgrx $PGRX_VERSION (about 7 minutes on 2 cores, once)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# pgrx's config pointing at the system Postgres 15.
if [ -f "${PGRX_HOME:-$HOME/.pgrx}/config.toml" ] && grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    log "pgrx already initialised for pg15"
else
    log "cargo pgrx init --pg15 $PG_CONFIG"
    cargo pgrx init --pg15 "$PG_CONFIG"
fi
log "done"

#!/usr/bin/env bash
# Starts, stops or restarts a throwaway Postgres 15 cluster with the settings ferry needs.
#
#   scripts/pg-cluster.sh start   DIR PORT [--no-worker] [--database DB]
#   scripts/pg-cluster.sh stop    DIR [fast|immediate]
#   scripts/pg-cluster.sh restart DIR [fast|immediate]
#
# DIR holds data/, sock/ (its own Unix socket directory) and log/; PORT is its TCP port on 127.0.0.1,
# so parallel clusters never collide. Run as root, Postgres runs as the `postgres` user; run as anyone
# else, it runs as that user. This script is the one place that knows the cluster settings: the test
# harness and the demo both call it.
set -euo pipefail

PG_BIN=${PG_BIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
[ -x "$PG_BIN/initdb" ] || PG_BIN=/usr/lib/postgresql/15/bin

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

die() { echo "pg-cluster: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start DIR PORT [--no-worker] [--database DB] | stop DIR [mode] | restart DIR [mode]"

case "$cmd" in
start)
    port=${3:-}; [ -n "$port" ] || die "start needs a port"
    shift 3
    worker=1; database=postgres
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-worker) worker=0 ;;
            --database) database=$2; shift ;;
            *) die "unknown option $1" ;;
        esac
        shift
    done
    mkdir -p "$dir"/data "$dir"/sock "$dir"/log
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir" "$dir"/data "$dir"/sock "$dir"/log
    fi
    chmod 700 "$dir"/data
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/log/initdb.log" 2>&1 \
            || die "initdb failed: $(tail -5 "$dir/log/initdb.log")"
        preload=""
        [ "$worker" = 1 ] && preload="shared_preload_libraries = 'ferry'"
        # output_plugin_libraries exists from 15.19 on (CVE-2026-6471); older minors refuse to start with it.
        plugin_libs=""
        known_settings=$("$PG_BIN/postgres" --describe-config 2>/dev/null | cut -f1 || true)
        if printf '%s\n' "$known_settings" | grep -qx output_plugin_libraries; then
            plugin_libs="output_plugin_libraries = 'pgoutput, test_decoding, ferry'"
        fi
        cat >>"$dir/data/postgresql.conf" <<CONF

# --- ferry throwaway cluster ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
wal_level = logical
max_replication_slots = 40
max_wal_senders = 20
max_worker_processes = 32
max_connections = 200
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = 256MB
logging_collector = off
log_min_messages = warning
$plugin_libs
$preload
ferry.database = '$database'
CONF
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log/pg.log" -w -t 60 start >/dev/null \
        || die "pg_ctl start failed: $(tail -20 "$dir/log/pg.log")"
    ;;
stop)
    mode=${3:-fast}
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
    fi
    ;;
restart)
    mode=${3:-fast}
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log/pg.log" -w -t 60 start >/dev/null \
        || die "pg_ctl start failed: $(tail -20 "$dir/log/pg.log")"
    ;;
*) die "unknown command $cmd" ;;
esac

#!/usr/bin/env bash
# An official PowerSync SDK (@powersync/node) syncing from ferry: a throwaway Postgres with the
# extension and the todo example, the gateway, and check.mjs (first sync, a live change, an upload
# acknowledged by a write checkpoint). Not part of ./scripts/test.sh: it needs Node.js 20+ and npm,
# and `npm install` compiles better-sqlite3 (a C++ toolchain: build-essential, python3).
#
#   tests/powersync-sdk/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SDK=$ROOT/tests/powersync-sdk

command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "powersync-sdk: needs node (20+) and npm on PATH" >&2; exit 1; }
./scripts/setup.sh
./scripts/install-extension.sh
cargo build --release --quiet -p ferry-gateway --bin ferry-gateway
(cd "$SDK" && npm install --no-audit --no-fund --loglevel=error)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
DIR=$(mktemp -d /tmp/ferry-sdk.XXXXXX)
chmod 755 "$DIR"
PG_PORT=$(free_port)
GW_PORT=$(free_port)
GW_PID=""
cleanup() {
    set +e
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    "$ROOT/scripts/pg-cluster.sh" stop "$DIR/pg" immediate >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT

./scripts/pg-cluster.sh start "$DIR/pg" "$PG_PORT" --database todo
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE todo"
"${PSQL[@]}" -d todo -c "CREATE EXTENSION ferry"
"${PSQL[@]}" -d todo -f sql/examples/todo/schema.sql
"${PSQL[@]}" -d todo -f sql/examples/todo/seed.sql
"${PSQL[@]}" -d todo -c "CREATE ROLE sdk_gateway LOGIN IN ROLE ferry_gateway"
echo "SELECT ferry.deploy_rules(:'rules')" | "${PSQL[@]}" -d todo -v rules="$(cat sql/examples/todo/sync-rules.yaml)" >/dev/null
for _ in $(seq 1 600); do
    [ "$("${PSQL[@]}" -d todo -At -c "SELECT state FROM ferry.status() ORDER BY version DESC LIMIT 1")" = active ] && break
    sleep 0.1
done

SECRET=sdk-check-secret-for-this-run-only-$RANDOM$RANDOM
KEY=$(printf '%s' "$SECRET" | base64 | tr '+/' '-_' | tr -d '=\n')
cat >"$DIR/gateway.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
postgres:
  url: postgres://sdk_gateway@127.0.0.1:$PG_PORT/todo
auth:
  audiences: [ferry-sdk-check]
  jwks:
    keys:
      - {kty: oct, alg: HS256, k: "$KEY"}
write:
  enabled: true
  tables:
    lists: public.lists
    todos: public.todos
log:
  level: warn
YAML
"$ROOT/target/release/ferry-gateway" --config "$DIR/gateway.yaml" serve >"$DIR/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$GW_PORT/probes/readiness" >/dev/null 2>&1 && break
    sleep 0.1
done

FERRY_ENDPOINT="http://127.0.0.1:$GW_PORT" FERRY_SECRET="$SECRET" FERRY_AUDIENCE=ferry-sdk-check \
    PG_PORT="$PG_PORT" WORK_DIR="$DIR" node "$SDK/check.mjs" \
    || { echo "--- gateway log"; cat "$DIR/gateway.log"; exit 1; }

#!/usr/bin/env bash
# ferry's demo: a throwaway Postgres with the extension and the todo example, the gateway, and the
# client example syncing live — then an offline edit that uploads and converges.
#
#   ./scripts/demo.sh            run it (installs what is missing first)
#   DEMO_PAUSE=0 ./scripts/demo.sh   no pauses between steps (used by the tests)
#
# Everything it starts is stopped and removed on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PAUSE=${DEMO_PAUSE:-2}
say() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }
pause() { sleep "$PAUSE"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

say "Setting up this machine (skipped when everything is already installed)"
./scripts/setup.sh
./scripts/install-extension.sh
say "Building the gateway and the client example (release)"
cargo build --release --quiet -p ferry-gateway --bin ferry-gateway
cargo build --release --quiet -p ferry-client --example todo
GATEWAY=$ROOT/target/release/ferry-gateway
TODO=$ROOT/target/release/examples/todo

DIR=$(mktemp -d /tmp/ferry-demo.XXXXXX)
chmod 755 "$DIR"
PG_PORT=$(free_port)
GW_PORT=$(free_port)
GW_PID=""
CLIENT_PID=""
cleanup() {
    set +e
    [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null && wait "$CLIENT_PID" 2>/dev/null
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    "$ROOT/scripts/pg-cluster.sh" stop "$DIR/pg" immediate >/dev/null 2>&1
    rm -rf "$DIR"
    printf '\nferry demo: cleaned up (cluster stopped, %s removed)\n' "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting a throwaway Postgres 15 on port $PG_PORT (wal_level=logical, the ferry applier worker for database 'todo')"
./scripts/pg-cluster.sh start "$DIR/pg" "$PG_PORT" --database todo
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE todo"

say "Creating the extension, the todo schema (lists, todos, announcements) and example data"
"${PSQL[@]}" -d todo -c "CREATE EXTENSION ferry"
"${PSQL[@]}" -d todo -f sql/examples/todo/schema.sql
"${PSQL[@]}" -d todo -f sql/examples/todo/seed.sql
# The gateway logs in as a role that may only call ferry's API (and switch to ferry_writer for uploads).
"${PSQL[@]}" -d todo -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_gateway') THEN CREATE ROLE demo_gateway LOGIN IN ROLE ferry_gateway; END IF; END \$\$"

say "Deploying the sync rules (sql/examples/todo/sync-rules.yaml)"
sed 's/^/    /' sql/examples/todo/sync-rules.yaml
"$GATEWAY" rules check sql/examples/todo/sync-rules.yaml
echo "SELECT ferry.deploy_rules(:'rules') AS version" |
    "${PSQL[@]}" -d todo -v rules="$(cat sql/examples/todo/sync-rules.yaml)"
for _ in $(seq 1 300); do
    state=$("${PSQL[@]}" -d todo -At -c "SELECT state FROM ferry.status() ORDER BY version DESC LIMIT 1")
    [ "$state" = active ] && break
    sleep 0.1
done
"${PSQL[@]}" -d todo -c "SELECT version, state, snapshot_rows, ops_written, last_checkpoint FROM ferry.status()"

SECRET=demo-secret-change-me-in-production
KEY=$(printf '%s' "$SECRET" | base64 | tr '+/' '-_' | tr -d '=\n')
cat >"$DIR/gateway.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
postgres:
  url: postgres://demo_gateway@127.0.0.1:$PG_PORT/todo
auth:
  audiences: [ferry]
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

start_gateway() {
    "$GATEWAY" --config "$DIR/gateway.yaml" serve >>"$DIR/gateway.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$GW_PORT/probes/readiness" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the gateway did not become ready:"; cat "$DIR/gateway.log"; exit 1
}
say "Starting the gateway on http://127.0.0.1:$GW_PORT (development HS256 key, write endpoint on)"
start_gateway

CLIENT_ARGS=(--endpoint "http://127.0.0.1:$GW_PORT" --dev-secret "$SECRET" --user demo-user --audience ferry --db "$DIR/demo-user.db")
say "Running the client example as demo-user: initial sync, then a live view of its todos"
"$TODO" "${CLIENT_ARGS[@]}" > >(tee "$DIR/client.log") 2>&1 &
CLIENT_PID=$!
for _ in $(seq 1 600); do
    grep -q "last synced" "$DIR/client.log" 2>/dev/null && break
    sleep 0.1
done
pause

say "Writing to Postgres directly; the client shows each change as it syncs"
for item in "Eggs" "Butter" "Apples"; do
    echo "  psql> INSERT INTO todos (list_id, owner_id, description) VALUES ('groceries', 'demo-user', '$item')"
    "${PSQL[@]}" -d todo -c "INSERT INTO todos (list_id, owner_id, description) VALUES ('groceries', 'demo-user', '$item')"
    sleep 1
done
echo "  psql> UPDATE todos SET completed = true WHERE description = 'Milk'"
"${PSQL[@]}" -d todo -c "UPDATE todos SET completed = true, completed_at = now() WHERE description = 'Milk'"
echo "  psql> INSERT INTO todos (list_id, owner_id, description) VALUES ('secret', 'someone-else', 'Not for demo-user')"
"${PSQL[@]}" -d todo -c "INSERT INTO todos (list_id, owner_id, description) VALUES ('secret', 'someone-else', 'Not for demo-user')"
sleep 1
pause

say "Going offline: stopping the client and the gateway"
kill "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null || true; CLIENT_PID=""
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; GW_PID=""

say "An edit made offline: it is written to the local SQLite at once and queued for upload"
"$TODO" "${CLIENT_ARGS[@]}" --offline --add "Written while offline" --list-id groceries
pause

say "Back online: the gateway starts again, the client uploads the queued write and converges"
start_gateway
"$TODO" "${CLIENT_ARGS[@]}" --once --timeout 60 | tail -n 8
echo "  Postgres now has it:"
"${PSQL[@]}" -d todo -c "SELECT description, owner_id, completed FROM todos WHERE description = 'Written while offline'"

say "Operator's view: ferry.status() and what demo-user syncs"
"${PSQL[@]}" -d todo -c "SELECT version, state, slot_lag_bytes, last_checkpoint, checkpoint_age, rows_processed, ops_written, rows_skipped FROM ferry.status()"
"${PSQL[@]}" -d todo -c "SELECT * FROM ferry.user_buckets('{\"sub\": \"demo-user\"}')"

say "Done. ferry kept Postgres and the client's SQLite in sync, online and offline."

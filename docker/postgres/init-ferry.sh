#!/usr/bin/env bash
# Runs once in the official postgres image's entrypoint, when the data directory is created
# (files in /docker-entrypoint-initdb.d/). Configures the server for ferry, creates the role the
# gateway logs in as, and installs the extension in $POSTGRES_DB.
set -Eeuo pipefail

db="${POSTGRES_DB:-postgres}"
gateway_password="${FERRY_GATEWAY_PASSWORD:-ferry_gateway}"
conf="$PGDATA/postgresql.conf"
psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$db")

# Settings take effect when the entrypoint restarts the server after initialization.
{
    echo
    echo "# ferry (docker/postgres/init-ferry.sh)"
    echo "wal_level = logical"
    echo "max_replication_slots = 20"
    echo "max_wal_senders = 20"
    echo "max_worker_processes = 16"
    echo "shared_preload_libraries = 'ferry'"
    echo "ferry.database = '$db'"
} >> "$conf"
# PostgreSQL 15.19+ refuses custom output plugins unless listed; older minors do not know the
# setting and would refuse to start with it, so write it only where it exists.
if [ -n "$("${psql[@]}" -tAc "SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries'")" ]; then
    echo "output_plugin_libraries = 'pgoutput, test_decoding, ferry'" >> "$conf"
fi

"${psql[@]}" --set=gateway_password="$gateway_password" <<'SQL'
SELECT format('CREATE ROLE ferry_gateway LOGIN PASSWORD %L', :'gateway_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ferry_gateway') \gexec
SELECT format('ALTER ROLE ferry_gateway LOGIN PASSWORD %L', :'gateway_password') \gexec
CREATE EXTENSION IF NOT EXISTS ferry;
-- The gateway switches to ferry_writer for the built-in write endpoint (sql/write_endpoint.sql
-- grants it when ferry_gateway exists first, as here; repeated in case it did not).
SELECT 'GRANT ferry_writer TO ferry_gateway'
WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ferry_writer') \gexec
SQL

# The todo example (sql/examples/todo), when the compose file mounts it: schema, data, rules.
example="${FERRY_EXAMPLE_DIR:-}"
if [ -n "$example" ] && [ -f "$example/schema.sql" ]; then
    "${psql[@]}" -f "$example/schema.sql"
    "${psql[@]}" -f "$example/seed.sql"
    echo "SELECT ferry.deploy_rules(:'rules')" |
        "${psql[@]}" --set=rules="$(cat "$example/sync-rules.yaml")"
fi

-- ferry's SQL API: the functions written in SQL. sql/API.md documents every function; the ones
-- that need the sync rules (checkpoint_for, user_buckets, deploy_rules, the applier) are written
-- in Rust and installed alongside.

-- One applier step, with the settings the output plugin's text conversions depend on pinned for
-- the duration of the call (and restored after it).
CREATE FUNCTION ferry.advance() RETURNS boolean
LANGUAGE sql VOLATILE
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET IntervalStyle = 'postgres'
AS $$ SELECT ferry._advance() $$;

CREATE FUNCTION ferry.explain_row(source regclass, "row" jsonb) RETURNS jsonb
LANGUAGE sql STABLE
AS $$ SELECT ferry._explain_row(source::oid, "row") $$;

-- The newest checkpoint of the active version (no row when none is active).
CREATE FUNCTION ferry.latest_checkpoint()
RETURNS TABLE (version bigint, op_id bigint, lsn pg_lsn, created_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT r.id, r.last_checkpoint, r.last_checkpoint_lsn, r.last_checkpoint_at
    FROM ferry.sync_rules r
    WHERE r.state = 'active' AND r.last_checkpoint IS NOT NULL
$$;

-- The change records of the checkpoints of a version after a position, oldest first.
CREATE FUNCTION ferry.checkpoint_changes(version bigint, after_lsn pg_lsn)
RETURNS TABLE (op_id bigint, lsn pg_lsn, created_at timestamptz, buckets jsonb,
               lookups_changed boolean, write_checkpoints jsonb)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ferry.sync_rules r WHERE r.id = checkpoint_changes.version) THEN
        RAISE EXCEPTION 'sync rules version % does not exist', checkpoint_changes.version
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN QUERY
        SELECT c.op_id, c.lsn, c.created_at, c.buckets, c.lookups_changed, c.write_checkpoints
        FROM ferry.checkpoints c
        WHERE c.version = checkpoint_changes.version AND c.lsn > after_lsn
        ORDER BY c.lsn;
END
$$;

-- Ops of the given buckets with afters[i] < op_id <= upto, by bucket (in the order given) then op
-- id, at most max_ops rows in all.
CREATE FUNCTION ferry.bucket_data(buckets text[], afters bigint[], upto bigint, max_ops integer)
RETURNS TABLE (bucket text, op_id bigint, op text, object_type text, object_id text, subkey text,
               data text, checksum bigint, target_op bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v bigint;
BEGIN
    IF cardinality(buckets) IS DISTINCT FROM cardinality(afters) THEN
        RAISE EXCEPTION 'bucket_data: % bucket names but % positions', cardinality(buckets), cardinality(afters)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_ops IS NULL OR max_ops < 1 THEN
        RAISE EXCEPTION 'bucket_data: max_ops must be positive, got %', max_ops
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The version is the bucket id's prefix: "<version>#name[...]".
    RETURN QUERY
        SELECT o.bucket::text, o.op_id, o.op, o.object_type, o.object_id, o.subkey, o.data,
               o.checksum, o.target_op
        FROM unnest(buckets, afters) WITH ORDINALITY AS b(name, after, ord)
        CROSS JOIN LATERAL (
            SELECT * FROM ferry.ops x
            WHERE x.version = split_part(b.name, '#', 1)::bigint
              AND x.bucket = b.name AND x.op_id > b.after AND x.op_id <= upto
            ORDER BY x.op_id
            LIMIT max_ops
        ) o
        WHERE b.name ~ '^[0-9]+#'
        ORDER BY b.ord, o.op_id
        LIMIT max_ops;
END
$$;

-- The write-checkpoint key of a user (and client).
CREATE FUNCTION ferry.write_checkpoint_key(user_id text, client_id text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN client_id IS NULL THEN user_id ELSE user_id || '/' || client_id END $$;

-- The legacy write checkpoint (GET /write-checkpoint2.json): a per-key counter, the current WAL
-- position, and a transactional logical message so the applier makes a checkpoint that includes
-- it, even on an idle database.
CREATE FUNCTION ferry.create_write_checkpoint(user_id text, client_id text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k text := ferry.write_checkpoint_key(user_id, client_id);
    n bigint;
BEGIN
    IF user_id IS NULL OR user_id = '' THEN
        RAISE EXCEPTION 'create_write_checkpoint: user_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ferry.write_checkpoints AS w (key, checkpoint, lsn, legacy)
    VALUES (k, 1, pg_current_wal_insert_lsn(), true)
    ON CONFLICT (key) DO UPDATE
        SET checkpoint = w.checkpoint + 1, lsn = pg_current_wal_insert_lsn(), legacy = true,
            updated_at = now()
    RETURNING checkpoint INTO n;
    PERFORM pg_logical_emit_message(true, 'ferry',
        json_build_object('write_checkpoint_key', k, 'checkpoint', n)::text);
    RETURN n;
END
$$;

-- The checkpoint-request flow (POST /sync/checkpoint-request): store the id only if greater,
-- return the effective one.
CREATE FUNCTION ferry.request_checkpoint(user_id text, client_id text, request_id bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k text := ferry.write_checkpoint_key(user_id, client_id);
    n bigint;
BEGIN
    IF user_id IS NULL OR user_id = '' THEN
        RAISE EXCEPTION 'request_checkpoint: user_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF request_id IS NULL OR request_id < 1 THEN
        RAISE EXCEPTION 'request_checkpoint: checkpoint_request_id must be a positive integer, got %', request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ferry.write_checkpoints AS w (key, checkpoint, lsn)
    VALUES (k, request_id, pg_current_wal_insert_lsn())
    ON CONFLICT (key) DO UPDATE
        SET checkpoint = GREATEST(w.checkpoint, EXCLUDED.checkpoint),
            lsn = CASE WHEN EXCLUDED.checkpoint >= w.checkpoint THEN EXCLUDED.lsn ELSE w.lsn END,
            updated_at = now()
    RETURNING checkpoint INTO n;
    PERFORM pg_logical_emit_message(true, 'ferry',
        json_build_object('write_checkpoint_key', k, 'checkpoint', n)::text);
    RETURN n;
END
$$;

-- Operators: one row per version that is not terminated.
CREATE FUNCTION ferry.status()
RETURNS TABLE (version bigint, state text, slot_name text, slot_lag_bytes bigint,
               wal_retained_bytes bigint, snapshot_done boolean, snapshot_tables_done integer,
               snapshot_tables_total integer, snapshot_rows bigint, last_checkpoint bigint,
               last_checkpoint_lsn pg_lsn, last_checkpoint_at timestamptz, checkpoint_age interval,
               rows_processed bigint, ops_written bigint, rows_skipped bigint, last_error text,
               last_error_at timestamptz, worker_paused boolean, warnings text[])
LANGUAGE sql STABLE
AS $$
    WITH limits AS (
        SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings
                WHERE name = 'max_slot_wal_keep_size') AS keep_mb,
               COALESCE(NULLIF(current_setting('ferry.wal_budget_mb', true), '')::bigint, 0) AS budget_mb
    ), v AS (
        SELECT r.*, s.slot_name AS live_slot, s.wal_status, s.confirmed_flush_lsn,
               (pg_current_wal_lsn() - s.restart_lsn)::bigint AS retained
        FROM ferry.sync_rules r
        LEFT JOIN pg_replication_slots s ON s.slot_name = r.slot_name
        WHERE r.state <> 'terminated'
    )
    SELECT v.id, v.state, v.slot_name,
           (pg_current_wal_lsn() - COALESCE(v.processed_lsn, v.confirmed_flush_lsn))::bigint,
           v.retained,
           v.snapshot_done,
           (SELECT count(*) FILTER (WHERE t.snapshot_done) FROM ferry.source_tables t WHERE t.version = v.id)::int,
           (SELECT count(*) FROM ferry.source_tables t WHERE t.version = v.id)::int,
           (SELECT COALESCE(sum(t.snapshot_rows), 0) FROM ferry.source_tables t WHERE t.version = v.id)::bigint,
           v.last_checkpoint, v.last_checkpoint_lsn, v.last_checkpoint_at,
           clock_timestamp() - v.last_checkpoint_at,
           v.rows_processed, v.ops_written, v.rows_skipped, v.last_error, v.last_error_at,
           (SELECT w.paused FROM ferry.worker_state w),
           array_remove(ARRAY[
               CASE WHEN v.slot_created AND v.live_slot IS NULL AND v.state <> 'stopped' THEN
                   format('replication slot %s is missing: the applier rebuilds this version', v.slot_name) END,
               CASE WHEN v.wal_status = 'lost' THEN
                   format('replication slot %s was invalidated (it fell behind max_slot_wal_keep_size): the applier rebuilds this version', v.slot_name) END,
               CASE WHEN v.wal_status = 'unreserved' THEN
                   format('replication slot %s is about to be invalidated: it retains more WAL than max_slot_wal_keep_size', v.slot_name) END,
               CASE WHEN l.keep_mb > 0 AND v.retained > 0.8 * l.keep_mb * 1048576 THEN
                   format('the slot retains %s of WAL, over 80%% of max_slot_wal_keep_size (%s MB)', pg_size_pretty(v.retained), l.keep_mb) END,
               CASE WHEN l.budget_mb > 0 AND v.retained > l.budget_mb * 1048576 THEN
                   format('the slot retains %s of WAL, more than ferry.wal_budget_mb (%s MB)', pg_size_pretty(v.retained), l.budget_mb) END
           ] || ARRAY(
               SELECT CASE WHEN c.oid IS NULL THEN
                          format('table %I.%I, read by these rules, was dropped', t.schema_name, t.table_name)
                      ELSE format('table %I.%I, read by these rules, was renamed to %I.%I; redeploy rules that name it',
                                  t.schema_name, t.table_name, n.nspname, c.relname) END
               FROM ferry.source_tables t
               LEFT JOIN pg_catalog.pg_class c ON c.oid = t.relid
               LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE t.version = v.id
                 AND (c.oid IS NULL OR c.relname <> t.table_name OR n.nspname <> t.schema_name)
           ), NULL)
    FROM v, limits l
    ORDER BY v.id
$$;

CREATE FUNCTION ferry.pause() RETURNS void
LANGUAGE sql VOLATILE
AS $$ UPDATE ferry.worker_state SET paused = true $$;

CREATE FUNCTION ferry.resume() RETURNS void
LANGUAGE sql VOLATILE
AS $$ UPDATE ferry.worker_state SET paused = false $$;

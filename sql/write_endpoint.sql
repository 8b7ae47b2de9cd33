-- ferry: the SQL behind the gateway's built-in write endpoint (`POST /api/crud`).
--
-- Contract: sql/API.md, section "Write endpoint". The extension's install script includes this
-- file after it has created schema `ferry` (and, if it does, role `ferry_gateway`).
--
-- How a request is applied (gateway `db.rs`, one transaction per upload):
--
--   BEGIN;
--   SET LOCAL ROLE ferry_writer;                                   -- no BYPASSRLS: policies apply
--   SELECT set_config('request.jwt.claims', '<claims json>', true), -- for RLS policies
--          set_config('ferry.claims',       '<claims json>', true),
--          set_config('request.jwt.claim.sub', '<sub>', true);
--   SELECT ferry.apply_upload(<sub>, <client_id>, <transaction_id>, '<entries>'::jsonb, '<tables>'::jsonb);
--   COMMIT;
--
-- Everything happens in that one transaction: the idempotency record and every write commit
-- together or not at all, so a retried upload is applied exactly once and a refused one leaves
-- nothing behind.

-- The role writes run as. It cannot log in and does not bypass row-level security: the app's
-- RLS policies (reading the claims above) decide what each user may write. The app grants it
-- the table privileges it needs, e.g. `GRANT SELECT, INSERT, UPDATE, DELETE ON todos TO ferry_writer`.
-- Roles are cluster-wide: CREATE EXTENSION in two databases at once may both find the role
-- missing, so the loser of that race takes the other's role instead of failing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ferry_writer') THEN
        BEGIN
            CREATE ROLE ferry_writer NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The gateway logs in as ferry_gateway and switches with SET LOCAL ROLE: it must be a member.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ferry_gateway') THEN
        GRANT ferry_writer TO ferry_gateway;
    END IF;
END
$$;

-- Uploads already applied: one row per (client id, transaction id). The user is recorded too, so
-- one user can never make another user's upload look applied.
CREATE TABLE ferry.applied_uploads (
    client_id      text        NOT NULL,
    transaction_id bigint      NOT NULL,
    user_id        text        NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, transaction_id)
);
-- For ferry.prune_applied_uploads().
CREATE INDEX applied_uploads_applied_at ON ferry.applied_uploads (applied_at);
REVOKE ALL ON ferry.applied_uploads FROM PUBLIC;

-- Records an upload; true when it is new, false when this user applied it before. Concurrent
-- identical uploads serialize on the primary key: the second waits for the first to commit and
-- then sees it (false) — or, if the first rolled back, records it itself (true).
-- SECURITY DEFINER so ferry_writer needs no privilege on the table.
CREATE FUNCTION ferry.record_upload(user_id text, client_id text, transaction_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner text;
BEGIN
    IF user_id IS NULL OR user_id = '' OR client_id IS NULL OR client_id = ''
       OR transaction_id IS NULL OR transaction_id < 0 THEN
        RAISE EXCEPTION 'ferry.record_upload: user_id and client_id must be non-empty and transaction_id non-negative'
            USING ERRCODE = 'FY005';
    END IF;
    INSERT INTO ferry.applied_uploads AS a (client_id, transaction_id, user_id)
    VALUES (record_upload.client_id, record_upload.transaction_id, record_upload.user_id)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT a.user_id INTO owner
    FROM ferry.applied_uploads AS a
    WHERE a.client_id = record_upload.client_id
      AND a.transaction_id = record_upload.transaction_id;
    IF owner IS DISTINCT FROM record_upload.user_id THEN
        RAISE EXCEPTION 'client id % is used by another user', record_upload.client_id
            USING ERRCODE = 'FY005';
    END IF;
    RETURN false;
END
$$;

-- Applies one client transaction (an array of CRUD entries, PROTOCOL.md §4.3):
--   {"op": "PUT",    "id": "<row id>", "type": "<synced table>", "data": {...}}  insert, or update the given columns
--   {"op": "PATCH",  "id": "<row id>", "type": "<synced table>", "data": {...}}  update the given columns
--   {"op": "DELETE", "id": "<row id>", "type": "<synced table>"}                 delete
-- `tables` maps synced table names to source tables ({"todos": "public.todos"}); an entry of any
-- other table is refused. The source table must have a unique `id` column. Values are converted
-- to the columns' types by jsonb_populate_record. Returns true when applied now, false when the
-- upload had been applied before (then nothing is written).
--
-- SECURITY INVOKER: it runs as the caller (ferry_writer), so RLS policies and privileges apply.
-- Any error aborts the whole upload; the message names the entry ("entry 2 (PUT todos/t1): ...")
-- and keeps the original SQLSTATE (23xxx constraint, 22xxx value, 42501 RLS/privilege, 42703
-- unknown column), which the gateway turns into 422 / 403 answers.
CREATE FUNCTION ferry.apply_upload(
    user_id text,
    client_id text,
    transaction_id bigint,
    entries jsonb,
    tables jsonb
)
RETURNS boolean
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry     jsonb;
    i         integer := 0;
    op        text;
    row_id    text;
    kind      text;
    source    text;
    target    regclass;
    data      jsonb;
    col       text;
    cols      text[];
    sets      text;
    err_state text;
    err_text  text;
    err_detail text;
BEGIN
    IF jsonb_typeof(entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'ferry.apply_upload: entries must be a JSON array' USING ERRCODE = 'FY005';
    END IF;
    IF jsonb_typeof(tables) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'ferry.apply_upload: tables must be a JSON object' USING ERRCODE = 'FY005';
    END IF;
    IF NOT ferry.record_upload(user_id, client_id, transaction_id) THEN
        RETURN false;
    END IF;

    FOR entry IN SELECT value FROM jsonb_array_elements(entries) LOOP
        op := entry ->> 'op';
        row_id := entry ->> 'id';
        kind := entry ->> 'type';
        source := tables ->> kind;
        IF row_id IS NULL OR row_id = '' THEN
            RAISE EXCEPTION 'entry % (% %): the row id is missing', i, op, kind USING ERRCODE = '22023';
        END IF;
        IF source IS NULL THEN
            RAISE EXCEPTION 'entry % (% %/%): table "%" is not writable through the gateway', i, op, kind, row_id, kind
                USING ERRCODE = '42P01';
        END IF;
        BEGIN
            target := source::regclass;
            data := COALESCE(entry -> 'data', '{}'::jsonb);
            IF jsonb_typeof(data) IS DISTINCT FROM 'object' THEN
                RAISE EXCEPTION 'data must be a JSON object' USING ERRCODE = '22023';
            END IF;
            IF data ? 'id' AND data ->> 'id' IS DISTINCT FROM row_id THEN
                RAISE EXCEPTION 'data.id differs from the entry id' USING ERRCODE = '22023';
            END IF;
            FOR col IN SELECT jsonb_object_keys(data) LOOP
                IF NOT EXISTS (
                    SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = target AND attname = col AND attnum > 0 AND NOT attisdropped
                ) THEN
                    RAISE EXCEPTION 'column "%" does not exist in %', col, target USING ERRCODE = '42703';
                END IF;
            END LOOP;
            data := data || jsonb_build_object('id', row_id);
            cols := ARRAY(SELECT k FROM jsonb_object_keys(data) AS k ORDER BY k);
            SELECT string_agg(format('%I = r.%I', c, c), ', ')
              INTO sets
              FROM unnest(cols) AS c
             WHERE c <> 'id';

            IF op = 'PUT' THEN
                EXECUTE format(
                    'INSERT INTO %s AS t (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1) AS r '
                    'ON CONFLICT (id) DO %s',
                    target,
                    (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) AS c),
                    (SELECT string_agg(format('r.%I', c), ', ') FROM unnest(cols) AS c),
                    target,
                    CASE WHEN sets IS NULL THEN 'NOTHING'
                         ELSE 'UPDATE SET ' || (SELECT string_agg(format('%I = EXCLUDED.%I', c, c), ', ')
                                                 FROM unnest(cols) AS c WHERE c <> 'id')
                    END)
                USING data;
            ELSIF op = 'PATCH' THEN
                IF sets IS NOT NULL THEN
                    EXECUTE format(
                        'UPDATE %s AS t SET %s FROM jsonb_populate_record(NULL::%s, $1) AS r WHERE t.id = r.id',
                        target, sets, target)
                    USING data;
                END IF;
            ELSIF op = 'DELETE' THEN
                EXECUTE format(
                    'DELETE FROM %s AS t USING jsonb_populate_record(NULL::%s, $1) AS r WHERE t.id = r.id',
                    target, target)
                USING jsonb_build_object('id', row_id);
            ELSE
                RAISE EXCEPTION 'unknown op "%" (expected PUT, PATCH or DELETE)', op USING ERRCODE = '22023';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE,
                                    err_text = MESSAGE_TEXT,
                                    err_detail = PG_EXCEPTION_DETAIL;
            RAISE EXCEPTION 'entry % (% %/%): %', i, op, kind, row_id, err_text
                USING ERRCODE = err_state, DETAIL = COALESCE(err_detail, '');
        END;
        i := i + 1;
    END LOOP;
    RETURN true;
END
$$;

-- Deletes idempotency records older than `older_than` (a client retries an upload for minutes or
-- hours, not weeks). Returns how many were deleted. For the applier's chores or a cron job.
CREATE FUNCTION ferry.prune_applied_uploads(older_than interval DEFAULT interval '30 days')
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM ferry.applied_uploads WHERE applied_at < now() - older_than RETURNING 1
    )
    SELECT count(*) FROM gone;
$$;

REVOKE ALL ON FUNCTION ferry.record_upload(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION ferry.apply_upload(text, text, bigint, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ferry.prune_applied_uploads(interval) FROM PUBLIC;
GRANT USAGE ON SCHEMA ferry TO ferry_writer;
GRANT EXECUTE ON FUNCTION ferry.record_upload(text, text, bigint) TO ferry_writer;
GRANT EXECUTE ON FUNCTION ferry.apply_upload(text, text, bigint, jsonb, jsonb) TO ferry_writer;

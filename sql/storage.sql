-- ferry's storage, created by CREATE EXTENSION ferry in schema ferry.
--
-- The model is PowerSync's (PROTOCOL.md §2): an op log per bucket, the current bucket membership of
-- every source row, a parameter lookup index, running bucket checksums, and checkpoints. Every
-- sync-rules version has its own storage: the big tables are partitioned by version, so a stopped
-- version's storage is dropped in one statement.

-- Deployed sync-rules versions: processing -> active -> stopped -> terminated.
CREATE TABLE ferry.sync_rules (
    id                   bigint PRIMARY KEY,
    content              text NOT NULL,
    content_hash         text NOT NULL,
    plan                 text NOT NULL,
    state                text NOT NULL DEFAULT 'processing'
                         CHECK (state IN ('processing', 'active', 'stopped', 'terminated')),
    slot_name            text NOT NULL,
    slot_created         boolean NOT NULL DEFAULT false,
    snapshot_done        boolean NOT NULL DEFAULT false,
    -- No checkpoint before the stream has passed the end of the snapshot (PROTOCOL.md §5.3).
    no_checkpoint_before pg_lsn,
    -- The slot position up to which changes are applied; the next step moves the slot there.
    processed_lsn        pg_lsn,
    last_checkpoint      bigint,
    last_checkpoint_lsn  pg_lsn,
    last_checkpoint_at   timestamptz,
    -- The next op id to hand out (op ids come from this counter, not a sequence).
    next_op_id           bigint NOT NULL DEFAULT 1,
    rows_processed       bigint NOT NULL DEFAULT 0,
    ops_written          bigint NOT NULL DEFAULT 0,
    rows_skipped         bigint NOT NULL DEFAULT 0,
    last_error           text,
    last_error_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    activated_at         timestamptz,
    stopped_at           timestamptz
);

CREATE SEQUENCE ferry.sync_rules_id_seq OWNED BY ferry.sync_rules.id;

-- At most one active version.
CREATE UNIQUE INDEX sync_rules_one_active ON ferry.sync_rules ((true)) WHERE state = 'active';

-- The source tables a version reads, and their snapshot progress.
CREATE TABLE ferry.source_tables (
    version           bigint NOT NULL REFERENCES ferry.sync_rules (id) ON DELETE CASCADE,
    relid             oid NOT NULL,
    schema_name       text NOT NULL,
    table_name        text NOT NULL,
    key_columns       text[] NOT NULL,
    -- Replica identity FULL: decoding sends complete rows, so no row copy is kept.
    identity_full     boolean NOT NULL,
    snapshot_done     boolean NOT NULL DEFAULT false,
    snapshot_last_key text[],
    snapshot_rows     bigint NOT NULL DEFAULT 0,
    estimated_rows    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (version, relid)
);

-- The op log (PROTOCOL.md §2.1). op: PUT, REMOVE, MOVE, CLEAR. checksum: unsigned 32-bit.
CREATE TABLE ferry.ops (
    version     bigint NOT NULL,
    bucket      text COLLATE "C" NOT NULL,
    op_id       bigint NOT NULL,
    op          text NOT NULL,
    object_type text,
    object_id   text,
    subkey      text,
    data        text,
    checksum    bigint NOT NULL,
    target_op   bigint,
    PRIMARY KEY (version, bucket, op_id)
) PARTITION BY LIST (version);

-- Per source row: the (bucket, object_type, object_id) it is in now (JSON array of triples), the
-- parameter lookup keys it produces now (JSON array), and the full row when Postgres stores some
-- of its values out of line (TOAST) and the table is not REPLICA IDENTITY FULL, to fill in the
-- unchanged TOAST values a later update leaves out. row_key is the JSON array of its replica
-- identity values.
CREATE TABLE ferry.current_rows (
    version      bigint NOT NULL,
    source_table oid NOT NULL,
    row_key      text COLLATE "C" NOT NULL,
    buckets      text NOT NULL,
    lookups      text NOT NULL,
    data         bytea,
    PRIMARY KEY (version, source_table, row_key)
) PARTITION BY LIST (version);

-- The parameter lookup index (PROTOCOL.md §2.5): the output rows each source row contributes to a
-- lookup key. Only the current state is kept: readers see it at a checkpoint through MVCC, because
-- the applier commits index changes and the checkpoint in one transaction.
CREATE TABLE ferry.parameter_index (
    version           bigint NOT NULL,
    lookup            text COLLATE "C" NOT NULL,
    source_table      oid NOT NULL,
    row_key           text COLLATE "C" NOT NULL,
    bucket_parameters text NOT NULL,
    PRIMARY KEY (version, lookup, source_table, row_key)
) PARTITION BY LIST (version);

-- Running checksum (mod 2^32) and op count of every bucket, maintained by the applier: a
-- checkpoint's checksums are read, never recomputed by scanning ops.
CREATE TABLE ferry.bucket_state (
    version   bigint NOT NULL,
    bucket    text COLLATE "C" NOT NULL,
    checksum  bigint NOT NULL,
    count     bigint NOT NULL,
    last_op   bigint NOT NULL,
    -- Ops superseded since the bucket was last compacted: PUTs and REMOVEs of a row that a later op
    -- of the same row replaced. Automatic compaction runs when they are a quarter of the bucket's
    -- ops, so buckets that only grow (inserts) are never rewritten.
    superseded bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (version, bucket)
) PARTITION BY LIST (version);

-- Checkpoints (PROTOCOL.md §2.6): the op id made visible and the source position.
CREATE TABLE ferry.checkpoints (
    version    bigint NOT NULL REFERENCES ferry.sync_rules (id) ON DELETE CASCADE,
    lsn        pg_lsn NOT NULL,
    op_id      bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The change record: buckets changed with their checksum and count at this checkpoint,
    -- whether any parameter lookup changed, and the write checkpoints that became visible.
    buckets          jsonb NOT NULL DEFAULT '[]',
    lookups_changed  boolean NOT NULL DEFAULT false,
    write_checkpoints jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (version, lsn)
);

-- Write checkpoints (PROTOCOL.md §2.7), both flows. key: sub, or sub/client_id.
CREATE TABLE ferry.write_checkpoints (
    key          text PRIMARY KEY,
    checkpoint   bigint NOT NULL,
    lsn          pg_lsn NOT NULL,
    -- Keys used by the legacy counter flow are never pruned: an offline client may wait on them.
    legacy       boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The background worker's switches, one row.
CREATE TABLE ferry.worker_state (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    paused boolean NOT NULL DEFAULT false
);
INSERT INTO ferry.worker_state DEFAULT VALUES;

//! Turning row changes into storage writes, in bounded chunks.
//!
//! A [`Batch`] receives the changes of one applier step (decoded from the slot, or copied by a
//! snapshot page) and processes them a chunk at a time: it loads the stored state of the rows a
//! chunk touches in one query, evaluates each change against the rules (PROTOCOL.md §2.2: a PUT for
//! every output, a REMOVE for every membership the row no longer has), and writes the chunk's ops,
//! current-row state and parameter-index entries with one `INSERT … SELECT FROM unnest(…)` each.
//! Memory is bounded by the chunk size, whatever the size of the source transaction. Bucket
//! checksum deltas are summed per bucket and written once per step by the checkpoint.

use std::collections::{HashMap, HashSet};

use ferry_rules::checksum::{add_checksums, remove_checksum, subkey};
use ferry_rules::row_json::write_value_json;
use ferry_rules::{Row, Value};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::Spi;

use crate::applier::version::Version;
use crate::change_record::{decode_stored_row, encode_stored_row, ColumnInfo, ColumnValue};
use crate::errors::FerryError;
use crate::pg_adapter::bulk_insert::{self, Column};

/// Changes processed per chunk.
const CHUNK: usize = 2_000;

/// A row's JSON larger than this is not synced (PROTOCOL.md §5.6).
pub const MAX_ROW_JSON: usize = 15 * 1024 * 1024;

/// One row change.
#[derive(Debug)]
pub enum Change {
    /// Insert or update.
    Upsert {
        /// Relation OID.
        relid: u32,
        /// The new row.
        new: Vec<ColumnValue>,
        /// The old row, when the identity changed or is FULL.
        old: Option<Vec<ColumnValue>>,
        /// Whether Postgres stores any of the new row's values out of line (TOAST).
        toasted: bool,
    },
    /// Delete.
    Delete {
        /// Relation OID.
        relid: u32,
        /// The old row (identity columns set).
        old: Vec<ColumnValue>,
    },
}

/// The stored state of a source row (`ferry.current_rows`).
#[derive(Debug, Clone, Default)]
struct CurrentRow {
    /// (bucket, object_type, object_id) memberships.
    buckets: Vec<(String, String, String)>,
    /// Parameter lookup keys.
    lookups: Vec<String>,
    /// The full row, kept only when Postgres stores some of its values out of line (TOAST) and the
    /// table is not REPLICA IDENTITY FULL: an update that leaves such a value unchanged does not
    /// carry it, and this copy fills it in. A row stored wholly inline never has a value left out.
    data: Option<Vec<u8>>,
}

/// Per-bucket sums of a step.
#[derive(Debug, Clone, Copy, Default)]
pub struct BucketDelta {
    /// Wrapping sum of the new ops' checksums.
    pub checksum: u32,
    /// Number of new ops.
    pub count: i64,
    /// Highest new op id.
    pub last_op: i64,
    /// Earlier ops of the bucket the new ones supersede.
    pub superseded: i64,
}

/// Column vectors of ops to insert.
#[derive(Default)]
struct OpBuffer {
    bucket: Vec<String>,
    op_id: Vec<i64>,
    op: Vec<&'static str>,
    object_type: Vec<String>,
    object_id: Vec<String>,
    subkey: Vec<String>,
    data: Vec<Option<String>>,
    checksum: Vec<i64>,
}

impl OpBuffer {
    fn len(&self) -> usize {
        self.op_id.len()
    }
}

/// The changes of one step, on their way to storage.
pub struct Batch<'v> {
    version: &'v Version,
    /// Relation shapes, from the plugin's `R` records or the snapshot query.
    relations: HashMap<u32, Vec<ColumnInfo>>,
    pending: Vec<Change>,
    /// Snapshot pages of a first copy: rows are known to be new, no state to load.
    assume_new: bool,
    /// The next op id to hand out.
    pub next_op_id: i64,
    ops: OpBuffer,
    /// Per-bucket sums of the whole step.
    pub bucket_deltas: HashMap<String, BucketDelta>,
    /// Whether any parameter-index entry changed.
    pub lookups_changed: bool,
    /// Rows processed.
    pub rows_processed: i64,
    /// Rows (or row outputs) skipped, and the last reason.
    pub rows_skipped: i64,
    /// The last skip reason.
    pub last_skip: Option<String>,
    /// Ops written.
    pub ops_written: i64,
}

impl<'v> Batch<'v> {
    /// A batch for `version`, handing out op ids from its counter.
    pub fn new(version: &'v Version, assume_new: bool) -> Self {
        Batch {
            version,
            relations: HashMap::new(),
            pending: Vec::new(),
            assume_new,
            next_op_id: version.state.next_op_id,
            ops: OpBuffer::default(),
            bucket_deltas: HashMap::new(),
            lookups_changed: false,
            rows_processed: 0,
            rows_skipped: 0,
            last_skip: None,
            ops_written: 0,
        }
    }

    /// Records a relation's shape (before its changes).
    pub fn relation(&mut self, relid: u32, columns: Vec<ColumnInfo>) -> Result<(), FerryError> {
        if self.relations.get(&relid).is_some_and(|c| *c != columns) {
            // Changes queued under the old shape must be processed with it.
            self.flush()?;
        }
        self.relations.insert(relid, columns);
        Ok(())
    }

    /// Queues a change; processes a chunk when enough are queued.
    pub fn push(&mut self, change: Change) -> Result<(), FerryError> {
        self.pending.push(change);
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Processes and writes everything queued.
    pub fn flush(&mut self) -> Result<(), FerryError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.pending);
        let mut chunk = Chunk::default();
        if !self.assume_new {
            chunk.load(self, &changes)?;
        }
        for change in changes {
            self.process(&mut chunk, change);
        }
        self.write(chunk)
    }

    /// Removes every row of the given tables (TRUNCATE, PROTOCOL.md §5.4).
    pub fn truncate(&mut self, relids: &[u32]) -> Result<(), FerryError> {
        self.flush()?;
        for &relid in relids {
            let Some(table) = self.version.tables.get(&relid) else {
                continue;
            };
            let table_name = format!("{}.{}", table.table.schema, table.table.name);
            let mut after = String::new();
            loop {
                let mut chunk = Chunk::default();
                let mut keys = Vec::new();
                Spi::connect(|client| {
                    let rows = client.select(
                        "SELECT row_key::text, buckets, lookups FROM ferry.current_rows \
                         WHERE version = $1 AND source_table = $2 AND row_key > $3 \
                         ORDER BY row_key LIMIT 1000",
                        None,
                        &[
                            self.version.state.id.into(),
                            pg_sys::Oid::from(relid).into(),
                            after.as_str().into(),
                        ],
                    )?;
                    for row in rows {
                        let key: String = row.get(1)?.unwrap_or_default();
                        let state = parse_state(
                            &row.get::<String>(2)?.unwrap_or_default(),
                            &row.get::<String>(3)?.unwrap_or_default(),
                            None,
                        );
                        keys.push(key.clone());
                        chunk.loaded_present.insert((relid, key.clone()));
                        chunk.rows.insert((relid, key), Some(state));
                    }
                    Ok::<_, FerryError>(())
                })?;
                let Some(last) = keys.last() else {
                    break;
                };
                after = last.clone();
                for key in keys {
                    self.remove_row(&mut chunk, relid, &table_name, key);
                }
                self.write(chunk)?;
            }
        }
        Ok(())
    }

    fn process(&mut self, chunk: &mut Chunk, change: Change) {
        self.rows_processed += 1;
        match change {
            Change::Upsert {
                relid,
                new,
                old,
                toasted,
            } => self.upsert(chunk, relid, new, old, toasted),
            Change::Delete { relid, old } => {
                let Some(columns) = self.relations.get(&relid) else {
                    return;
                };
                let key = row_key(columns, &old);
                let Some(table) = self.version.tables.get(&relid) else {
                    return;
                };
                let table_name = format!("{}.{}", table.table.schema, table.table.name);
                self.remove_row(chunk, relid, &table_name, key);
            }
        }
    }

    fn skip(&mut self, reason: String) {
        self.rows_skipped += 1;
        self.last_skip = Some(reason);
    }

    fn upsert(
        &mut self,
        chunk: &mut Chunk,
        relid: u32,
        new: Vec<ColumnValue>,
        old: Option<Vec<ColumnValue>>,
        toasted: bool,
    ) {
        let version = self.version;
        let (Some(columns), Some(table)) = (self.relations.get(&relid), version.tables.get(&relid))
        else {
            return;
        };
        let columns = columns.clone();
        let table_name = format!("{}.{}", table.table.schema, table.table.name);
        let key = row_key(&columns, &new);
        if let Some(old) = &old {
            let old_key = row_key(&columns, old);
            if old_key != key {
                // A primary-key change is a delete of the old row and an insert of the new one.
                self.remove_row(chunk, relid, &table_name, old_key);
            }
        }
        let state = chunk.rows.get(&(relid, key.clone())).cloned().flatten();

        // Build the full row, filling unchanged TOAST values from the old tuple (REPLICA
        // IDENTITY FULL) or the stored copy.
        let mut stored: Option<Vec<(String, Value)>> = None;
        let mut values = Vec::with_capacity(columns.len());
        for (i, (column, value)) in columns.iter().zip(new).enumerate() {
            let value = match value {
                ColumnValue::Value(v) => v,
                ColumnValue::UnchangedToast => {
                    let from_old = old.as_ref().and_then(|o| match o.get(i) {
                        Some(ColumnValue::Value(v)) => Some(v.clone()),
                        _ => None,
                    });
                    let from_stored = || {
                        if stored.is_none() {
                            stored = state
                                .as_ref()
                                .and_then(|s| s.data.as_deref())
                                .and_then(|d| decode_stored_row(d).ok());
                        }
                        stored.as_ref().and_then(|row| {
                            row.iter()
                                .find(|(n, _)| *n == column.name)
                                .map(|(_, v)| v.clone())
                        })
                    };
                    match from_old.or_else(from_stored) {
                        Some(v) => v,
                        None => {
                            self.skip(format!(
                                "{table_name} row {key}: the unchanged TOAST value of column {} is not known (no stored copy of the row); the row is left as it was",
                                column.name
                            ));
                            return;
                        }
                    }
                }
            };
            values.push((column.name.clone(), value));
        }
        let row = Row::new(values);
        let evaluated = version.evaluate(&table.table, &row);
        if !evaluated.errors.is_empty() {
            self.skip(format!(
                "{table_name} row {key}: {}",
                evaluated.errors.join("; ")
            ));
        }
        let sub = subkey(&table_name, &key);
        let previous = state.unwrap_or_default();
        let mut memberships = Vec::with_capacity(evaluated.outputs.len());
        for (bucket, object_type, object_id, data, checksum) in evaluated.outputs {
            if data.len() > MAX_ROW_JSON {
                self.skip(format!(
                    "{table_name} row {key}: its JSON for bucket {bucket} is {} bytes, more than the 15 MB a synced row may have (PSYNC_S1002); it is not synced",
                    data.len()
                ));
                continue;
            }
            let membership = (bucket, object_type, object_id);
            let supersedes = previous.buckets.contains(&membership);
            self.push_op(
                &membership.0,
                "PUT",
                &membership.1,
                &membership.2,
                &sub,
                Some(data),
                checksum,
                supersedes,
            );
            memberships.push(membership);
        }
        let kept: HashSet<&(String, String, String)> = memberships.iter().collect();
        for m in &previous.buckets {
            if !kept.contains(m) {
                self.push_op(
                    &m.0,
                    "REMOVE",
                    &m.1,
                    &m.2,
                    &sub,
                    None,
                    remove_checksum(&sub),
                    true,
                );
            }
        }
        let new_lookups: HashSet<&str> =
            evaluated.lookups.iter().map(|(k, _)| k.as_str()).collect();
        for lookup in &previous.lookups {
            if !new_lookups.contains(lookup.as_str()) {
                chunk
                    .params
                    .insert((lookup.clone(), relid, key.clone()), None);
            }
        }
        let mut lookup_keys = Vec::with_capacity(evaluated.lookups.len());
        for (lookup, rows) in evaluated.lookups {
            lookup_keys.push(lookup.clone());
            chunk
                .params
                .insert((lookup, relid, key.clone()), Some(rows));
        }
        let data = (toasted && !table.identity_full).then(|| encode_stored_row(row.columns()));
        chunk.rows.insert(
            (relid, key),
            Some(CurrentRow {
                buckets: memberships,
                lookups: lookup_keys,
                data,
            }),
        );
    }

    fn remove_row(&mut self, chunk: &mut Chunk, relid: u32, table_name: &str, key: String) {
        let Some(Some(state)) = chunk.rows.get(&(relid, key.clone())).cloned() else {
            // Not stored: the row was never synced (or is already gone).
            chunk.rows.insert((relid, key), None);
            return;
        };
        let sub = subkey(table_name, &key);
        for m in &state.buckets {
            self.push_op(
                &m.0,
                "REMOVE",
                &m.1,
                &m.2,
                &sub,
                None,
                remove_checksum(&sub),
                true,
            );
        }
        for lookup in state.lookups {
            chunk.params.insert((lookup, relid, key.clone()), None);
        }
        chunk.rows.insert((relid, key), None);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_op(
        &mut self,
        bucket: &str,
        op: &'static str,
        object_type: &str,
        object_id: &str,
        subkey: &str,
        data: Option<String>,
        checksum: u32,
        supersedes: bool,
    ) {
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        let delta = self.bucket_deltas.entry(bucket.to_owned()).or_default();
        delta.checksum = add_checksums(delta.checksum, checksum);
        delta.count += 1;
        delta.last_op = op_id;
        delta.superseded += i64::from(supersedes);
        self.ops.bucket.push(bucket.to_owned());
        self.ops.op_id.push(op_id);
        self.ops.op.push(op);
        self.ops.object_type.push(object_type.to_owned());
        self.ops.object_id.push(object_id.to_owned());
        self.ops.subkey.push(subkey.to_owned());
        self.ops.data.push(data);
        self.ops.checksum.push(i64::from(checksum));
    }

    /// Writes a processed chunk: ops, current rows, parameter index.
    fn write(&mut self, chunk: Chunk) -> Result<(), FerryError> {
        let version = self.version.state.id;
        let ops = std::mem::take(&mut self.ops);
        let n_ops = ops.len();
        if n_ops > 0 {
            let OpBuffer {
                bucket,
                op_id,
                op,
                object_type,
                object_id,
                subkey,
                data,
                checksum,
            } = ops;
            let op: Vec<String> = op.into_iter().map(str::to_owned).collect();
            // In index order: consecutive inserts then land on the same leaf pages (and a
            // bucket's ops sit together in the heap, where readers page through them).
            let mut order: Vec<usize> = (0..n_ops).collect();
            order
                .sort_unstable_by(|&a, &b| bucket[a].cmp(&bucket[b]).then(op_id[a].cmp(&op_id[b])));
            let (bucket, op_id, op) = (
                permute(bucket, &order),
                permute(op_id, &order),
                permute(op, &order),
            );
            let (object_type, object_id) =
                (permute(object_type, &order), permute(object_id, &order));
            let (subkey, data, checksum) = (
                permute(subkey, &order),
                permute(data, &order),
                permute(checksum, &order),
            );
            bulk_insert::insert(
                self.version.ops_partition,
                &[
                    Column::ConstInt8(version),
                    Column::Text(&bucket),
                    Column::Int8(&op_id),
                    Column::Text(&op),
                    Column::Text(&object_type),
                    Column::Text(&object_id),
                    Column::Text(&subkey),
                    Column::OptText(&data),
                    Column::Int8(&checksum),
                    Column::Null,
                ],
                n_ops,
            )?;
        }
        let inserted = Spi::connect_mut(|client| {
            // Current rows: deletes, inserts of rows not stored yet, updates of stored ones.
            let mut deleted = RowKeys::default();
            let mut inserted = RowStates::default();
            let mut updated = RowStates::default();
            // In key order, so index inserts of increasing keys take Postgres' rightmost-page path.
            let mut rows: Vec<_> = chunk.rows.into_iter().collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for ((relid, key), state) in rows {
                let present = chunk.loaded_present.contains(&(relid, key.clone()));
                match state {
                    None if present => deleted.push(relid, key),
                    None => {}
                    Some(state) if present => updated.push(relid, key, state),
                    Some(state) => inserted.push(relid, key, state),
                }
            }
            if !deleted.keys.is_empty() {
                client.update(
                    "DELETE FROM ferry.current_rows c USING unnest($2::oid[], $3::text[]) AS d(t, k) \
                     WHERE c.version = $1 AND c.source_table = d.t AND c.row_key = d.k",
                    None,
                    &[version.into(), deleted.tables.into(), deleted.keys.into()],
                )?;
            }
            if !inserted.keys.is_empty() && self.assume_new {
                // A first snapshot copy loads no state (its rows are new, but a ctid page may see
                // a row twice): upsert.
                client.update(
                    "INSERT INTO ferry.current_rows (version, source_table, row_key, buckets, lookups, data) \
                     SELECT $1, * FROM unnest($2::oid[], $3::text[], $4::text[], $5::text[], $6::bytea[]) \
                     ON CONFLICT (version, source_table, row_key) DO UPDATE \
                     SET buckets = EXCLUDED.buckets, lookups = EXCLUDED.lookups, data = EXCLUDED.data",
                    None,
                    &inserted.args(version),
                )?;
                inserted = RowStates::default();
            }
            if !updated.keys.is_empty() {
                client.update(
                    "UPDATE ferry.current_rows c SET buckets = u.b, lookups = u.l, data = u.d \
                     FROM unnest($2::oid[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS u(t, k, b, l, d) \
                     WHERE c.version = $1 AND c.source_table = u.t AND c.row_key = u.k",
                    None,
                    &updated.args(version),
                )?;
            }

            // Parameter index: net effect per (lookup, row).
            let mut del_lookups = Vec::new();
            let mut del_tables = Vec::new();
            let mut del_keys = Vec::new();
            let mut up_lookups = Vec::new();
            let mut up_tables = Vec::new();
            let mut up_keys = Vec::new();
            let mut up_params = Vec::new();
            for ((lookup, relid, key), params) in chunk.params {
                match params {
                    None => {
                        del_lookups.push(lookup);
                        del_tables.push(pg_sys::Oid::from(relid));
                        del_keys.push(key);
                    }
                    Some(p) => {
                        up_lookups.push(lookup);
                        up_tables.push(pg_sys::Oid::from(relid));
                        up_keys.push(key);
                        up_params.push(p);
                    }
                }
            }
            if !del_keys.is_empty() {
                let deleted = client.update(
                    "DELETE FROM ferry.parameter_index p USING unnest($2::text[], $3::oid[], $4::text[]) AS d(l, t, k) \
                     WHERE p.version = $1 AND p.lookup = d.l AND p.source_table = d.t AND p.row_key = d.k",
                    None,
                    &[version.into(), del_lookups.into(), del_tables.into(), del_keys.into()],
                )?;
                if !deleted.is_empty() {
                    self.lookups_changed = true;
                }
            }
            if !up_keys.is_empty() {
                let changed = client.update(
                    "INSERT INTO ferry.parameter_index (version, lookup, source_table, row_key, bucket_parameters) \
                     SELECT $1, * FROM unnest($2::text[], $3::oid[], $4::text[], $5::text[]) \
                     ON CONFLICT (version, lookup, source_table, row_key) DO UPDATE \
                     SET bucket_parameters = EXCLUDED.bucket_parameters \
                     WHERE ferry.parameter_index.bucket_parameters IS DISTINCT FROM EXCLUDED.bucket_parameters",
                    None,
                    &[
                        version.into(),
                        up_lookups.into(),
                        up_tables.into(),
                        up_keys.into(),
                        up_params.into(),
                    ],
                )?;
                if !changed.is_empty() {
                    self.lookups_changed = true;
                }
            }
            Ok::<_, FerryError>(inserted)
        })?;
        if !inserted.keys.is_empty() {
            bulk_insert::insert(
                self.version.current_rows_partition,
                &[
                    Column::ConstInt8(version),
                    Column::Oid(&inserted.tables),
                    Column::Text(&inserted.keys),
                    Column::Text(&inserted.buckets),
                    Column::Text(&inserted.lookups),
                    Column::OptBytes(&inserted.data),
                ],
                inserted.keys.len(),
            )?;
        }
        self.ops_written += n_ops as i64;
        Ok(())
    }
}

/// `values` in the order of the indexes in `order` (a permutation).
fn permute<T: Default>(mut values: Vec<T>, order: &[usize]) -> Vec<T> {
    order
        .iter()
        .map(|&i| std::mem::take(&mut values[i]))
        .collect()
}

/// Keys of stored rows, as SQL array arguments.
#[derive(Default)]
struct RowKeys {
    tables: Vec<pg_sys::Oid>,
    keys: Vec<String>,
}

impl RowKeys {
    fn push(&mut self, relid: u32, key: String) {
        self.tables.push(pg_sys::Oid::from(relid));
        self.keys.push(key);
    }
}

/// Rows' new stored state, as SQL array arguments.
#[derive(Default)]
struct RowStates {
    tables: Vec<pg_sys::Oid>,
    keys: Vec<String>,
    buckets: Vec<String>,
    lookups: Vec<String>,
    data: Vec<Option<Vec<u8>>>,
}

impl RowStates {
    fn push(&mut self, relid: u32, key: String, state: CurrentRow) {
        self.tables.push(pg_sys::Oid::from(relid));
        self.keys.push(key);
        self.buckets
            .push(serde_json::to_string(&state.buckets).unwrap_or_else(|_| "[]".into()));
        self.lookups
            .push(serde_json::to_string(&state.lookups).unwrap_or_else(|_| "[]".into()));
        self.data.push(state.data);
    }

    /// `$1` the version, `$2 …$6` tables, keys, buckets, lookups, data.
    fn args(self, version: i64) -> [DatumWithOid<'static>; 6] {
        [
            version.into(),
            self.tables.into(),
            self.keys.into(),
            self.buckets.into(),
            self.lookups.into(),
            self.data.into(),
        ]
    }
}

/// The working state of one chunk.
#[derive(Default)]
struct Chunk {
    /// Stored state of the rows the chunk touches (None: no such row), updated as changes apply.
    rows: HashMap<(u32, String), Option<CurrentRow>>,
    /// Rows that existed in storage when loaded (their deletion must be written).
    loaded_present: HashSet<(u32, String)>,
    /// Net parameter-index writes: Some(output rows JSON) upserts, None deletes.
    params: HashMap<(String, u32, String), Option<String>>,
}

impl Chunk {
    /// Loads the stored state of every row the changes touch.
    fn load(&mut self, batch: &Batch<'_>, changes: &[Change]) -> Result<(), FerryError> {
        let mut keys_by_table: HashMap<u32, Vec<String>> = HashMap::new();
        for change in changes {
            let (relid, rows): (u32, Vec<&Vec<ColumnValue>>) = match change {
                Change::Upsert {
                    relid, new, old, ..
                } => (*relid, std::iter::once(new).chain(old.iter()).collect()),
                Change::Delete { relid, old } => (*relid, vec![old]),
            };
            let Some(columns) = batch.relations.get(&relid) else {
                continue;
            };
            for values in rows {
                let key = row_key(columns, values);
                if self.rows.insert((relid, key.clone()), None).is_none() {
                    keys_by_table.entry(relid).or_default().push(key);
                }
            }
        }
        let version = batch.version.state.id;
        Spi::connect(|client| {
            for (relid, keys) in keys_by_table {
                let rows = client.select(
                    "SELECT row_key::text, buckets, lookups, data FROM ferry.current_rows \
                     WHERE version = $1 AND source_table = $2 AND row_key = ANY($3)",
                    None,
                    &[
                        version.into(),
                        pg_sys::Oid::from(relid).into(),
                        DatumWithOid::from(keys),
                    ],
                )?;
                for row in rows {
                    let key: String = row.get(1)?.unwrap_or_default();
                    let state = parse_state(
                        &row.get::<String>(2)?.unwrap_or_default(),
                        &row.get::<String>(3)?.unwrap_or_default(),
                        row.get::<Vec<u8>>(4)?,
                    );
                    self.loaded_present.insert((relid, key.clone()));
                    self.rows.insert((relid, key), Some(state));
                }
            }
            Ok::<_, FerryError>(())
        })
    }
}

fn parse_state(buckets: &str, lookups: &str, data: Option<Vec<u8>>) -> CurrentRow {
    CurrentRow {
        buckets: serde_json::from_str(buckets).unwrap_or_default(),
        lookups: serde_json::from_str(lookups).unwrap_or_default(),
        data,
    }
}

/// The row key: the JSON array of the identity columns' values (all columns when none is flagged).
pub fn row_key(columns: &[ColumnInfo], values: &[ColumnValue]) -> String {
    let any_key = columns.iter().any(|c| c.is_key);
    let mut out = String::from("[");
    let mut first = true;
    for (column, value) in columns.iter().zip(values) {
        if any_key && !column.is_key {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        match value {
            ColumnValue::Value(Value::Blob(b)) => {
                out.push_str("\"\\\\x");
                for byte in b {
                    out.push_str(&format!("{byte:02x}"));
                }
                out.push('"');
            }
            ColumnValue::Value(v) => write_value_json(&mut out, v),
            ColumnValue::UnchangedToast => out.push_str("null"),
        }
    }
    out.push(']');
    out
}

//! The end of every applier step: bucket checksums, the version's counters and position, and —
//! at a consistent source-transaction boundary — a checkpoint with its change record, all in the
//! step's transaction; then the `ferry_checkpoint` notification (delivered only if it commits).
//!
//! A processing version is activated by its first checkpoint: the flip and the checkpoint commit
//! together.

use pgrx::Spi;
use serde_json::json;

use crate::applier::batch::Batch;
use crate::applier::version::{format_lsn, Version};
use crate::errors::FerryError;

/// Where a step got to in the version's slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Position {
    /// Everything committed before this has been applied (None: the slot was not read).
    pub processed: Option<u64>,
    /// The end of the last source transaction applied, when the step ends at a consistent
    /// boundary that gets a checkpoint.
    pub checkpoint: Option<u64>,
}

/// Writes what a step produced.
pub fn finish_step(
    version: &Version,
    batch: &Batch<'_>,
    position: Position,
    write_checkpoints: serde_json::Map<String, serde_json::Value>,
) -> Result<(), FerryError> {
    let make_checkpoint = position.checkpoint.is_some();
    let id = version.state.id;
    let mut changed_buckets = Vec::new();
    if !batch.bucket_deltas.is_empty() {
        let mut buckets = Vec::with_capacity(batch.bucket_deltas.len());
        let mut checksums = Vec::with_capacity(batch.bucket_deltas.len());
        let mut counts = Vec::with_capacity(batch.bucket_deltas.len());
        let mut last_ops = Vec::with_capacity(batch.bucket_deltas.len());
        let mut superseded = Vec::with_capacity(batch.bucket_deltas.len());
        for (bucket, delta) in &batch.bucket_deltas {
            buckets.push(bucket.clone());
            checksums.push(i64::from(delta.checksum));
            counts.push(delta.count);
            last_ops.push(delta.last_op);
            superseded.push(delta.superseded);
        }
        Spi::connect_mut(|client| {
            let rows = client.update(
                "INSERT INTO ferry.bucket_state AS s (version, bucket, checksum, count, last_op, superseded) \
                 SELECT $1, * FROM unnest($2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) \
                 ON CONFLICT (version, bucket) DO UPDATE \
                 SET checksum = (s.checksum + EXCLUDED.checksum) % 4294967296, \
                     count = s.count + EXCLUDED.count, last_op = EXCLUDED.last_op, \
                     superseded = s.superseded + EXCLUDED.superseded \
                 RETURNING bucket::text, checksum, count",
                None,
                &[
                    id.into(),
                    buckets.into(),
                    checksums.into(),
                    counts.into(),
                    last_ops.into(),
                    superseded.into(),
                ],
            )?;
            if make_checkpoint {
                for row in rows {
                    changed_buckets.push(json!({
                        "bucket": row.get::<String>(1)?.unwrap_or_default(),
                        "checksum": row.get::<i64>(2)?.unwrap_or_default(),
                        "count": row.get::<i64>(3)?.unwrap_or_default(),
                    }));
                }
            }
            Ok::<_, FerryError>(())
        })?;
    }

    Spi::run_with_args(
        "UPDATE ferry.sync_rules SET next_op_id = $2, rows_processed = rows_processed + $3, \
                ops_written = ops_written + $4, rows_skipped = rows_skipped + $5, \
                last_error = COALESCE($6, last_error), \
                last_error_at = CASE WHEN $6 IS NULL THEN last_error_at ELSE now() END, \
                processed_lsn = COALESCE($7::pg_lsn, processed_lsn) \
         WHERE id = $1",
        &[
            id.into(),
            batch.next_op_id.into(),
            batch.rows_processed.into(),
            batch.ops_written.into(),
            batch.rows_skipped.into(),
            batch.last_skip.clone().into(),
            position.processed.map(format_lsn).into(),
        ],
    )?;

    let Some(lsn) = position.checkpoint else {
        return Ok(());
    };
    let lsn_text = format_lsn(lsn);
    let op_id = batch.next_op_id - 1;
    Spi::run_with_args(
        "INSERT INTO ferry.checkpoints (version, lsn, op_id, buckets, lookups_changed, write_checkpoints) \
         VALUES ($1, $2::pg_lsn, $3, $4::jsonb, $5, $6::jsonb)",
        &[
            id.into(),
            lsn_text.as_str().into(),
            op_id.into(),
            serde_json::Value::Array(changed_buckets).to_string().into(),
            batch.lookups_changed.into(),
            serde_json::Value::Object(write_checkpoints).to_string().into(),
        ],
    )?;
    Spi::run_with_args(
        "UPDATE ferry.sync_rules SET last_checkpoint = $2, last_checkpoint_lsn = $3::pg_lsn, \
                last_checkpoint_at = clock_timestamp() WHERE id = $1",
        &[id.into(), op_id.into(), lsn_text.as_str().into()],
    )?;
    if version.state.state == "processing" {
        Spi::run_with_args(
            "UPDATE ferry.sync_rules SET state = 'stopped', stopped_at = now() \
             WHERE state = 'active' AND id <> $1",
            &[id.into()],
        )?;
        Spi::run_with_args(
            "UPDATE ferry.sync_rules SET state = 'active', activated_at = now() WHERE id = $1",
            &[id.into()],
        )?;
    }
    let payload = json!({"version": id, "op_id": op_id, "lsn": lsn_text, "active": true});
    Spi::run_with_args(
        "SELECT pg_notify('ferry_checkpoint', $1)",
        &[payload.to_string().into()],
    )?;
    Ok(())
}

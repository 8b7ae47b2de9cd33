//! Helpers for tests of the extension: drive the applier, read its storage, and check the
//! invariants every test cares about (checksums equal the sum of ops; the reduced op log).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure};

use crate::database::TestDb;
use crate::wait::wait_until;

/// Runs `ferry.advance()` (one transaction each) until it reports nothing to do. Returns the
/// number of steps that did something.
pub async fn advance_until_idle(db: &TestDb) -> anyhow::Result<usize> {
    for steps in 0..100_000 {
        let did: bool = db.query_one("SELECT ferry.advance()", &[]).await?.get(0);
        if !did {
            return Ok(steps);
        }
    }
    bail!("the applier never became idle")
}

/// How long a test waits for the background worker to activate freshly deployed rules. Creating
/// a slot waits for the transactions running at that moment to end, which it learns from
/// Postgres' standby snapshots (every 15 s on a quiet server): allow a few of those.
pub const WORKER_ACTIVATION: Duration = Duration::from_secs(120);

/// Waits until the background worker has made `version` active. On timeout the error says what
/// the applier was doing: every version's state and last error, the worker's activity, the
/// plugin setting and the newest lines of the server log.
pub async fn wait_worker_activates(
    db: &TestDb,
    version: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let activated = wait_until("the worker to activate the rules", timeout, || async {
        let state: String = db
            .query_one(
                "SELECT state FROM ferry.sync_rules WHERE id = $1",
                &[&version],
            )
            .await?
            .get(0);
        Ok((state == "active").then_some(()))
    })
    .await;
    match activated {
        Ok(()) => Ok(()),
        Err(e) => bail!("{e:#}; {}", applier_diagnostics(db).await),
    }
}

/// What the applier of `db` is doing, for a test's failure message.
async fn applier_diagnostics(db: &TestDb) -> String {
    let versions = db
        .query(
            "SELECT format('version %s %s slot_created=%s snapshot_done=%s processed=%s last_error=%s', \
                    id, state, slot_created, snapshot_done, processed_lsn, last_error) \
             FROM ferry.sync_rules ORDER BY id",
            &[],
        )
        .await;
    let worker = db
        .query(
            "SELECT format('worker pid %s %s wait=%s/%s query=%s', pid, state, wait_event_type, \
                    wait_event, left(query, 200)) \
             FROM pg_stat_activity WHERE backend_type = 'ferry applier' \
             UNION ALL \
             SELECT 'output_plugin_libraries=' \
                    || COALESCE(current_setting('output_plugin_libraries', true), '<unknown>')",
            &[],
        )
        .await;
    let lines = |r: Result<Vec<tokio_postgres::Row>, anyhow::Error>| match r {
        Ok(rows) => rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("({e:#})"),
    };
    let log = db.cluster().log();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    format!(
        "versions: {}; worker: {}\nserver log (newest first):\n{}",
        lines(versions),
        lines(worker),
        tail.join("\n")
    )
}

/// One op as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredOp {
    /// Bucket id.
    pub bucket: String,
    /// Op id.
    pub op_id: i64,
    /// PUT, REMOVE, MOVE, CLEAR.
    pub op: String,
    /// Object type.
    pub object_type: Option<String>,
    /// Object id.
    pub object_id: Option<String>,
    /// Row JSON of a PUT.
    pub data: Option<String>,
    /// Checksum.
    pub checksum: i64,
}

/// Every op of the database, by bucket and op id.
pub async fn all_ops(db: &TestDb) -> anyhow::Result<Vec<StoredOp>> {
    let rows = db
        .query(
            "SELECT bucket::text, op_id, op, object_type, object_id, data, checksum FROM ferry.ops ORDER BY bucket, op_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredOp {
            bucket: r.get(0),
            op_id: r.get(1),
            op: r.get(2),
            object_type: r.get(3),
            object_id: r.get(4),
            data: r.get(5),
            checksum: r.get(6),
        })
        .collect())
}

/// The ops written after op id `after`, without ids (what a change produced), in order.
pub async fn ops_after(
    db: &TestDb,
    after: i64,
) -> anyhow::Result<Vec<(String, String, String, Option<String>)>> {
    let rows = db
        .query(
            "SELECT bucket::text, op, COALESCE(object_type, '') || '/' || COALESCE(object_id, ''), data \
             FROM ferry.ops WHERE op_id > $1 ORDER BY op_id",
            &[&after],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// The highest op id so far (0 when none).
pub async fn max_op_id(db: &TestDb) -> anyhow::Result<i64> {
    Ok(db
        .query_one("SELECT COALESCE(max(op_id), 0) FROM ferry.ops", &[])
        .await?
        .get(0))
}

/// Fails unless every bucket's stored checksum and count equal the wrapping sum and number of
/// its ops.
pub async fn assert_checksums_consistent(db: &TestDb) -> anyhow::Result<()> {
    let rows = db
        .query(
            "SELECT s.bucket::text, s.checksum, s.count, COALESCE(o.sum, 0), COALESCE(o.n, 0) \
             FROM ferry.bucket_state s \
             FULL JOIN (SELECT version, bucket, (sum(checksum) % 4294967296)::int8 AS sum, count(*) AS n \
                        FROM ferry.ops GROUP BY version, bucket) o \
               ON o.version = s.version AND o.bucket = s.bucket",
            &[],
        )
        .await?;
    for r in rows {
        let bucket: Option<String> = r.get(0);
        let (checksum, count, sum, n): (Option<i64>, Option<i64>, i64, i64) =
            (r.get(1), r.get(2), r.get(3), r.get(4));
        ensure!(
            checksum == Some(sum) && count == Some(n),
            "bucket {bucket:?}: stored checksum {checksum:?} count {count:?}, ops sum {sum} count {n}"
        );
    }
    Ok(())
}

/// The client-visible state of every bucket: for each (bucket, object_type, object_id), the data
/// of its latest op if that is a PUT (what a client holds after applying the whole op log).
pub async fn reduced_state(
    db: &TestDb,
) -> anyhow::Result<BTreeMap<(String, String, String), String>> {
    let rows = db
        .query(
            "SELECT DISTINCT ON (bucket, object_type, object_id) bucket::text, object_type, object_id, op, data \
             FROM ferry.ops WHERE op IN ('PUT', 'REMOVE') \
             ORDER BY bucket, object_type, object_id, op_id DESC",
            &[],
        )
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let op: String = r.get(3);
        if op == "PUT" {
            out.insert((r.get(0), r.get(1), r.get(2)), r.get(4));
        }
    }
    Ok(out)
}

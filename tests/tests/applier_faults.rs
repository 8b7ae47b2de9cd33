//! The applier under faults: the background worker killed, Postgres restarted fast and immediate,
//! in the middle of a stream of writes and in the middle of a snapshot. Each run must end with
//! exactly the ops of a fault-free run of the same writes (computed on another database with
//! `ferry.advance()`).
//!
//! Each test has a cluster of its own (it restarts it) with the applier worker running.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use ferry_tests::ferry_sql::{
    advance_until_idle, all_ops, assert_checksums_consistent, wait_worker_activates, StoredOp,
    WORKER_ACTIVATION,
};
use ferry_tests::runner::{run, test};
use ferry_tests::{shared_cluster, wait_until, Cluster, ClusterOptions, StopMode, TestDb};
use tokio_postgres::Client;

const SCHEMA: &str = "
CREATE TABLE lists (id text PRIMARY KEY, owner_id text, name text, big text);
CREATE TABLE list_members (id int PRIMARY KEY, list_id text, user_id text);
CREATE TABLE notes (id text PRIMARY KEY, list_id text, body text);
CREATE TABLE write_log (seq int PRIMARY KEY);
";

const RULES: &str = "
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
  shared:
    priority: 1
    parameters: SELECT list_id FROM list_members WHERE user_id = request.user_id()
    data:
      - SELECT * FROM notes WHERE list_id = bucket.list_id
";

fn main() {
    run(vec![
        test(
            "faults_during_streaming_lose_and_duplicate_nothing",
            faults_during_streaming,
        ),
        test(
            "faults_during_snapshot_lose_and_duplicate_nothing",
            faults_during_snapshot,
        ),
    ])
}

/// The SQL of write number `i` of the deterministic workload.
fn write_sql(i: usize) -> String {
    let u = i % 7;
    match i % 6 {
        0 | 1 => format!("INSERT INTO lists VALUES ('L{i}', 'u{u}', 'n{i}', NULL)"),
        2 => format!(
            "UPDATE lists SET name = 'x{i}', owner_id = 'u{}' WHERE id = 'L{}'",
            (i * 3) % 7,
            i - 2
        ),
        3 => format!(
            "INSERT INTO list_members VALUES ({i}, 'L{}', 'u{u}'); INSERT INTO notes VALUES ('N{i}', 'L{}', 'b{i}')",
            i - 3,
            i - 3
        ),
        4 => format!("DELETE FROM lists WHERE id = 'L{}'", i.saturating_sub(12)),
        _ if i % 300 == 5 => format!(
            "INSERT INTO lists SELECT 'B{i}_' || g, 'u' || (g % 7), 'bulk', NULL FROM generate_series(1, 400) g"
        ),
        _ => format!(
            "UPDATE notes SET body = 'e{i}' WHERE id = 'N{}'; DELETE FROM list_members WHERE id = {}",
            i.saturating_sub(2),
            i.saturating_sub(20)
        ),
    }
}

/// Applies writes `0..n` exactly once each, surviving server restarts: every write commits with
/// its sequence number in `write_log`, so a write whose commit outcome was lost is checked, not
/// repeated.
async fn write_all(db: &TestDb, n: usize, progress: &AtomicUsize) -> anyhow::Result<()> {
    let mut client: Option<Client> = None;
    let mut i = 0;
    while i < n {
        let c = match &client {
            Some(c) if !c.is_closed() => c,
            _ => {
                match db.connect().await {
                    Ok(c) => client = Some(c),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                continue;
            }
        };
        let sql = format!(
            "BEGIN; {}; INSERT INTO write_log VALUES ({i}); COMMIT;",
            write_sql(i)
        );
        match c.batch_execute(&sql).await {
            Ok(()) => {
                i += 1;
                progress.store(i, Ordering::Relaxed);
            }
            Err(_) => {
                // Did it commit before the connection went away?
                loop {
                    match db.connect().await {
                        Ok(c) => {
                            let done = c
                                .query_opt("SELECT 1 FROM write_log WHERE seq = $1", &[&(i as i32)])
                                .await?
                                .is_some();
                            if done {
                                i += 1;
                                progress.store(i, Ordering::Relaxed);
                            }
                            client = Some(c);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Terminates the applier worker (the postmaster starts it again after a second).
async fn kill_worker(db: &TestDb) -> anyhow::Result<()> {
    let c = db.connect().await?;
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ferry applier'",
        &[],
    )
    .await?;
    Ok(())
}

/// Waits until the worker has applied everything: pause it, then drive the rest by hand.
async fn catch_up(db: &mut TestDb) -> anyhow::Result<()> {
    db.reconnect().await?;
    db.exec("SELECT ferry.pause()").await?;
    // Let a step in flight finish; advance() waits for the applier lock by returning false, so
    // retry until a call got the lock and found nothing left.
    wait_until(
        "the applier to catch up",
        Duration::from_secs(120),
        || async {
            let steps = advance_until_idle(db).await?;
            let behind: bool = db
                .query_one(
                    "SELECT pg_try_advisory_xact_lock(x'6665727279'::int8) AND NOT ferry.advance()",
                    &[],
                )
                .await?
                .get(0);
            Ok((steps == 0 && behind).then_some(()))
        },
    )
    .await?;
    db.exec("SELECT ferry.resume()").await?;
    Ok(())
}

/// The same writes on a database of the shared cluster, applied with `ferry.advance()` only.
async fn reference_ops(
    setup: &str,
    writes: usize,
    page_rows: Option<i32>,
) -> anyhow::Result<Vec<StoredOp>> {
    let db = TestDb::create(shared_cluster()?, "faults_ref").await?;
    db.exec(SCHEMA).await?;
    db.exec(setup).await?;
    if let Some(rows) = page_rows {
        db.exec(&format!("SET ferry.snapshot_page_rows = {rows}"))
            .await?;
    }
    db.query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?;
    advance_until_idle(&db).await?;
    let progress = AtomicUsize::new(0);
    write_all(&db, writes, &progress).await?;
    advance_until_idle(&db).await?;
    assert_checksums_consistent(&db).await?;
    all_ops(&db).await
}

fn compare(got: &[StoredOp], want: &[StoredOp]) -> anyhow::Result<()> {
    if got == want {
        return Ok(());
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    anyhow::bail!(
        "ops differ from the fault-free run: {} vs {} ops; first difference at {:?}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        first,
        first.and_then(|i| got.get(i)),
        first.and_then(|i| want.get(i)),
    )
}

async fn faults_during_streaming() -> anyhow::Result<()> {
    const WRITES: usize = 1500;
    let name = format!("faults_stream_{}", std::process::id());
    let cluster = Arc::new(Cluster::start(ClusterOptions {
        worker_databases: vec![name.clone()],
    })?);
    let mut db = TestDb::create_named(cluster.clone(), &name).await?;
    db.exec(SCHEMA).await?;
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?
        .get(0);
    wait_worker_activates(&db, version, WORKER_ACTIVATION).await?;

    let progress = Arc::new(AtomicUsize::new(0));
    let faults = {
        let progress = progress.clone();
        let db_for_faults = TestDb::create(cluster.clone(), "faults_aux").await?;
        let cluster = cluster.clone();
        async move {
            let wait_for = |n: usize| {
                let progress = progress.clone();
                async move {
                    while progress.load(Ordering::Relaxed) < n {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            };
            wait_for(WRITES / 5).await;
            kill_worker(&db_for_faults).await?;
            wait_for(2 * WRITES / 5).await;
            cluster.restart(StopMode::Fast)?;
            wait_for(3 * WRITES / 5).await;
            cluster.restart(StopMode::Immediate)?;
            wait_for(4 * WRITES / 5).await;
            kill_worker(&db_for_faults).await?;
            drop(db_for_faults);
            anyhow::Ok(())
        }
    };
    let (written, faulted) = tokio::join!(write_all(&db, WRITES, &progress), faults);
    written.context("writing")?;
    faulted.context("injecting faults")?;
    catch_up(&mut db).await?;
    assert_checksums_consistent(&db).await?;
    let got = all_ops(&db).await?;
    let want = reference_ops("", WRITES, None).await?;
    // Bucket ids carry the version: both runs deployed version 1.
    compare(&got, &want)?;
    let slots = db.slots().await?;
    ensure!(slots.len() == 1, "slots: {slots:?}");
    Ok(())
}

/// Rows the snapshot of `version` has copied so far.
async fn snapshot_rows(db: &TestDb, version: i64) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT COALESCE(sum(snapshot_rows), 0)::int8 FROM ferry.source_tables WHERE version = $1",
            &[&version],
        )
        .await?
        .get(0))
}

async fn faults_during_snapshot() -> anyhow::Result<()> {
    const SETUP: &str = "INSERT INTO lists SELECT 'S' || g, 'u' || (g % 7), 'seed', repeat('x', g % 50) FROM generate_series(1, 20000) g;
                         INSERT INTO list_members SELECT g, 'S' || g, 'u' || (g % 7) FROM generate_series(1, 3000) g;";
    let name = format!("faults_snap_{}", std::process::id());
    let cluster = Arc::new(Cluster::start(ClusterOptions {
        worker_databases: vec![name.clone()],
    })?);
    let mut db = TestDb::create_named(cluster.clone(), &name).await?;
    db.exec(SCHEMA).await?;
    db.exec(SETUP).await?;
    db.exec(&format!(
        "ALTER DATABASE {name} SET ferry.snapshot_page_rows = 500"
    ))
    .await?;
    // Reconnect the worker so it reads the per-database setting.
    kill_worker(&db).await?;
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?
        .get(0);
    for (threshold, fault) in [(2000i64, 0), (8000, 1), (14000, 2)] {
        let waited = wait_until("snapshot progress", Duration::from_secs(120), || async {
            Ok((snapshot_rows(&db, version).await? >= threshold).then_some(()))
        })
        .await;
        if let Err(e) = waited {
            let log = cluster.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            anyhow::bail!("{e:#}\nserver log (newest first):\n{}", tail.join("\n"));
        }
        match fault {
            0 => kill_worker(&db).await?,
            1 => cluster.restart(StopMode::Immediate)?,
            _ => cluster.restart(StopMode::Fast)?,
        }
        // The test's own connection did not survive a restart.
        while db.reconnect().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_worker_activates(&db, version, WORKER_ACTIVATION).await?;
    catch_up(&mut db).await?;
    assert_checksums_consistent(&db).await?;
    let got = all_ops(&db).await?;
    let want = reference_ops(SETUP, 0, Some(500)).await?;
    compare(&got, &want)?;
    Ok(())
}

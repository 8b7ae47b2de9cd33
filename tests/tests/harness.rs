//! Tests of the harness itself: a cluster starts with the extension available, and everything a
//! test makes is cleaned up even when the test fails.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use anyhow::ensure;
use ferry_tests::runner::{run, test};
use ferry_tests::{shared_cluster, Cluster, ClusterOptions, TestDb};
use futures::FutureExt;

fn main() {
    run(vec![
        test(
            "create_extension_creates_schema_ferry",
            create_extension_creates_schema_ferry,
        ),
        test(
            "failed_test_leaves_no_database_or_slot_behind",
            failed_test_leaves_no_database_or_slot_behind,
        ),
        test(
            "failed_test_leaves_no_cluster_behind",
            failed_test_leaves_no_cluster_behind,
        ),
    ])
}

async fn create_extension_creates_schema_ferry() -> anyhow::Result<()> {
    let db = TestDb::create(shared_cluster()?, "harness").await?;
    let row = db
        .query_one(
            "SELECT n.nspname::text, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'ferry'",
            &[],
        )
        .await?;
    let schema: String = row.get(0);
    ensure!(
        schema == "ferry",
        "extension installed in schema {schema}, expected ferry"
    );
    let exists: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'ferry')",
            &[],
        )
        .await?
        .get(0);
    ensure!(exists, "schema ferry does not exist");
    Ok(())
}

async fn failed_test_leaves_no_database_or_slot_behind() -> anyhow::Result<()> {
    let cluster = shared_cluster()?;
    let inner_cluster = cluster.clone();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // A "test" that makes a database and a slot, then fails by panicking.
    let outcome = AssertUnwindSafe(async move {
        let db = TestDb::create(inner_cluster, "doomed").await.expect("create db");
        db.exec("SELECT pg_create_logical_replication_slot('doomed_slot_' || pg_backend_pid(), 'test_decoding')")
            .await
            .expect("create slot");
        tx.send(db.name().to_owned()).expect("send name");
        panic!("deliberate failure");
    })
    .catch_unwind()
    .await;
    ensure!(outcome.is_err(), "the doomed test was supposed to panic");
    let name = rx.recv()?;
    let leftovers = cluster.with_sync_client("postgres", move |c| {
        let dbs: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )?
            .get(0);
        let slots: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'doomed_slot_%'",
                &[],
            )?
            .get(0);
        Ok((dbs, slots))
    })?;
    ensure!(
        leftovers == (0, 0),
        "after a failed test: (databases, slots) left = {leftovers:?}"
    );
    Ok(())
}

async fn failed_test_leaves_no_cluster_behind() -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let outcome = std::thread::spawn(move || {
        let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
        tx.send(cluster.dir().to_path_buf()).expect("send dir");
        panic!("deliberate failure with a cluster running");
    })
    .join();
    ensure!(outcome.is_err(), "the doomed thread was supposed to panic");
    let dir = rx.recv()?;
    ensure!(
        !dir.exists(),
        "cluster directory {} still exists",
        dir.display()
    );
    let pid_file_gone = !dir.join("data/postmaster.pid").exists();
    ensure!(
        pid_file_gone,
        "postmaster still running in {}",
        dir.display()
    );
    Ok(())
}

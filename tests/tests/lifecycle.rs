//! The extension's lifecycle against a real cluster: redeploys under writes, lost and orphaned
//! slots, compaction, retention, schema changes and roles. Driven with `ferry.advance()`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context};
use ferry_tests::ferry_sql::{advance_until_idle, assert_checksums_consistent, reduced_state};
use ferry_tests::runner::{run, test};
use ferry_tests::{shared_cluster, TestDb};
use serde_json::json;

const SCHEMA: &str = "
CREATE TABLE lists (id text PRIMARY KEY, owner_id text, name text);
CREATE TABLE counters (id text PRIMARY KEY, owner_id text, n int8);
";

const RULES_A: &str = "
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT * FROM counters WHERE owner_id = bucket.owner_id
";

const RULES_B: &str = "
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT id, name FROM lists WHERE owner_id = bucket.owner_id
  everything:
    data:
      - SELECT * FROM counters
";

fn main() {
    run(vec![
        test(
            "redeploy_under_writes_equals_a_fresh_deploy",
            redeploy_under_writes,
        ),
        test(
            "identical_redeploy_is_a_no_op_and_a_deploy_can_be_cancelled",
            identical_redeploy_and_cancel,
        ),
        test(
            "a_slot_dropped_by_hand_is_rebuilt_with_exact_data",
            slot_dropped_by_hand,
        ),
        test("orphaned_slots_are_swept", orphaned_slots_are_swept),
        test(
            "compaction_keeps_checksums_and_state_and_shrinks_the_log",
            compaction,
        ),
        test(
            "automatic_compaction_rewrites_only_buckets_with_superseded_ops",
            automatic_compaction,
        ),
        test("old_checkpoints_and_requests_are_pruned", retention),
        test(
            "schema_changes_flow_through_and_are_reported",
            schema_changes,
        ),
        test("the_gateway_role_reads_only_through_the_api", gateway_role),
    ])
}

async fn setup(prefix: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::create(shared_cluster()?, prefix).await?;
    db.exec(SCHEMA).await?;
    Ok(db)
}

async fn deploy(db: &TestDb, rules: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one("SELECT ferry.deploy_rules($1)", &[&rules])
        .await?
        .get(0))
}

async fn active_version(db: &TestDb) -> anyhow::Result<Option<i64>> {
    Ok(db
        .query(
            "SELECT id FROM ferry.sync_rules WHERE state = 'active'",
            &[],
        )
        .await?
        .first()
        .map(|r| r.get(0)))
}

/// The client-visible state with the version prefix taken off bucket ids.
async fn unversioned_state(
    db: &TestDb,
) -> anyhow::Result<BTreeMap<(String, String, String), String>> {
    Ok(reduced_state(db)
        .await?
        .into_iter()
        .map(|((b, t, i), d)| {
            (
                (
                    b.split_once('#').map(|(_, n)| n.to_owned()).unwrap_or(b),
                    t,
                    i,
                ),
                d,
            )
        })
        .collect())
}

fn write_sql(i: usize) -> String {
    match i % 4 {
        0 => format!("INSERT INTO lists VALUES ('L{i}', 'u{}', 'n{i}')", i % 5),
        1 => format!("INSERT INTO counters VALUES ('C{i}', 'u{}', {i})", i % 5),
        2 => format!(
            "UPDATE counters SET n = n + 1, owner_id = 'u{}' WHERE id = 'C{}'",
            i % 3,
            i - 1
        ),
        _ => format!("DELETE FROM lists WHERE id = 'L{}'", i.saturating_sub(11)),
    }
}

async fn redeploy_under_writes() -> anyhow::Result<()> {
    let db = setup("life_redeploy").await?;
    deploy(&db, RULES_A).await?;
    for i in 0..200 {
        db.exec(&write_sql(i)).await?;
    }
    advance_until_idle(&db).await?;
    let v2 = deploy(&db, RULES_B).await?;
    // Writes continue while the new version is built beside the old one; each loop also steps.
    let mut i = 200;
    while active_version(&db).await? != Some(v2) || i < 600 {
        db.exec(&write_sql(i)).await?;
        i += 1;
        db.query_one("SELECT ferry.advance()", &[]).await?;
        ensure!(i < 5000, "version {v2} never activated");
    }
    advance_until_idle(&db).await?;
    assert_checksums_consistent(&db).await?;
    // No checkpoint of another version, no slot but the active one, old storage gone.
    let versions: Vec<i64> = db
        .query("SELECT DISTINCT version FROM ferry.checkpoints", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(versions == vec![v2], "checkpoints of versions {versions:?}");
    let slots = db.slots().await?;
    ensure!(
        slots.len() == 1 && slots[0].ends_with(&format!("_{v2}")),
        "slots {slots:?}"
    );
    let old_ops: i64 = db
        .query_one("SELECT count(*) FROM ferry.ops WHERE version <> $1", &[&v2])
        .await?
        .get(0);
    ensure!(old_ops == 0, "{old_ops} ops of the old version left");

    // A fresh deploy of the same rules on the same data.
    let fresh = setup("life_redeploy_ref").await?;
    for j in 0..i {
        fresh.exec(&write_sql(j)).await?;
    }
    deploy(&fresh, RULES_B).await?;
    advance_until_idle(&fresh).await?;
    let got = unversioned_state(&db).await?;
    let want = unversioned_state(&fresh).await?;
    ensure!(
        got == want,
        "state after redeploy differs from a fresh deploy: {} vs {} rows",
        got.len(),
        want.len()
    );
    Ok(())
}

async fn identical_redeploy_and_cancel() -> anyhow::Result<()> {
    let db = setup("life_noop").await?;
    let v1 = deploy(&db, RULES_A).await?;
    advance_until_idle(&db).await?;
    let again = deploy(&db, RULES_A).await?;
    ensure!(again == v1, "identical rules made version {again}");
    let v2 = deploy(&db, RULES_B).await?;
    let cancelled: Option<i64> = db
        .query_one("SELECT ferry.cancel_deploy()", &[])
        .await?
        .get(0);
    ensure!(cancelled == Some(v2));
    advance_until_idle(&db).await?;
    ensure!(active_version(&db).await? == Some(v1));
    let slots = db.slots().await?;
    ensure!(slots.len() == 1, "slots {slots:?}");
    let state: String = db
        .query_one("SELECT state FROM ferry.sync_rules WHERE id = $1", &[&v2])
        .await?
        .get(0);
    ensure!(state == "terminated", "cancelled version is {state}");
    Ok(())
}

async fn slot_dropped_by_hand() -> anyhow::Result<()> {
    let db = setup("life_lost").await?;
    let v1 = deploy(&db, RULES_A).await?;
    for i in 0..100 {
        db.exec(&write_sql(i)).await?;
    }
    advance_until_idle(&db).await?;
    let slot: String = db
        .query_one(
            "SELECT slot_name FROM ferry.sync_rules WHERE id = $1",
            &[&v1],
        )
        .await?
        .get(0);
    db.query_one("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await?;
    let mut i = 100;
    // Writes continue; the old version keeps serving until the rebuilt one activates.
    loop {
        db.exec(&write_sql(i)).await?;
        i += 1;
        db.query_one("SELECT ferry.advance()", &[]).await?;
        if let Some(v) = active_version(&db).await? {
            if v != v1 && i > 300 {
                break;
            }
            if v == v1 {
                let cp: serde_json::Value = db
                    .query_one("SELECT ferry.checkpoint_for($1)", &[&json!({"sub": "u1"})])
                    .await?
                    .get(0);
                ensure!(cp["version"] == v1, "{cp}");
            }
        }
        ensure!(i < 5000, "never rebuilt");
    }
    advance_until_idle(&db).await?;
    let warnings: serde_json::Value = db
        .query_one(
            "SELECT to_jsonb(array_agg(last_error)) FROM ferry.sync_rules WHERE id = $1",
            &[&v1],
        )
        .await?
        .get(0);
    ensure!(
        warnings.to_string().contains("no longer exists"),
        "{warnings}"
    );
    let fresh = setup("life_lost_ref").await?;
    for j in 0..i {
        fresh.exec(&write_sql(j)).await?;
    }
    deploy(&fresh, RULES_A).await?;
    advance_until_idle(&fresh).await?;
    ensure!(
        unversioned_state(&db).await? == unversioned_state(&fresh).await?,
        "rebuilt data differs"
    );
    assert_checksums_consistent(&db).await?;
    ensure!(db.slots().await?.len() == 1);
    Ok(())
}

async fn orphaned_slots_are_swept() -> anyhow::Result<()> {
    let db = setup("life_orphan").await?;
    deploy(&db, RULES_A).await?;
    advance_until_idle(&db).await?;
    let dboid: u32 = db
        .query_one(
            "SELECT oid FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await?
        .get(0);
    let orphan = format!("ferry_{dboid}_999");
    db.query_one(
        "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
        &[&orphan],
    )
    .await?;
    ensure!(db.slots().await?.len() == 2);
    db.query_one("SELECT ferry.advance()", &[]).await?;
    let slots = db.slots().await?;
    ensure!(!slots.contains(&orphan), "orphan still there: {slots:?}");
    Ok(())
}

/// Ops per bucket of the active version.
async fn op_counts(db: &TestDb) -> anyhow::Result<BTreeMap<String, i64>> {
    Ok(db
        .query(
            "SELECT bucket::text, count(*) FROM ferry.ops GROUP BY bucket",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

async fn automatic_compaction() -> anyhow::Result<()> {
    let mut db = setup("life_autocompact").await?;
    let v = deploy(&db, RULES_A).await?;
    advance_until_idle(&db).await?;
    // u1: one row updated 1,500 times; u2: 1,500 rows inserted once each.
    db.exec(
        "INSERT INTO counters VALUES ('hot', 'u1', 0); \
         INSERT INTO lists SELECT 'l' || g, 'u2', 'list ' || g FROM generate_series(1, 1500) g",
    )
    .await?;
    db.exec(
        "DO $$ BEGIN FOR k IN 1..1500 LOOP UPDATE counters SET n = k WHERE id = 'hot'; END LOOP; END $$",
    )
    .await?;
    advance_until_idle(&db).await?;
    let state_before = reduced_state(&db).await?;
    // A fresh session runs the periodic chores (automatic compaction among them) in its first step.
    db.reconnect().await?;
    advance_until_idle(&db).await?;
    let counts = op_counts(&db).await?;
    let hot = format!("{v}#by_owner[\"u1\"]");
    let inserted = format!("{v}#by_owner[\"u2\"]");
    ensure!(
        counts.get(&hot).copied().unwrap_or(0) < 10,
        "the update-heavy bucket was not compacted: {counts:?}"
    );
    ensure!(
        counts.get(&inserted).copied() == Some(1500),
        "the insert-only bucket was rewritten: {counts:?}"
    );
    ensure!(
        reduced_state(&db).await? == state_before,
        "client-visible state changed by automatic compaction"
    );
    assert_checksums_consistent(&db).await?;
    Ok(())
}

async fn compaction() -> anyhow::Result<()> {
    let db = setup("life_compact").await?;
    let v = deploy(&db, RULES_A).await?;
    advance_until_idle(&db).await?;
    db.exec("INSERT INTO counters VALUES ('c1', 'u1', 0), ('c2', 'u1', 0); INSERT INTO lists VALUES ('gone', 'u1', 'x')")
        .await?;
    for k in 0..300 {
        db.exec(&format!(
            "UPDATE counters SET n = {k} WHERE id = 'c{}'",
            1 + k % 2
        ))
        .await?;
    }
    db.exec("DELETE FROM lists WHERE id = 'gone'").await?;
    advance_until_idle(&db).await?;
    let bucket = format!("{v}#by_owner[\"u1\"]");
    let before_state = reduced_state(&db).await?;
    let (before_sum, before_count): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT checksum, count FROM ferry.bucket_state WHERE bucket = $1",
                &[&bucket],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    let compacted: i64 = db.query_one("SELECT ferry.compact()", &[]).await?.get(0);
    let ops_now: Vec<String> = db
        .query("SELECT op FROM ferry.ops ORDER BY op_id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(compacted > 0, "nothing compacted: {ops_now:?}");
    let after_state = reduced_state(&db).await?;
    ensure!(
        before_state == after_state,
        "client-visible state changed by compaction"
    );
    let r = db
        .query_one(
            "SELECT checksum, count FROM ferry.bucket_state WHERE bucket = $1",
            &[&bucket],
        )
        .await?;
    let (after_sum, after_count): (i64, i64) = (r.get(0), r.get(1));
    ensure!(
        after_sum == before_sum,
        "checksum changed {before_sum} -> {after_sum}"
    );
    ensure!(
        after_count < before_count / 10,
        "op log {before_count} -> {after_count}"
    );
    assert_checksums_consistent(&db).await?;
    // The op log reads as PROTOCOL.md §2.4 says: one CLEAR, then only each row's latest op.
    let ops: Vec<String> = db
        .query(
            "SELECT op FROM ferry.ops WHERE bucket = $1 ORDER BY op_id",
            &[&bucket],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(ops.first().map(String::as_str) == Some("CLEAR"), "{ops:?}");
    ensure!(ops == ["CLEAR", "PUT", "PUT", "REMOVE"], "{ops:?}");
    // Moved ops point at the op that superseded them.
    let bad: i64 = db
        .query_one("SELECT count(*) FROM ferry.ops WHERE op = 'MOVE' AND (target_op IS NULL OR target_op <= op_id)", &[])
        .await?
        .get(0);
    ensure!(bad == 0);
    Ok(())
}

async fn retention() -> anyhow::Result<()> {
    let db = setup("life_retention").await?;
    deploy(&db, RULES_A).await?;
    for i in 0..5 {
        db.exec(&write_sql(i * 4)).await?;
        advance_until_idle(&db).await?;
    }
    db.query_one("SELECT ferry.request_checkpoint('u1', 'c1', 5)", &[])
        .await?;
    db.query_one("SELECT ferry.create_write_checkpoint('u2', 'c2')", &[])
        .await?;
    advance_until_idle(&db).await?;
    let before: i64 = db
        .query_one("SELECT count(*) FROM ferry.checkpoints", &[])
        .await?
        .get(0);
    ensure!(before > 3);
    // Age everything past a one-second retention, then step on a new connection (pruning runs
    // on a backend's first step and then every few seconds).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = db.connect().await?;
    c.batch_execute("SET ferry.retention = 1").await?;
    c.execute("INSERT INTO lists VALUES ('fresh', 'u1', 'x')", &[])
        .await?;
    while c
        .query_one("SELECT ferry.advance()", &[])
        .await?
        .get::<_, bool>(0)
    {}
    let after: i64 = db
        .query_one("SELECT count(*) FROM ferry.checkpoints", &[])
        .await?
        .get(0);
    ensure!(after <= 2, "{after} checkpoints kept of {before}");
    let keys: Vec<String> = db
        .query("SELECT key FROM ferry.write_checkpoints ORDER BY key", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(
        keys == vec!["u2/c2".to_owned()],
        "write checkpoints kept: {keys:?}"
    );
    Ok(())
}

async fn schema_changes() -> anyhow::Result<()> {
    let db = setup("life_schema").await?;
    let v = deploy(&db, RULES_A).await?;
    advance_until_idle(&db).await?;
    db.exec("INSERT INTO lists VALUES ('L1', 'u1', 'a')")
        .await?;
    advance_until_idle(&db).await?;
    db.exec("ALTER TABLE lists ADD COLUMN color text; UPDATE lists SET color = 'red'")
        .await?;
    db.exec("ALTER TABLE lists DROP COLUMN name; INSERT INTO lists VALUES ('L2', 'u1', 'blue')")
        .await?;
    advance_until_idle(&db).await?;
    let state = reduced_state(&db).await?;
    let b = format!("{v}#by_owner[\"u1\"]");
    ensure!(
        state.get(&(b.clone(), "lists".into(), "L1".into())).map(String::as_str)
            // Its last change was before the column was dropped.
            == Some(r#"{"id":"L1","owner_id":"u1","name":"a","color":"red"}"#),
        "{state:#?}"
    );
    ensure!(
        state
            .get(&(b, "lists".into(), "L2".into()))
            .map(String::as_str)
            == Some(r#"{"id":"L2","owner_id":"u1","color":"blue"}"#),
        "{state:#?}"
    );
    db.exec("ALTER TABLE counters RENAME TO tallies").await?;
    db.exec("DROP TABLE lists").await?;
    advance_until_idle(&db).await?;
    let warnings: Vec<String> = db
        .query_one(
            "SELECT warnings FROM ferry.status() WHERE version = $1",
            &[&v],
        )
        .await?
        .get(0);
    let text = warnings.join("\n");
    ensure!(
        text.contains("public.lists, read by these rules, was dropped"),
        "{text}"
    );
    ensure!(text.contains("renamed to public.tallies"), "{text}");
    let last_error: Option<String> = db
        .query_one(
            "SELECT last_error FROM ferry.status() WHERE version = $1",
            &[&v],
        )
        .await?
        .get(0);
    ensure!(last_error.is_none(), "the applier failed: {last_error:?}");
    Ok(())
}

async fn gateway_role() -> anyhow::Result<()> {
    let db = setup("life_roles").await?;
    deploy(&db, RULES_A).await?;
    db.exec("INSERT INTO lists VALUES ('L1', 'u1', 'a')")
        .await?;
    advance_until_idle(&db).await?;
    let login = format!("gw_{}", db.name());
    db.exec(&format!(
        "DROP ROLE IF EXISTS {login}; CREATE ROLE {login} LOGIN IN ROLE ferry_gateway"
    ))
    .await?;
    let c = db.connect().await?;
    c.batch_execute(&format!("SET ROLE {login}")).await?;
    let cp: serde_json::Value = c
        .query_one("SELECT ferry.checkpoint_for($1)", &[&json!({"sub": "u1"})])
        .await
        .context("the gateway role calls checkpoint_for")?
        .get(0);
    ensure!(cp["buckets"].as_array().map(Vec::len) == Some(1), "{cp}");
    let n: i64 = c
        .query_one("SELECT ferry.create_write_checkpoint('u1', 'c')", &[])
        .await
        .context("the gateway role creates write checkpoints")?
        .get(0);
    ensure!(n == 1);
    for forbidden in [
        "SELECT * FROM lists",
        "SELECT * FROM ferry.ops",
        "SELECT ferry.deploy_rules('bucket_definitions: {}')",
        "SELECT ferry.advance()",
        "SELECT ferry.pause()",
    ] {
        let err = c
            .query(forbidden, &[])
            .await
            .err()
            .with_context(|| format!("{forbidden} was allowed"))?;
        ensure!(
            err.code().map(|c| c.code()) == Some("42501"),
            "{forbidden}: {err}"
        );
    }
    c.batch_execute("RESET ROLE").await?;
    drop(c);
    db.exec(&format!("DROP OWNED BY {login}; DROP ROLE {login}"))
        .await
        .ok();
    Ok(())
}

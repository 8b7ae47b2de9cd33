//! The extension core against a real cluster: WAL capture, the applier, bucket storage,
//! checkpoints, write checkpoints and the read API. The applier is driven with
//! `SELECT ferry.advance()` so every test is deterministic.

use std::collections::BTreeMap;

use anyhow::{ensure, Context};
use ferry_tests::ferry_sql::{
    advance_until_idle, all_ops, assert_checksums_consistent, max_op_id, ops_after, reduced_state,
};
use ferry_tests::runner::{run, test};
use ferry_tests::{shared_cluster, TestDb};
use serde_json::{json, Value};

const SCHEMA: &str = "
CREATE TABLE settings (id text PRIMARY KEY, value text);
CREATE TABLE lists (id text PRIMARY KEY, owner_id text, name text);
CREATE TABLE todos (id text PRIMARY KEY, list_id text, owner_id text, description text,
                    done boolean DEFAULT false, n int8, score float8, big text, _secret text);
CREATE TABLE list_members (id serial PRIMARY KEY, list_id text, user_id text);
CREATE TABLE notes (id text PRIMARY KEY, list_id text, body text);
";

const RULES: &str = "
bucket_definitions:
  global:
    data:
      - SELECT * FROM settings
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
  shared_lists:
    priority: 1
    parameters: SELECT list_id FROM list_members WHERE user_id = request.user_id()
    data:
      - SELECT id, body FROM notes WHERE list_id = bucket.list_id
";

async fn setup(prefix: &str) -> anyhow::Result<TestDb> {
    let db = TestDb::create(shared_cluster()?, prefix).await?;
    db.exec(SCHEMA).await?;
    Ok(db)
}

async fn deploy(db: &TestDb, rules: &str) -> anyhow::Result<i64> {
    let v: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&rules])
        .await?
        .get(0);
    advance_until_idle(db).await?;
    Ok(v)
}

async fn state_of(db: &TestDb, version: i64) -> anyhow::Result<String> {
    Ok(db
        .query_one(
            "SELECT state FROM ferry.sync_rules WHERE id = $1",
            &[&version],
        )
        .await?
        .get(0))
}

fn main() {
    run(vec![
        test(
            "first_deploy_snapshots_and_activates",
            first_deploy_snapshots_and_activates,
        ),
        test(
            "insert_update_delete_produce_powersync_ops",
            insert_update_delete_produce_powersync_ops,
        ),
        test(
            "row_moving_between_buckets_is_removed_from_the_old_one",
            row_moving_between_buckets_is_removed_from_the_old_one,
        ),
        test(
            "primary_key_change_is_delete_plus_insert",
            primary_key_change_is_delete_plus_insert,
        ),
        test(
            "unchanged_toast_values_are_filled_in",
            unchanged_toast_values_are_filled_in,
        ),
        test("truncate_removes_every_row", truncate_removes_every_row),
        test(
            "a_transaction_lands_in_one_checkpoint",
            a_transaction_lands_in_one_checkpoint,
        ),
        test(
            "write_checkpoint_on_an_idle_database",
            write_checkpoint_on_an_idle_database,
        ),
        test(
            "checkpoint_request_keeps_the_greatest_id",
            checkpoint_request_keeps_the_greatest_id,
        ),
        test(
            "parameter_lookups_follow_row_changes",
            parameter_lookups_follow_row_changes,
        ),
        test(
            "applier_writes_are_not_decoded_back",
            applier_writes_are_not_decoded_back,
        ),
        test(
            "values_convert_like_powersync",
            values_convert_like_powersync,
        ),
        test(
            "invalid_rules_are_refused_with_positions",
            invalid_rules_are_refused_with_positions,
        ),
        test(
            "tables_without_identity_are_refused",
            tables_without_identity_are_refused,
        ),
        test("explain_row_and_user_buckets", explain_row_and_user_buckets),
        test("bucket_data_pages_ops", bucket_data_pages_ops),
        test(
            "two_databases_apply_side_by_side",
            two_databases_apply_side_by_side,
        ),
        test(
            "large_transaction_is_one_step_in_chunks",
            large_transaction_is_one_step_in_chunks,
        ),
    ])
}

async fn first_deploy_snapshots_and_activates() -> anyhow::Result<()> {
    let db = setup("ext_deploy").await?;
    db.exec(
        "INSERT INTO settings VALUES ('theme', 'dark');
         INSERT INTO lists VALUES ('L1', 'u1', 'Groceries'), ('L2', 'u2', 'Work');
         INSERT INTO todos (id, list_id, owner_id, description, n) VALUES ('T1', 'L1', 'u1', 'milk', 9007199254740993);",
    )
    .await?;
    let v = deploy(&db, RULES).await?;
    ensure!(state_of(&db, v).await? == "active", "version not active");
    let state = reduced_state(&db).await?;
    let expected: BTreeMap<(String, String, String), String> = [
        ((format!("{v}#global[]"), "settings", "theme"), r#"{"id":"theme","value":"dark"}"#),
        ((format!("{v}#by_owner[\"u1\"]"), "lists", "L1"), r#"{"id":"L1","owner_id":"u1","name":"Groceries"}"#),
        ((format!("{v}#by_owner[\"u2\"]"), "lists", "L2"), r#"{"id":"L2","owner_id":"u2","name":"Work"}"#),
        (
            (format!("{v}#by_owner[\"u1\"]"), "todos", "T1"),
            r#"{"id":"T1","list_id":"L1","owner_id":"u1","description":"milk","done":0,"n":9007199254740993,"score":null,"big":null}"#,
        ),
    ]
    .into_iter()
    .map(|((b, t, i), d)| ((b, t.to_owned(), i.to_owned()), d.to_owned()))
    .collect();
    ensure!(
        state == expected,
        "snapshot state:\n{state:#?}\nexpected:\n{expected:#?}"
    );
    assert_checksums_consistent(&db).await?;
    let status = db
        .query_one(
            "SELECT state, snapshot_done, snapshot_rows, last_checkpoint FROM ferry.status()",
            &[],
        )
        .await?;
    ensure!(status.get::<_, String>(0) == "active");
    ensure!(status.get::<_, bool>(1));
    ensure!(
        status.get::<_, i64>(2) == 4,
        "snapshot rows {}",
        status.get::<_, i64>(2)
    );
    ensure!(status.get::<_, Option<i64>>(3) == Some(4));
    let slots = db.slots().await?;
    ensure!(slots.len() == 1, "slots: {slots:?}");
    Ok(())
}

async fn insert_update_delete_produce_powersync_ops() -> anyhow::Result<()> {
    let db = setup("ext_iud").await?;
    let v = deploy(&db, RULES).await?;
    let b = format!("{v}#by_owner[\"u1\"]");
    let start = max_op_id(&db).await?;
    db.exec("INSERT INTO lists VALUES ('L1', 'u1', 'a')")
        .await?;
    db.exec("UPDATE lists SET name = 'b' WHERE id = 'L1'")
        .await?;
    db.exec("DELETE FROM lists WHERE id = 'L1'").await?;
    advance_until_idle(&db).await?;
    let ops = ops_after(&db, start).await?;
    let expected = vec![
        (
            b.clone(),
            "PUT".into(),
            "lists/L1".into(),
            Some(r#"{"id":"L1","owner_id":"u1","name":"a"}"#.into()),
        ),
        (
            b.clone(),
            "PUT".into(),
            "lists/L1".into(),
            Some(r#"{"id":"L1","owner_id":"u1","name":"b"}"#.into()),
        ),
        (b.clone(), "REMOVE".into(), "lists/L1".into(), None),
    ];
    ensure!(ops == expected, "ops:\n{ops:#?}");
    assert_checksums_consistent(&db).await?;
    // Every change committed makes a checkpoint whose op id covers its ops.
    let last: i64 = db
        .query_one("SELECT op_id FROM ferry.latest_checkpoint()", &[])
        .await?
        .get(0);
    ensure!(last == max_op_id(&db).await?);
    Ok(())
}

async fn row_moving_between_buckets_is_removed_from_the_old_one() -> anyhow::Result<()> {
    let db = setup("ext_move").await?;
    let v = deploy(&db, RULES).await?;
    db.exec("INSERT INTO todos (id, owner_id, description) VALUES ('T1', 'u1', 'x')")
        .await?;
    advance_until_idle(&db).await?;
    let start = max_op_id(&db).await?;
    db.exec("UPDATE todos SET owner_id = 'u2' WHERE id = 'T1'")
        .await?;
    advance_until_idle(&db).await?;
    let ops = ops_after(&db, start).await?;
    ensure!(ops.len() == 2, "ops: {ops:#?}");
    ensure!(
        ops[0].0 == format!("{v}#by_owner[\"u2\"]") && ops[0].1 == "PUT",
        "{ops:#?}"
    );
    ensure!(
        ops[1].0 == format!("{v}#by_owner[\"u1\"]") && ops[1].1 == "REMOVE",
        "{ops:#?}"
    );
    assert_checksums_consistent(&db).await?;
    Ok(())
}

async fn primary_key_change_is_delete_plus_insert() -> anyhow::Result<()> {
    let db = setup("ext_pk").await?;
    let v = deploy(&db, RULES).await?;
    db.exec("INSERT INTO lists VALUES ('L1', 'u1', 'a')")
        .await?;
    advance_until_idle(&db).await?;
    let start = max_op_id(&db).await?;
    db.exec("UPDATE lists SET id = 'L9' WHERE id = 'L1'")
        .await?;
    advance_until_idle(&db).await?;
    let ops = ops_after(&db, start).await?;
    let b = format!("{v}#by_owner[\"u1\"]");
    let expected = vec![
        (b.clone(), "REMOVE".into(), "lists/L1".into(), None),
        (
            b.clone(),
            "PUT".into(),
            "lists/L9".into(),
            Some(r#"{"id":"L9","owner_id":"u1","name":"a"}"#.into()),
        ),
    ];
    ensure!(ops == expected, "ops:\n{ops:#?}");
    let state = reduced_state(&db).await?;
    ensure!(state.len() == 1, "state {state:#?}");
    Ok(())
}

async fn unchanged_toast_values_are_filled_in() -> anyhow::Result<()> {
    for full in [false, true] {
        let db = setup("ext_toast").await?;
        if full {
            db.exec("ALTER TABLE todos REPLICA IDENTITY FULL").await?;
        }
        deploy(&db, RULES).await?;
        // ~40 KB of incompressible text goes out of line into TOAST.
        db.exec(
            "ALTER TABLE todos ALTER COLUMN big SET STORAGE EXTERNAL;
             INSERT INTO todos (id, owner_id, big)
             SELECT 'T1', 'u1', string_agg(md5(i::text), '') FROM generate_series(1, 1250) i",
        )
        .await?;
        advance_until_idle(&db).await?;
        let start = max_op_id(&db).await?;
        db.exec("UPDATE todos SET description = 'touched' WHERE id = 'T1'")
            .await?;
        advance_until_idle(&db).await?;
        let ops = ops_after(&db, start).await?;
        ensure!(ops.len() == 1, "full={full}: {ops:#?}");
        let data: Value = serde_json::from_str(ops[0].3.as_deref().unwrap_or("null"))?;
        let big = data["big"].as_str().unwrap_or_default();
        ensure!(
            big.len() == 40_000,
            "full={full}: big has {} chars",
            big.len()
        );
        ensure!(data["description"] == "touched", "full={full}: {data}");
        let skipped: i64 = db
            .query_one("SELECT rows_skipped FROM ferry.status()", &[])
            .await?
            .get(0);
        ensure!(skipped == 0, "full={full}: rows skipped");
    }
    Ok(())
}

async fn truncate_removes_every_row() -> anyhow::Result<()> {
    let db = setup("ext_truncate").await?;
    let v = deploy(&db, RULES).await?;
    db.exec(
        "INSERT INTO lists SELECT 'L' || i, 'u' || (i % 3), 'n' FROM generate_series(1, 2500) i",
    )
    .await?;
    advance_until_idle(&db).await?;
    let start = max_op_id(&db).await?;
    db.exec("TRUNCATE lists").await?;
    advance_until_idle(&db).await?;
    let ops = ops_after(&db, start).await?;
    ensure!(ops.len() == 2500, "{} ops", ops.len());
    ensure!(ops.iter().all(|o| o.1 == "REMOVE"));
    let state = reduced_state(&db).await?;
    ensure!(
        state
            .keys()
            .all(|k| !k.0.starts_with(&format!("{v}#by_owner"))),
        "rows left"
    );
    assert_checksums_consistent(&db).await?;
    let rows: i64 = db
        .query_one("SELECT count(*) FROM ferry.current_rows", &[])
        .await?
        .get(0);
    ensure!(rows == 0, "{rows} current rows left");
    Ok(())
}

async fn a_transaction_lands_in_one_checkpoint() -> anyhow::Result<()> {
    let db = setup("ext_tx").await?;
    deploy(&db, RULES).await?;
    db.exec("SET ferry.step_changes = 10").await.ok();
    let before: i64 = db
        .query_one("SELECT count(*) FROM ferry.checkpoints", &[])
        .await?
        .get(0);
    db.exec(
        "BEGIN; INSERT INTO lists SELECT 'L' || i, 'u1', 'n' FROM generate_series(1, 100) i; COMMIT;
         BEGIN; INSERT INTO lists SELECT 'M' || i, 'u1', 'n' FROM generate_series(1, 100) i; COMMIT;",
    )
    .await?;
    advance_until_idle(&db).await?;
    // Every checkpoint's op id falls on a transaction boundary: 100 or 200 ops after the start.
    let rows = db
        .query("SELECT op_id FROM ferry.checkpoints ORDER BY lsn", &[])
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let base = ids[before as usize - 1];
    for id in &ids[before as usize..] {
        ensure!(
            (id - base) % 100 == 0,
            "checkpoint at op {id} splits a transaction (base {base}): {ids:?}"
        );
    }
    ensure!(*ids.last().unwrap_or(&0) == base + 200, "{ids:?}");
    Ok(())
}

async fn write_checkpoint_on_an_idle_database() -> anyhow::Result<()> {
    let db = setup("ext_wcp").await?;
    let v = deploy(&db, RULES).await?;
    let n: i64 = db
        .query_one("SELECT ferry.create_write_checkpoint('u1', 'c1')", &[])
        .await?
        .get(0);
    ensure!(n == 1);
    advance_until_idle(&db).await?;
    let changes = db
        .query(
            "SELECT write_checkpoints FROM ferry.checkpoint_changes($1, '0/0') ORDER BY lsn DESC LIMIT 1",
            &[&v],
        )
        .await?;
    let wcs: Value = changes[0].get(0);
    ensure!(wcs == json!({"u1/c1": 1}), "{wcs}");
    let cp: Value = db
        .query_one(
            "SELECT ferry.checkpoint_for($1, NULL, 'c1')",
            &[&json!({"sub": "u1"})],
        )
        .await?
        .get(0);
    ensure!(cp["write_checkpoint"] == 1, "{cp}");
    let n2: i64 = db
        .query_one("SELECT ferry.create_write_checkpoint('u1', 'c1')", &[])
        .await?
        .get(0);
    ensure!(n2 == 2);
    Ok(())
}

async fn checkpoint_request_keeps_the_greatest_id() -> anyhow::Result<()> {
    let db = setup("ext_cpr").await?;
    deploy(&db, RULES).await?;
    let a: i64 = db
        .query_one("SELECT ferry.request_checkpoint('u1', 'c1', 5)", &[])
        .await?
        .get(0);
    let b: i64 = db
        .query_one("SELECT ferry.request_checkpoint('u1', 'c1', 3)", &[])
        .await?
        .get(0);
    let c: i64 = db
        .query_one("SELECT ferry.request_checkpoint('u1', 'c1', 9)", &[])
        .await?
        .get(0);
    ensure!((a, b, c) == (5, 5, 9), "{a} {b} {c}");
    let err = db
        .query_one("SELECT ferry.request_checkpoint('u1', 'c1', 0)", &[])
        .await
        .expect_err("zero must be refused");
    let code = err
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .map(|c| c.code().to_owned());
    ensure!(code.as_deref() == Some("22023"), "{err:#}");
    Ok(())
}

async fn parameter_lookups_follow_row_changes() -> anyhow::Result<()> {
    let db = setup("ext_params").await?;
    let v = deploy(&db, RULES).await?;
    let (initial, _) = buckets(&db).await?;
    ensure!(
        initial == vec![format!("{v}#by_owner[\"u7\"]:3"), format!("{v}#global[]:3")],
        "{initial:?}"
    );
    db.exec("INSERT INTO list_members (list_id, user_id) VALUES ('L5', 'u7'), ('L6', 'u7'), ('L5', 'u8')").await?;
    advance_until_idle(&db).await?;
    let changed: bool = db
        .query_one(
            "SELECT lookups_changed FROM ferry.checkpoints ORDER BY lsn DESC LIMIT 1",
            &[],
        )
        .await?
        .get(0);
    ensure!(changed, "lookups_changed not set");
    let (after_insert, _) = buckets(&db).await?;
    ensure!(
        after_insert
            == vec![
                format!("{v}#by_owner[\"u7\"]:3"),
                format!("{v}#global[]:3"),
                format!("{v}#shared_lists[\"L5\"]:1"),
                format!("{v}#shared_lists[\"L6\"]:1"),
            ],
        "{after_insert:?}"
    );
    db.exec("UPDATE list_members SET user_id = 'u9' WHERE list_id = 'L6'")
        .await?;
    db.exec("DELETE FROM list_members WHERE list_id = 'L5' AND user_id = 'u7'")
        .await?;
    advance_until_idle(&db).await?;
    let (after_changes, _) = buckets(&db).await?;
    ensure!(after_changes.len() == 2, "{after_changes:?}");
    Ok(())
}

/// The sorted `bucket:priority` list `checkpoint_for` gives user u7.
async fn buckets(db: &TestDb) -> anyhow::Result<(Vec<String>, i64)> {
    let cp: Value = db
        .query_one("SELECT ferry.checkpoint_for($1)", &[&json!({"sub": "u7"})])
        .await?
        .get(0);
    let mut names: Vec<String> = cp["buckets"]
        .as_array()
        .context("buckets")?
        .iter()
        .map(|b| format!("{}:{}", b["bucket"].as_str().unwrap_or(""), b["priority"]))
        .collect();
    names.sort();
    Ok((names, cp["op_id"].as_i64().unwrap_or(0)))
}

async fn applier_writes_are_not_decoded_back() -> anyhow::Result<()> {
    let db = setup("ext_origin").await?;
    deploy(&db, RULES).await?;
    db.exec("INSERT INTO lists SELECT 'L' || i, 'u1', 'n' FROM generate_series(1, 500) i")
        .await?;
    let steps = advance_until_idle(&db).await?;
    ensure!(steps >= 1);
    // After the applier caught up, its own writes left nothing in the slot to decode.
    let slot: String = db
        .query_one("SELECT slot_name FROM ferry.sync_rules", &[])
        .await?
        .get(0);
    let pending: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'relations', '')",
            &[&slot],
        )
        .await?
        .get(0);
    ensure!(
        pending == 0,
        "{pending} records decoded from the applier's own writes"
    );
    // And it stays idle.
    let did: bool = db.query_one("SELECT ferry.advance()", &[]).await?.get(0);
    ensure!(!did, "an idle applier kept finding work");
    Ok(())
}

async fn values_convert_like_powersync() -> anyhow::Result<()> {
    let db = setup("ext_values").await?;
    db.exec(
        "CREATE TABLE kinds (id int8 PRIMARY KEY, b bool, f4 float4, f8 float8, num numeric, ts timestamp,
                             tstz timestamptz, d date, j jsonb, arr int4[], u uuid, by bytea, _hidden text)",
    )
    .await?;
    db.exec(
        "INSERT INTO kinds VALUES (1, true, 0.1, 3, 1.50, '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+02',
                                  '2024-01-02', '{\"a\": [1, 2]}', '{1,NULL,3}',
                                  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x0102', 'x')",
    )
    .await?;
    let v = deploy(
        &db,
        "bucket_definitions:\n  all:\n    data:\n      - SELECT * FROM kinds\n",
    )
    .await?;
    let state = reduced_state(&db).await?;
    let data = state
        .get(&(format!("{v}#all[]"), "kinds".into(), "1".into()))
        .context("row not synced")?;
    let expected = r#"{"id":1,"b":1,"f4":0.1,"f8":3.0,"num":"1.50","ts":"2024-01-02 03:04:05.5","tstz":"2024-01-02 01:04:05Z","d":"2024-01-02","j":"{\"a\": [1, 2]}","arr":"[1,null,3]","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#;
    ensure!(data == expected, "\n got {data}\nwant {expected}");
    Ok(())
}

async fn invalid_rules_are_refused_with_positions() -> anyhow::Result<()> {
    let db = setup("ext_invalid").await?;
    let err = db
        .query_one(
            "SELECT ferry.deploy_rules($1)",
            &[&"bucket_definitions:\n  a:\n    data:\n      - SELECT * FROM lists JOIN todos ON true\n"],
        )
        .await
        .expect_err("a join must be refused");
    let pg = err
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .context("db error")?;
    ensure!(pg.code().code() == "42P17", "code {}", pg.code().code());
    ensure!(pg.message().contains("4:"), "no line in: {}", pg.message());
    let count: i64 = db
        .query_one("SELECT count(*) FROM ferry.sync_rules", &[])
        .await?
        .get(0);
    ensure!(count == 0, "a failed deploy recorded a version");
    let err = db
        .query_one(
            "SELECT ferry.deploy_rules($1)",
            &[&"bucket_definitions:\n  a:\n    data:\n      - SELECT * FROM missing\n"],
        )
        .await
        .expect_err("a missing table must be refused");
    let pg = err
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .context("db error")?;
    ensure!(
        pg.code().code() == "42P01",
        "{}: {}",
        pg.code().code(),
        pg.message()
    );
    Ok(())
}

async fn tables_without_identity_are_refused() -> anyhow::Result<()> {
    let db = setup("ext_noid").await?;
    db.exec("CREATE TABLE loose (id text, v text)").await?;
    let err = db
        .query_one(
            "SELECT ferry.deploy_rules($1)",
            &[&"bucket_definitions:\n  a:\n    data:\n      - SELECT * FROM loose\n"],
        )
        .await
        .expect_err("a table without key must be refused");
    let pg = err
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .context("db error")?;
    ensure!(
        pg.code().code() == "42P16",
        "{}: {}",
        pg.code().code(),
        pg.message()
    );
    ensure!(pg.message().contains("public.loose"), "{}", pg.message());
    // FULL identity without a key works: the whole row is the key.
    db.exec("ALTER TABLE loose REPLICA IDENTITY FULL; INSERT INTO loose VALUES ('a', '1')")
        .await?;
    let v = deploy(
        &db,
        "bucket_definitions:\n  a:\n    data:\n      - SELECT * FROM loose\n",
    )
    .await?;
    db.exec("UPDATE loose SET v = '2'").await?;
    advance_until_idle(&db).await?;
    let state = reduced_state(&db).await?;
    ensure!(
        state.values().collect::<Vec<_>>() == vec![r#"{"id":"a","v":"2"}"#],
        "{state:#?}"
    );
    ensure!(state.keys().all(|k| k.0 == format!("{v}#a[]")));
    Ok(())
}

async fn explain_row_and_user_buckets() -> anyhow::Result<()> {
    let db = setup("ext_explain").await?;
    let v = deploy(&db, RULES).await?;
    let explained: Value = db
        .query_one(
            "SELECT ferry.explain_row('todos', $1)",
            &[&json!({"id": "T1", "owner_id": "u1", "description": "d"})],
        )
        .await?
        .get(0);
    ensure!(
        explained["buckets"][0]["bucket"] == format!("{v}#by_owner[\"u1\"]"),
        "{explained}"
    );
    let rows = db
        .query(
            "SELECT bucket, definition, priority FROM ferry.user_buckets($1) ORDER BY 1",
            &[&json!({"sub": "u1"})],
        )
        .await?;
    let got: Vec<(String, String, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    ensure!(
        got == vec![
            (format!("{v}#by_owner[\"u1\"]"), "by_owner".into(), 3),
            (format!("{v}#global[]"), "global".into(), 3)
        ],
        "{got:?}"
    );
    let err = db
        .query_one("SELECT ferry.checkpoint_for('{\"nosub\": 1}')", &[])
        .await
        .expect_err("claims without sub");
    let pg = err
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
        .context("db error")?;
    ensure!(pg.code().code() == "22023", "{}", pg.code().code());
    Ok(())
}

async fn bucket_data_pages_ops() -> anyhow::Result<()> {
    let db = setup("ext_data").await?;
    let v = deploy(&db, RULES).await?;
    db.exec("INSERT INTO lists SELECT 'L' || i, 'u1', 'n' FROM generate_series(1, 25) i")
        .await?;
    db.exec("INSERT INTO settings VALUES ('a', 'b')").await?;
    advance_until_idle(&db).await?;
    let upto: i64 = db
        .query_one("SELECT op_id FROM ferry.latest_checkpoint()", &[])
        .await?
        .get(0);
    let b1 = format!("{v}#by_owner[\"u1\"]");
    let b2 = format!("{v}#global[]");
    let rows = db
        .query(
            "SELECT bucket, op_id FROM ferry.bucket_data($1, $2, $3, 10)",
            &[&vec![b1.clone(), b2.clone()], &vec![0i64, 0i64], &upto],
        )
        .await?;
    ensure!(rows.len() == 10, "{} rows", rows.len());
    ensure!(rows.iter().all(|r| r.get::<_, String>(0) == b1));
    let last: i64 = rows[9].get(1);
    let rows = db
        .query(
            "SELECT bucket, op_id FROM ferry.bucket_data($1, $2, $3, 100)",
            &[&vec![b1.clone(), b2.clone()], &vec![last, 0i64], &upto],
        )
        .await?;
    ensure!(rows.len() == 16, "{} rows", rows.len());
    ensure!(rows.last().map(|r| r.get::<_, String>(0)) == Some(b2));
    Ok(())
}

async fn two_databases_apply_side_by_side() -> anyhow::Result<()> {
    let a = setup("ext_two_a").await?;
    let b = setup("ext_two_b").await?;
    deploy(&a, RULES).await?;
    deploy(&b, RULES).await?;
    for i in 0..5 {
        a.exec(&format!("INSERT INTO lists VALUES ('A{i}', 'u1', 'a')"))
            .await?;
        b.exec(&format!("INSERT INTO lists VALUES ('B{i}', 'u1', 'b')"))
            .await?;
        let (ra, rb) = tokio::join!(advance_until_idle(&a), advance_until_idle(&b));
        ra?;
        rb?;
    }
    let sa = reduced_state(&a).await?;
    let sb = reduced_state(&b).await?;
    ensure!(sa.len() == 5 && sb.len() == 5, "{} {}", sa.len(), sb.len());
    ensure!(sa.keys().all(|k| k.2.starts_with('A')) && sb.keys().all(|k| k.2.starts_with('B')));
    Ok(())
}

async fn large_transaction_is_one_step_in_chunks() -> anyhow::Result<()> {
    let db = setup("ext_large").await?;
    deploy(&db, RULES).await?;
    db.exec("INSERT INTO todos (id, owner_id, description) SELECT 'T' || i, 'u' || (i % 10), 'x' FROM generate_series(1, 30000) i").await?;
    let before: i64 = db
        .query_one("SELECT count(*) FROM ferry.checkpoints", &[])
        .await?
        .get(0);
    advance_until_idle(&db).await?;
    let after: i64 = db
        .query_one("SELECT count(*) FROM ferry.checkpoints", &[])
        .await?
        .get(0);
    ensure!(
        after == before + 1,
        "{} checkpoints for one transaction",
        after - before
    );
    let ops = all_ops(&db).await?;
    ensure!(ops.len() == 30000, "{} ops", ops.len());
    assert_checksums_consistent(&db).await?;
    Ok(())
}

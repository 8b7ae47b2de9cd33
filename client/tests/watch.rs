//! Watched queries: re-run once per committed transaction that touches a table they read, by a
//! local write or by sync; not for other tables.

mod support;

use std::time::Duration;

use ferry_client::params;
use futures::StreamExt;
use support::{fast_options, open_db, put_todo, FakeGateway, TestConnector};

async fn next_len<S>(stream: &mut S) -> Option<usize>
where
    S: futures::Stream<Item = ferry_client::Result<Vec<ferry_client::Row>>> + Unpin,
{
    match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        Ok(Some(rows)) => Some(rows.unwrap().len()),
        Ok(None) => panic!("watch ended"),
        Err(_) => None,
    }
}

#[tokio::test]
async fn local_transactions_rerun_once_and_other_tables_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let mut todos = Box::pin(db.watch("SELECT id FROM todos WHERE completed = ?1", params![0]));
    assert_eq!(next_len(&mut todos).await, Some(0), "current result first");

    db.transaction(|tx| {
        for id in ["a", "b", "c"] {
            tx.execute(
                "INSERT INTO todos(id, description, completed) VALUES (?1, 'x', 0)",
                [id],
            )?;
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(next_len(&mut todos).await, Some(3));
    assert_eq!(
        next_len(&mut todos).await,
        None,
        "one transaction, one re-run"
    );

    db.execute("INSERT INTO lists(id, name) VALUES ('l', 'groceries')", ())
        .await
        .unwrap();
    assert_eq!(next_len(&mut todos).await, None, "lists is not read");

    db.execute("UPDATE todos SET completed = 1 WHERE id = 'a'", ())
        .await
        .unwrap();
    assert_eq!(next_len(&mut todos).await, Some(2));

    // A rolled-back transaction changes nothing.
    let failed = db
        .transaction(|tx| {
            tx.execute("DELETE FROM todos", [])?;
            Err::<(), _>(ferry_client::Error::Connector("abort".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(next_len(&mut todos).await, None);
}

#[tokio::test]
async fn synced_checkpoints_rerun_watchers() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let mut todos = Box::pin(db.watch("SELECT id FROM todos", ()));
    assert_eq!(next_len(&mut todos).await, Some(0));
    let stream = gateway.stream();
    stream.lines(r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":3}]}}"#);
    stream.lines(&format!(
        r#"{{"data":{{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{},{}]}}}}"#,
        put_todo(1, "T1", "one", 1),
        put_todo(2, "T2", "two", 2)
    ));
    db.connect(TestConnector::new(gateway.endpoint()), fast_options())
        .await
        .unwrap();
    assert_eq!(
        next_len(&mut todos).await,
        None,
        "staged data does not wake watchers"
    );
    stream.lines(r#"{"checkpoint_complete":{"last_op_id":"2"}}"#);
    let rows = tokio::time::timeout(Duration::from_secs(10), todos.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(rows.len(), 2);
    // The same checkpoint again changes no row: no re-run.
    stream.lines(r#"{"checkpoint_diff":{"last_op_id":"2","write_checkpoint":"1","updated_buckets":[],"removed_buckets":[]}}"#);
    stream.lines(r#"{"checkpoint_complete":{"last_op_id":"2"}}"#);
    assert_eq!(next_len(&mut todos).await, None);
    db.disconnect().await;
}

#[tokio::test]
async fn broken_queries_report_the_error_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let mut broken = Box::pin(db.watch("SELECT nope FROM todos", ()));
    let first = broken.next().await.unwrap();
    let e = first.unwrap_err().to_string();
    assert!(e.contains("no such column: nope"), "{e}");
    assert!(broken.next().await.is_none());
}

#[tokio::test]
async fn table_changes_and_queue_length_follow_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let mut changes = Box::pin(db.table_changes());
    db.execute(
        "INSERT INTO todos(id, description) VALUES (uuid(), ?1)",
        params!["x"],
    )
    .await
    .unwrap();
    let set = changes.next().await.unwrap();
    let names: Vec<&str> = set.iter().map(String::as_str).collect();
    assert_eq!(names, ["ferry_crud", "todos"]);
    assert_eq!(db.status().upload_queue_len, 1);
    assert_eq!(db.upload_queue_len().await.unwrap(), 1);
    let pending = db.next_crud_transaction().await.unwrap().unwrap();
    assert_eq!(pending.transaction.entries[0].table, "todos");
    db.complete_crud_transaction(&pending).await.unwrap();
    assert_eq!(db.status().upload_queue_len, 0);
}

#[tokio::test]
async fn a_statement_cannot_leave_the_shared_writer_in_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let e = db.execute("BEGIN", ()).await.unwrap_err().to_string();
    assert!(e.contains("left a transaction open"), "{e}");
    db.execute("INSERT INTO lists(id, name) VALUES ('l', 'x')", ())
        .await
        .unwrap();
    assert_eq!(db.query("SELECT id FROM lists", ()).await.unwrap().len(), 1);
}

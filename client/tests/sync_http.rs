//! The sync driver over real HTTP against a scripted gateway: resuming, reconnecting, bad input,
//! HTTP errors, credentials, uploads and the write gate.

mod support;

use std::sync::atomic::Ordering;

use ferry_client::{params, GatewayConnector, SyncOptions, UploadError};
use support::{eventually, fast_options, open_db, put_todo, todos, FakeGateway, TestConnector};

const CHECKPOINT_3: &str = r#"{"checkpoint":{"last_op_id":"3","buckets":[{"bucket":"b[]","checksum":6,"count":3,"priority":3,"subscriptions":[{"default":0}]}],"streams":[{"name":"b","is_default":true,"errors":[]}]}}"#;

fn data(after: u64, ops: &[String], has_more: bool) -> String {
    format!(
        r#"{{"data":{{"bucket":"b[]","after":"{after}","next_after":"0","has_more":{has_more},"data":[{}]}}}}"#,
        ops.join(",")
    )
}

#[tokio::test]
async fn syncs_over_http_and_resumes_after_the_stream_drops() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let first = gateway.stream();
    first.lines(CHECKPOINT_3);
    first.lines(&data(0, &[put_todo(1, "T1", "one", 1)], true));
    let connector = TestConnector::new(gateway.endpoint());
    db.connect(connector, fast_options()).await.unwrap();

    eventually("the first data line", || async {
        let status = db.status();
        (status.download_progress.map(|p| p.overall()) == Some((1, 3))).then_some(())
    })
    .await;
    assert!(db.status().connected);
    assert!(
        todos(&db).await.is_empty(),
        "nothing before checkpoint_complete"
    );

    let second = gateway.stream();
    drop(first); // the connection drops mid-checkpoint
    second.lines(CHECKPOINT_3);
    second.lines(&data(
        1,
        &[put_todo(2, "T2", "two", 2), put_todo(3, "T3", "three", 3)],
        false,
    ));
    second.lines(r#"{"checkpoint_complete":{"last_op_id":"3"}}"#);
    tokio::time::timeout(std::time::Duration::from_secs(10), db.wait_for_first_sync())
        .await
        .expect("first sync");
    assert_eq!(todos(&db).await, ["T1|one|0", "T2|two|0", "T3|three|0"]);

    let requests = gateway.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].buckets.is_empty());
    assert_eq!(requests[1].buckets.len(), 1);
    assert_eq!(requests[1].buckets[0].name, "b[]");
    assert_eq!(
        requests[1].buckets[0].after.get(),
        1,
        "resumed from the last op"
    );
    assert_eq!(
        requests[1].client_id.as_deref(),
        Some(db.client_id()),
        "requests carry the client id"
    );
    let status = db.status();
    assert!(status.has_synced() && status.download_error.is_none());
    db.disconnect().await;
    assert!(!db.status().connected);
}

/// Garbage, a truncated line and an oversize line each give a status error and a reconnect, and
/// never a published half checkpoint; an unknown line type is ignored.
#[tokio::test]
async fn bad_lines_are_reported_and_retried_without_publishing() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let options = SyncOptions {
        max_line_len: 2_000,
        ..fast_options()
    };

    // 1: garbage between the data and the completion.
    let s1 = gateway.stream();
    s1.lines(CHECKPOINT_3);
    s1.lines(&data(0, &[put_todo(1, "T1", "one", 1)], true));
    s1.raw(b"{this is not json\n");
    s1.lines(r#"{"checkpoint_complete":{"last_op_id":"3"}}"#);
    // 2: a line cut off by the end of the stream.
    let s2 = gateway.stream();
    s2.lines(CHECKPOINT_3);
    s2.raw(br#"{"checkpoint_complete":{"last_op"#);
    drop(s2);
    // 3: a line over the maximum length.
    let s3 = gateway.stream();
    s3.lines(CHECKPOINT_3);
    let big = put_todo(2, "T2", &"x".repeat(5_000), 2);
    s3.lines(&data(1, &[big], false));
    drop(s3);
    // 4: good, with a line of a type this client does not know (ignored, PROTOCOL.md §3.3).
    let s4 = gateway.stream();
    s4.lines(CHECKPOINT_3);
    s4.lines(r#"{"some_future_line":{"anything":[1,2,3]}}"#);
    s4.lines(&data(
        1,
        &[put_todo(2, "T2", "two", 2), put_todo(3, "T3", "three", 3)],
        false,
    ));
    s4.lines(r#"{"checkpoint_complete":{"last_op_id":"3"}}"#);

    let mut errors = Vec::new();
    let mut statuses = Box::pin(db.status_stream());
    db.connect(TestConnector::new(gateway.endpoint()), options)
        .await
        .unwrap();
    use futures::StreamExt;
    let collect = async {
        while let Some(status) = statuses.next().await {
            if let Some(e) = &status.download_error {
                if errors.last() != Some(e) {
                    errors.push(e.clone());
                }
            }
            if status.has_synced() {
                assert!(status.download_error.is_none());
                break;
            }
            // Never half a checkpoint: nothing, or all of it.
            let shown = todos(&db).await;
            assert!(shown.is_empty() || shown.len() == 3, "{shown:?}");
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), collect)
        .await
        .expect("sync after the bad streams");
    drop(s1);
    assert_eq!(todos(&db).await, ["T1|one|0", "T2|two|0", "T3|three|0"]);
    let all = errors.join("\n");
    assert!(all.contains("line 3 is not a valid sync line"), "{all}");
    assert!(
        all.contains("the stream ended in the middle of line 2"),
        "{all}"
    );
    assert!(
        all.contains("is longer than the maximum of 2000 bytes"),
        "{all}"
    );
    assert_eq!(gateway.requests().len(), 4);
    db.disconnect().await;
}

#[tokio::test]
async fn http_errors_are_reported_and_credentials_refetched_after_401() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    gateway.error(
        503,
        r#"{"error":{"name":"ServiceUnavailable","code":"PSYNC_S2003","status":503,"description":"restarting"}}"#,
    );
    gateway.error(
        401,
        r#"{"error":{"name":"AuthorizationError","code":"PSYNC_S2103","status":401,"description":"JWT has expired"}}"#,
    );
    let ok = gateway.stream();
    ok.lines(r#"{"checkpoint":{"last_op_id":"0","buckets":[]}}"#);
    ok.lines(r#"{"checkpoint_complete":{"last_op_id":"0"}}"#);
    let connector = TestConnector::new(gateway.endpoint());
    let fetches = connector.fetches.clone();
    let mut statuses = Box::pin(db.status_stream());
    db.connect(connector, fast_options()).await.unwrap();
    use futures::StreamExt;
    let mut errors = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(status) = statuses.next().await {
            if let Some(e) = status.download_error.clone() {
                if errors.last() != Some(&e) {
                    errors.push(e);
                }
            }
            if status.has_synced() {
                break;
            }
        }
    })
    .await
    .expect("synced after errors");
    let all = errors.join("\n");
    assert!(
        all.contains("HTTP 503") && all.contains("restarting (PSYNC_S2003)"),
        "{all}"
    );
    assert!(
        all.contains("HTTP 401") && all.contains("JWT has expired"),
        "{all}"
    );
    let tokens = gateway.state.tokens.lock().unwrap().clone();
    assert_eq!(
        tokens,
        ["token-1", "token-1", "token-2"],
        "new token after the 401"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    db.disconnect().await;
}

#[tokio::test]
async fn keepalives_prefetch_credentials_and_expiry_reconnects() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let s1 = gateway.stream();
    s1.lines(r#"{"checkpoint":{"last_op_id":"0","buckets":[]}}"#);
    s1.lines(r#"{"checkpoint_complete":{"last_op_id":"0"}}"#);
    s1.lines(r#"{"token_expires_in":25}"#);
    let connector = TestConnector::new(gateway.endpoint());
    let fetches = connector.fetches.clone();
    db.connect(connector, fast_options()).await.unwrap();
    eventually("prefetch", || async {
        (fetches.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;
    let _s2 = gateway.stream();
    s1.lines(r#"{"token_expires_in":0}"#);
    eventually("reconnect with a fresh token", || async {
        let tokens = gateway.state.tokens.lock().unwrap().clone();
        (tokens.len() == 2).then_some(tokens)
    })
    .await;
    let tokens = gateway.state.tokens.lock().unwrap().clone();
    assert_eq!(tokens[0], "token-1");
    assert_eq!(tokens[1], "token-3", "expired token: fetched again");
    db.disconnect().await;
}

/// A local write is uploaded; the download of the server's state is held back until the write
/// checkpoint requested after the upload comes back; then it is published, with no flicker.
#[tokio::test]
async fn uploads_then_waits_for_the_write_checkpoint() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    let stream = gateway.stream();
    stream.lines(r#"{"checkpoint":{"last_op_id":"0","buckets":[]}}"#);
    stream.lines(r#"{"checkpoint_complete":{"last_op_id":"0"}}"#);
    let connector = TestConnector::new(gateway.endpoint());
    let uploads = connector.uploads.clone();
    // The first attempt fails temporarily: it must be retried, not lost.
    connector
        .upload_results
        .lock()
        .unwrap()
        .push_back(Err(UploadError::Retry("backend down".into())));
    db.connect(connector, fast_options()).await.unwrap();
    db.wait_for_first_sync().await;

    db.transaction(|tx| {
        tx.execute(
            "INSERT INTO todos(id, description, completed) VALUES ('T1', 'milk', 0)",
            [],
        )?;
        tx.execute("UPDATE todos SET completed = 1 WHERE id = 'T1'", [])?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(todos(&db).await, ["T1|milk|1"]);

    eventually("upload and write checkpoint", || async {
        (gateway.state.write_checkpoint.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let uploaded = uploads.lock().unwrap().clone();
    assert_eq!(uploaded.len(), 1, "one transaction, uploaded once");
    assert_eq!(uploaded[0].entries.len(), 2);
    assert_eq!(uploaded[0].client_id, db.client_id());
    assert_eq!(
        gateway.state.write_checkpoint_clients.lock().unwrap()[0],
        db.client_id()
    );
    assert_eq!(db.upload_queue_len().await.unwrap(), 0);

    // The server's checkpoint without the write checkpoint: held back.
    stream.lines(
        r#"{"checkpoint_diff":{"last_op_id":"1","updated_buckets":[{"bucket":"b[]","checksum":1,"count":1,"priority":0}],"removed_buckets":[]}}"#,
    );
    stream.lines(&format!(
        r#"{{"data":{{"bucket":"b[]","after":"0","next_after":"1","has_more":false,"data":[{}]}}}}"#,
        put_todo(1, "T1", "milk (old)", 1)
    ));
    stream.lines(r#"{"partial_checkpoint_complete":{"last_op_id":"1","priority":0}}"#);
    stream.lines(r#"{"checkpoint_complete":{"last_op_id":"1"}}"#);
    // Then one that includes it.
    let newer = r#"{\"id\":\"T1\",\"description\":\"milk (server)\",\"completed\":1}"#;
    stream.lines(
        r#"{"checkpoint_diff":{"last_op_id":"2","write_checkpoint":"1","updated_buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":0}],"removed_buckets":[]}}"#,
    );
    // Meanwhile the app watches: it must never see the old value.
    let mut watch = Box::pin(db.watch("SELECT completed FROM todos WHERE id = 'T1'", ()));
    use futures::StreamExt;
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first[0].get::<i64>(0).unwrap(), 1);
    stream.lines(&format!(
        r#"{{"data":{{"bucket":"b[]","after":"1","next_after":"2","has_more":false,"data":[{{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":2,"data":"{newer}"}}]}}}}"#
    ));
    stream.lines(r#"{"checkpoint_complete":{"last_op_id":"2"}}"#);
    eventually("the server's state", || async {
        let t = todos(&db).await;
        (t == ["T1|milk (server)|1"]).then_some(())
    })
    .await;
    // No published value in between was ever completed = 0.
    while let Ok(Some(rows)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), watch.next()).await
    {
        assert_eq!(rows.unwrap()[0].get::<i64>(0).unwrap(), 1, "flicker");
    }
    db.disconnect().await;
}

#[tokio::test]
async fn gateway_connector_uploads_json_and_drops_rejected_transactions() {
    let gateway = FakeGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir);
    gateway.state.upload_responses.lock().unwrap().extend([
        (
            500,
            r#"{"error":{"name":"x","code":"PSYNC_S2001","status":500,"description":"try later"}}"#
                .to_owned(),
        ),
        (200, r#"{"data":{"applied":true}}"#.to_owned()),
        (
            400,
            r#"{"error":{"name":"x","code":"FERRY_REJECTED","status":400,"description":"no such list"}}"#
                .to_owned(),
        ),
    ]);
    db.execute(
        "INSERT INTO todos(id, description) VALUES (?1, ?2)",
        params!["A", "accepted"],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO todos(id, description) VALUES (?1, ?2)",
        params!["B", "rejected"],
    )
    .await
    .unwrap();
    assert_eq!(db.status().upload_queue_len, 2);
    let connector = GatewayConnector::new(gateway.endpoint(), "static-token")
        .with_upload_url(format!("{}/crud", gateway.endpoint()));
    db.connect(connector, fast_options()).await.unwrap();
    eventually("queue drained", || async {
        (db.upload_queue_len().await.unwrap() == 0).then_some(())
    })
    .await;
    let uploads = gateway.state.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].entries[0].id, "A");
    let error = eventually("status shows the rejection", || async {
        db.status().upload_error.filter(|e| e.contains("rejected"))
    })
    .await;
    assert!(error.contains("no such list (FERRY_REJECTED)"), "{error}");
    assert_eq!(db.status().upload_queue_len, 0);
    db.disconnect().await;
}

//! Golden traces for the sync state machine: NDJSON lines written from PROTOCOL.md §3–§4 go in,
//! and the actions taken and the tables the app reads are checked after each step.

use ferry_protocol::SyncLineDecoder;
use rusqlite::types::Value;

use super::{SyncAction, SyncEvent, SyncStateMachine};
use crate::schema::{Schema, Table};
use crate::storage::{open_writer, Writer};

fn schema() -> Schema {
    Schema::new(vec![
        Table::new("lists").text("name").text("owner_id"),
        Table::new("todos")
            .text("description")
            .integer("completed")
            .text("list_id"),
    ])
}

struct Harness {
    writer: Writer,
    sm: SyncStateMachine,
}

/// One line per action, with the download status left out (progress is checked separately).
fn describe(actions: Vec<SyncAction>) -> Vec<String> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            SyncAction::EstablishStream(request) => Some(format!(
                "establish {}",
                request
                    .buckets
                    .iter()
                    .map(|b| format!("{}>{}", b.name, b.after))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            SyncAction::FetchCredentials { expired } => {
                Some(format!("fetch_credentials expired={expired}"))
            }
            SyncAction::CloseStream { error } => Some(match error {
                Some(e) => format!("close: {e}"),
                None => "close".to_owned(),
            }),
            SyncAction::StatusChanged(_) => None,
            SyncAction::DidCompleteSync { priority, .. } => Some(match priority {
                Some(p) => format!("synced priority {p}"),
                None => "synced".to_owned(),
            }),
        })
        .collect()
}

impl Harness {
    fn new() -> Harness {
        let writer = open_writer(None, &schema()).unwrap();
        let sm = SyncStateMachine::new(writer.client_id.clone(), &schema(), None);
        Harness { writer, sm }
    }

    fn event(&mut self, event: SyncEvent) -> Vec<String> {
        let tx = self.writer.conn.transaction().unwrap();
        let actions = self.sm.handle(&tx, event).unwrap();
        tx.commit().unwrap();
        describe(actions)
    }

    fn start(&mut self) -> Vec<String> {
        let mut out = self.event(SyncEvent::Start);
        out.extend(self.event(SyncEvent::ConnectionEstablished));
        out
    }

    /// Feeds NDJSON lines, each handled in its own transaction.
    fn feed(&mut self, ndjson: &str) -> Vec<String> {
        let mut decoder = SyncLineDecoder::new();
        decoder.push(ndjson.as_bytes());
        decoder.push(b"\n");
        let mut out = Vec::new();
        while let Some(line) = decoder.next_line() {
            out.extend(self.event(SyncEvent::Line(line.unwrap())));
        }
        decoder.finish().unwrap();
        out
    }

    fn sql(&self, sql: &str) -> Vec<String> {
        let mut stmt = self.writer.conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| match r.get::<_, Value>(i).unwrap() {
                        Value::Null => "NULL".to_owned(),
                        Value::Integer(v) => v.to_string(),
                        Value::Real(v) => v.to_string(),
                        Value::Text(v) => v,
                        Value::Blob(_) => "<blob>".to_owned(),
                    })
                    .collect();
                Ok(cells.join("|"))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn todos(&self) -> Vec<String> {
        self.sql("SELECT id, description, completed FROM todos ORDER BY id")
    }

    fn write(&mut self, sql: &str) {
        self.writer.conn.execute_batch(sql).unwrap();
    }

    /// What the uploader does after the backend accepted everything: drain the queue, then set
    /// the write checkpoint the server handed out.
    fn uploaded(&mut self, write_checkpoint: u64) -> Vec<String> {
        let conn = &self.writer.conn;
        conn.execute("DELETE FROM ferry_crud", []).unwrap();
        let seq = super::write_gate::crud_sequence(conn).unwrap();
        assert!(super::write_gate::set_target(conn, write_checkpoint, seq).unwrap());
        self.event(SyncEvent::UploadCompleted)
    }
}

/// The example session of PROTOCOL.md §3.4.1 (with concrete checksums and rows): priority-1
/// buckets are published at `partial_checkpoint_complete` before the rest, and a later diff with
/// a REMOVE deletes the row.
#[test]
fn example_session_publishes_by_priority_then_applies_a_diff() {
    let mut h = Harness::new();
    assert_eq!(h.start(), ["establish "]);
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"12","buckets":[{"bucket":"global_config[]","checksum":1111,"count":1,"priority":3,"subscriptions":[{"default":0}]},{"bucket":"user_lists[\"u1\"]","checksum":2222,"count":2,"priority":1,"subscriptions":[{"default":1}]},{"bucket":"org_projects[null]","checksum":0,"count":0,"priority":3,"subscriptions":[{"default":2}]}],"streams":[{"name":"global_config","is_default":true,"errors":[]},{"name":"user_lists","is_default":true,"errors":[]},{"name":"org_projects","is_default":true,"errors":[]}]}}
{"data":{"bucket":"user_lists[\"u1\"]","after":"0","next_after":"11","has_more":false,"data":[{"op_id":"10","op":"PUT","object_type":"lists","object_id":"L1","subkey":"1/L1","checksum":1000,"data":"{\"id\":\"L1\",\"owner_id\":\"u1\",\"name\":\"Groceries\"}"},{"op_id":"11","op":"PUT","object_type":"todos","object_id":"T1","subkey":"2/T1","checksum":1222,"data":"{\"id\":\"T1\",\"list_id\":\"L1\",\"description\":\"milk\",\"completed\":0}"}]}}"#,
    );
    assert!(out.is_empty(), "{out:?}");
    assert!(
        h.todos().is_empty(),
        "nothing is published before a completion line"
    );

    let out = h.feed(r#"{"partial_checkpoint_complete":{"last_op_id":"12","priority":1}}"#);
    assert_eq!(out, ["synced priority 1"]);
    assert_eq!(h.todos(), ["T1|milk|0"]);
    assert_eq!(
        h.sql("SELECT id, name, owner_id FROM lists"),
        ["L1|Groceries|u1"]
    );
    assert!(h.sql("SELECT * FROM ferry_untyped").is_empty());

    let out = h.feed(
        r#"{"data":{"bucket":"global_config[]","after":"0","next_after":"12","has_more":false,"data":[{"op_id":"12","op":"PUT","object_type":"app_settings","object_id":"s1","subkey":"3/s1","checksum":1111,"data":"{\"id\":\"s1\",\"theme\":\"dark\"}"}]}}
{"checkpoint_complete":{"last_op_id":"12"}}
{"token_expires_in":3580}"#,
    );
    assert_eq!(out, ["synced"]);
    // A type with no table in the schema is kept aside, not lost.
    assert_eq!(
        h.sql("SELECT type, id, data FROM ferry_untyped"),
        [r#"app_settings|s1|{"id":"s1","theme":"dark"}"#]
    );
    assert!(h
        .sm
        .status()
        .priority_status
        .iter()
        .any(|p| p.priority.is_none()));

    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"13","updated_buckets":[{"bucket":"user_lists[\"u1\"]","checksum":2255,"count":3,"priority":1,"subscriptions":[{"default":1}]}],"removed_buckets":[]}}
{"data":{"bucket":"user_lists[\"u1\"]","after":"11","next_after":"13","has_more":false,"data":[{"op_id":"13","op":"REMOVE","object_type":"todos","object_id":"T1","subkey":"2/T1","checksum":33,"data":null}]}}"#,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        h.todos(),
        ["T1|milk|0"],
        "the REMOVE waits for its checkpoint"
    );
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"13"}}"#),
        ["synced"]
    );
    assert!(h.todos().is_empty());
    assert_eq!(h.sql("SELECT id FROM lists"), ["L1"]);

    // The next connection resumes every bucket from the checkpoint.
    h.event(SyncEvent::ConnectionEnded);
    assert_eq!(
        h.start(),
        [r#"establish global_config[]>13,user_lists["u1"]>13"#]
    );
}

/// The row of the op with the highest id across buckets wins; when it leaves its bucket, the
/// other bucket's op takes over.
#[test]
fn highest_op_id_across_buckets_wins() {
    let mut h = Harness::new();
    h.start();
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"5","buckets":[{"bucket":"a[]","checksum":3,"count":1,"priority":3},{"bucket":"b[]","checksum":5,"count":1,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"5","has_more":false,"data":[{"op_id":"5","op":"PUT","object_type":"todos","object_id":"T","subkey":null,"checksum":5,"data":"{\"description\":\"from b\"}"}]}}
{"data":{"bucket":"a[]","after":"0","next_after":"3","has_more":false,"data":[{"op_id":"3","op":"PUT","object_type":"todos","object_id":"T","subkey":null,"checksum":3,"data":"{\"description\":\"from a\"}"}]}}
{"checkpoint_complete":{"last_op_id":"5"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert_eq!(h.todos(), ["T|from b|NULL"]);

    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"7","updated_buckets":[{"bucket":"b[]","checksum":12,"count":2,"priority":3}],"removed_buckets":[]}}
{"data":{"bucket":"b[]","after":"5","next_after":"7","has_more":false,"data":[{"op_id":"7","op":"REMOVE","object_type":"todos","object_id":"T","subkey":null,"checksum":7,"data":null}]}}
{"checkpoint_complete":{"last_op_id":"7"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert_eq!(h.todos(), ["T|from a|NULL"]);

    // A removed bucket takes its rows with it at the next full checkpoint.
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"8","updated_buckets":[],"removed_buckets":["a[]"]}}
{"checkpoint_complete":{"last_op_id":"8"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert!(h.todos().is_empty());
}

/// A CLEAR drops everything the bucket held (published or staged) and restarts its checksum; a
/// MOVE only adds its checksum.
#[test]
fn clear_and_move_follow_compaction_semantics() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"one\"}"},{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T2","subkey":null,"checksum":2,"data":"{\"description\":\"two\"}"}]}}
{"checkpoint_complete":{"last_op_id":"2"}}"#,
    );
    assert_eq!(h.todos(), ["T1|one|NULL", "T2|two|NULL"]);

    // Server-side compaction: ops 1..=4 became one CLEAR (checksum 1+2+7+8 = 18), op 5 a MOVE.
    // The client holds ops 1 and 2 and receives the rest.
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"6","updated_buckets":[{"bucket":"b[]","checksum":34,"count":3,"priority":3}],"removed_buckets":[]}}
{"data":{"bucket":"b[]","after":"2","next_after":"6","has_more":false,"data":[{"op_id":"4","op":"CLEAR","checksum":18},{"op_id":"5","op":"MOVE","checksum":10},{"op_id":"6","op":"PUT","object_type":"todos","object_id":"T3","subkey":null,"checksum":6,"data":"{\"description\":\"three\"}"}]}}"#,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        h.todos(),
        ["T1|one|NULL", "T2|two|NULL"],
        "not yet validated"
    );
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"6"}}"#),
        ["synced"]
    );
    assert_eq!(h.todos(), ["T3|three|NULL"]);
    assert_eq!(h.sql("SELECT count(*) FROM ferry_oplog"), ["1"]);
    assert_eq!(h.sql("SELECT count(*) FROM ferry_stage"), ["0"]);
}

/// A checksum mismatch deletes the bucket and closes the stream; the next request downloads it
/// from scratch, and the rows the app sees stay until the re-download is published.
#[test]
fn checksum_mismatch_redownloads_the_bucket() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b[]","checksum":1,"count":1,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"one\"}"}]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
    );
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"2","updated_buckets":[{"bucket":"b[]","checksum":99,"count":2,"priority":3}],"removed_buckets":[]}}
{"data":{"bucket":"b[]","after":"1","next_after":"2","has_more":false,"data":[{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T2","subkey":null,"checksum":2,"data":"{\"description\":\"two\"}"}]}}
{"checkpoint_complete":{"last_op_id":"2"}}"#,
    );
    assert_eq!(
        out,
        ["close: checksum mismatch at checkpoint 2 in b[] (local 3, server 99): the buckets are downloaded again"]
    );
    assert_eq!(h.todos(), ["T1|one|NULL"], "published rows stay");
    assert!(h.sql("SELECT * FROM ferry_buckets").is_empty());
    h.event(SyncEvent::ConnectionEnded);
    assert_eq!(h.start(), ["establish "], "the bucket starts over");
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"one\"}"},{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T2","subkey":null,"checksum":2,"data":"{\"description\":\"two\"}"}]}}
{"checkpoint_complete":{"last_op_id":"2"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert_eq!(h.todos(), ["T1|one|NULL", "T2|two|NULL"]);
}

/// A stream that drops mid-checkpoint resumes from the last op stored; nothing of the
/// interrupted checkpoint shows until it completes on the new stream.
#[test]
fn resumed_stream_continues_from_the_last_op() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"4","buckets":[{"bucket":"b[]","checksum":10,"count":4,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":true,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"one\"}"},{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T2","subkey":null,"checksum":2,"data":"{\"description\":\"two\"}"}]}}"#,
    );
    let progress = h.sm.status().progress.clone().unwrap();
    assert_eq!(progress.overall(), (2, 4));
    h.event(SyncEvent::ConnectionEnded);
    assert!(h.todos().is_empty());
    assert_eq!(h.start(), ["establish b[]>2"]);
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"4","buckets":[{"bucket":"b[]","checksum":10,"count":4,"priority":3}]}}
{"data":{"bucket":"b[]","after":"2","next_after":"4","has_more":false,"data":[{"op_id":"3","op":"PUT","object_type":"todos","object_id":"T3","subkey":null,"checksum":3,"data":"{\"description\":\"three\"}"},{"op_id":"4","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":4,"data":"{\"description\":\"one v2\"}"}]}}"#,
    );
    assert!(out.is_empty());
    assert_eq!(h.sm.status().progress.clone().unwrap().overall(), (4, 4));
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"4"}}"#),
        ["synced"]
    );
    assert_eq!(
        h.todos(),
        ["T1|one v2|NULL", "T2|two|NULL", "T3|three|NULL"]
    );
}

/// The write gate (PROTOCOL.md §4.7): a local write shows at once; downloaded data is held back
/// while the queue is non-empty or the server has not acknowledged the write checkpoint taken
/// after the upload; then the server's state (which includes the write) is published. Partial
/// checkpoints of priority 0 are gated too.
#[test]
fn write_gate_holds_downloads_until_the_upload_is_acknowledged() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"p0[]","checksum":1,"count":1,"priority":0}]}}
{"data":{"bucket":"p0[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"milk\",\"completed\":0}"}]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
    );
    assert_eq!(h.todos(), ["T1|milk|0"]);

    h.write("UPDATE todos SET completed = 1 WHERE id = 'T1'");
    assert_eq!(h.todos(), ["T1|milk|1"], "local writes show at once");

    // The server has not seen the write: its checkpoint still says completed = 0.
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"2","updated_buckets":[{"bucket":"p0[]","checksum":3,"count":2,"priority":0}],"removed_buckets":[]}}
{"data":{"bucket":"p0[]","after":"1","next_after":"2","has_more":false,"data":[{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":2,"data":"{\"description\":\"milk!\",\"completed\":0}"}]}}
{"partial_checkpoint_complete":{"last_op_id":"2","priority":0}}
{"checkpoint_complete":{"last_op_id":"2"}}"#,
    );
    assert!(out.is_empty(), "gated, even at priority 0: {out:?}");
    assert_eq!(h.todos(), ["T1|milk|1"]);

    // Uploaded; the server handed out write checkpoint 5, which checkpoint 2 does not include.
    assert!(h.uploaded(5).is_empty());
    assert_eq!(h.todos(), ["T1|milk|1"], "no flicker back to completed = 0");

    // The backend applied the write; checkpoint 3 carries write checkpoint 5.
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"3","write_checkpoint":"5","updated_buckets":[{"bucket":"p0[]","checksum":6,"count":3,"priority":0}],"removed_buckets":[]}}
{"data":{"bucket":"p0[]","after":"2","next_after":"3","has_more":false,"data":[{"op_id":"3","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":3,"data":"{\"description\":\"milk!\",\"completed\":1}"}]}}
{"partial_checkpoint_complete":{"last_op_id":"3","priority":0}}
{"checkpoint_complete":{"last_op_id":"3"}}"#,
    );
    assert_eq!(out, ["synced priority 0", "synced"]);
    assert_eq!(h.todos(), ["T1|milk!|1"]);
}

/// A checkpoint validated while the gate is closed is published as soon as the upload completes,
/// if it already includes the write checkpoint.
#[test]
fn gated_checkpoint_is_published_when_the_upload_completes() {
    let mut h = Harness::new();
    h.start();
    h.write("INSERT INTO todos(id, description) VALUES ('L', 'local')");
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"1","write_checkpoint":"4","buckets":[{"bucket":"b[]","checksum":1,"count":1,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"L","subkey":null,"checksum":1,"data":"{\"description\":\"server\"}"}]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
    );
    assert!(out.is_empty());
    assert_eq!(h.todos(), ["L|local|NULL"]);
    assert_eq!(h.uploaded(4), ["synced"]);
    assert_eq!(h.todos(), ["L|server|NULL"]);
}

/// A definitively rejected local write is dropped from the queue; the next published checkpoint
/// re-evaluates the row, so the server's state replaces the rejected write.
#[test]
fn rejected_local_write_is_replaced_by_server_state() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b[]","checksum":1,"count":1,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"server\"}"}]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
    );
    h.write("UPDATE todos SET description = 'rejected' WHERE id = 'T1'; INSERT INTO todos(id, description) VALUES ('T2', 'also rejected')");
    assert_eq!(h.todos(), ["T1|rejected|NULL", "T2|also rejected|NULL"]);
    h.uploaded(2);
    let out = h.feed(
        r#"{"checkpoint_diff":{"last_op_id":"1","write_checkpoint":"2","updated_buckets":[],"removed_buckets":[]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert_eq!(h.todos(), ["T1|server|NULL"]);
}

/// Two source rows with one id in one bucket are told apart by subkey; removing one keeps the
/// other.
#[test]
fn subkeys_keep_rows_of_one_bucket_apart() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"3","buckets":[{"bucket":"b[]","checksum":6,"count":3,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"3","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T","subkey":"s1","checksum":1,"data":"{\"description\":\"s1\"}"},{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T","subkey":"s2","checksum":2,"data":"{\"description\":\"s2\"}"},{"op_id":"3","op":"REMOVE","object_type":"todos","object_id":"T","subkey":"s2","checksum":3,"data":null}]}}
{"checkpoint_complete":{"last_op_id":"3"}}"#,
    );
    assert_eq!(h.todos(), ["T|s1|NULL"]);
}

/// Lines out of order are protocol violations that close the stream; unknown line types are
/// ignored; keepalives ask for credentials in time.
#[test]
fn out_of_order_unknown_and_keepalive_lines() {
    let mut h = Harness::new();
    h.start();
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"1"}}"#),
        ["close: sync protocol violation: a completion line for checkpoint 1 arrived before any checkpoint line"]
    );
    assert_eq!(
        h.feed(r#"{"checkpoint_diff":{"last_op_id":"2","updated_buckets":[],"removed_buckets":[]}}"#),
        ["close: sync protocol violation: a checkpoint_diff line arrived before any checkpoint line"]
    );
    assert!(h.feed(r#"{"some_future_line":{"x":1}}"#).is_empty());
    h.feed(r#"{"checkpoint":{"last_op_id":"3","buckets":[]}}"#);
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"2"}}"#),
        ["close: sync protocol violation: a completion line names checkpoint 2, but the current checkpoint is 3"]
    );
    assert_eq!(
        h.feed(r#"{"checkpoint_complete":{"last_op_id":"3"}}"#),
        ["synced"]
    );
    assert!(h.feed(r#"{"token_expires_in":3600}"#).is_empty());
    assert_eq!(
        h.feed(r#"{"token_expires_in":30}"#),
        ["fetch_credentials expired=false"]
    );
    assert!(
        h.feed(r#"{"token_expires_in":10}"#).is_empty(),
        "asked once"
    );
    assert_eq!(
        h.feed(r#"{"token_expires_in":0}"#),
        ["fetch_credentials expired=true", "close"]
    );
}

/// Progress counts ops per priority, cumulatively, from the checkpoint's counts.
#[test]
fn progress_is_reported_per_priority() {
    let mut h = Harness::new();
    h.start();
    h.feed(
        r#"{"checkpoint":{"last_op_id":"3","buckets":[{"bucket":"hi[]","checksum":1,"count":1,"priority":1},{"bucket":"lo[]","checksum":5,"count":2,"priority":3}]}}
{"data":{"bucket":"hi[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"A","subkey":null,"checksum":1,"data":"{}"}]}}"#,
    );
    let status = h.sm.status().clone();
    assert!(status.downloading);
    let progress = status.progress.unwrap();
    let p = |n| ferry_protocol::BucketPriority::new(n).unwrap();
    assert_eq!(progress.until_priority(p(1)), (1, 1));
    assert_eq!(progress.overall(), (1, 3));
    h.feed(
        r#"{"partial_checkpoint_complete":{"last_op_id":"3","priority":1}}
{"data":{"bucket":"lo[]","after":"0","next_after":"3","has_more":false,"data":[{"op_id":"2","op":"PUT","object_type":"todos","object_id":"B","subkey":null,"checksum":2,"data":"{}"},{"op_id":"3","op":"PUT","object_type":"todos","object_id":"C","subkey":null,"checksum":3,"data":"{}"}]}}"#,
    );
    assert_eq!(h.sm.status().progress.clone().unwrap().overall(), (2, 2));
    h.feed(r#"{"checkpoint_complete":{"last_op_id":"3"}}"#);
    assert!(!h.sm.status().downloading);
}

/// Rows of a type without a table are kept in `ferry_untyped` and appear when the table is
/// added to the schema.
#[test]
fn untyped_rows_appear_when_their_table_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let writer = open_writer(Some(&path), &schema()).unwrap();
        let mut h = Harness {
            sm: SyncStateMachine::new(writer.client_id.clone(), &schema(), None),
            writer,
        };
        h.start();
        h.feed(
            r#"{"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b[]","checksum":1,"count":1,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"1","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"notes","object_id":"N1","subkey":null,"checksum":1,"data":"{\"body\":\"hello\"}"}]}}
{"checkpoint_complete":{"last_op_id":"1"}}"#,
        );
    }
    let mut with_notes = schema();
    with_notes.tables.push(Table::new("notes").text("body"));
    let writer = open_writer(Some(&path), &with_notes).unwrap();
    let body: String = writer
        .conn
        .query_row("SELECT body FROM notes WHERE id = 'N1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, "hello");
}

/// A client killed while publishing (the transaction never commits) reopens with the previous
/// state published and the downloaded ops still staged; the next stream completes the
/// checkpoint without downloading them again.
#[test]
fn killed_mid_publication_reopens_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let lines = r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":3}]}}
{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"todos","object_id":"T1","subkey":null,"checksum":1,"data":"{\"description\":\"one\"}"},{"op_id":"2","op":"PUT","object_type":"todos","object_id":"T2","subkey":null,"checksum":2,"data":"{\"description\":\"two\"}"}]}}"#;
    {
        let writer = open_writer(Some(&path), &schema()).unwrap();
        let mut h = Harness {
            sm: SyncStateMachine::new(writer.client_id.clone(), &schema(), None),
            writer,
        };
        h.start();
        h.feed(lines);
        // checkpoint_complete is handled, but the process dies before the commit.
        let tx = h.writer.conn.transaction().unwrap();
        let complete =
            ferry_protocol::SyncLine::CheckpointComplete(ferry_protocol::CheckpointComplete {
                last_op_id: ferry_protocol::OpId(2),
            });
        let actions = describe(h.sm.handle(&tx, SyncEvent::Line(complete)).unwrap());
        assert_eq!(actions, ["synced"]);
        let inside: i64 = tx
            .query_row("SELECT count(*) FROM todos", [], |r| r.get(0))
            .unwrap();
        assert_eq!(inside, 2);
        drop(tx); // rolled back, as after a crash
    }
    let writer = open_writer(Some(&path), &schema()).unwrap();
    let mut h = Harness {
        sm: SyncStateMachine::new(writer.client_id.clone(), &schema(), None),
        writer,
    };
    assert!(h.todos().is_empty(), "nothing of the checkpoint is visible");
    assert_eq!(h.start(), ["establish b[]>2"], "staged ops are kept");
    let out = h.feed(
        r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":3,"count":2,"priority":3}]}}
{"checkpoint_complete":{"last_op_id":"2"}}"#,
    );
    assert_eq!(out, ["synced"]);
    assert_eq!(h.todos(), ["T1|one|NULL", "T2|two|NULL"]);
}

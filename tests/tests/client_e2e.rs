//! The client end to end: a real Postgres with the extension and its applier worker, a real
//! gateway on a real port, and `ferry-client` databases on temp SQLite files — in this process,
//! or in a child process (`ferry-client-victim`) that is SIGKILLed mid-checkpoint.
//!
//! Each test starts its own cluster whose applier worker runs for the test's database (as in
//! production: nobody calls `ferry.advance()`), deploys [`RULES`], and starts gateways with the
//! write endpoint on for `lists` and `todos` (row-level security lets each user write only their
//! own rows, [`WRITE_SETUP`]). Clients upload through [`TestConnector`], whose endpoint and
//! tokens a test can change while the client runs; [`FaultProxy`] sits between a client and a
//! gateway to break responses on the wire (503s, garbage lines, cut streams).
//!
//! Every wait has a deadline ([`wait_until`] or [`within`]); nothing sleeps for correctness. The
//! only timed pauses are the moments at which the kill test shoots its victim.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use ferry_client::{
    params, BoxError, Connector, Credentials, CrudTransaction, FerryDatabase, GatewayConnector,
    Row, Schema, SyncOptions, Table, UploadError,
};
use ferry_gateway::Config;
use ferry_tests::ferry_sql::wait_worker_activates;
use ferry_tests::gateway::{self, TestGateway};
use ferry_tests::runner::{run, test};
use ferry_tests::{wait_until, Cluster, ClusterOptions, TestDb};
use futures::{Stream, StreamExt};
use tokio::io::AsyncBufReadExt;

const SCHEMA: &str = "
CREATE TABLE lists (id text PRIMARY KEY, owner_id text NOT NULL, name text NOT NULL);
CREATE TABLE todos (
    id          text PRIMARY KEY,
    list_id     text NOT NULL,
    owner_id    text NOT NULL,
    description text NOT NULL,
    completed   boolean NOT NULL DEFAULT false,
    weight      double precision,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE list_members (id text PRIMARY KEY, list_id text NOT NULL, user_id text NOT NULL);
";

/// The write endpoint's role may write each user's own lists and todos; every write to `todos`
/// is also recorded in `todo_audit` (by a trigger), so a test can count how often an upload was
/// applied.
const WRITE_SETUP: &str = "
GRANT SELECT, INSERT, UPDATE, DELETE ON lists, todos TO ferry_writer;
ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_lists ON lists
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
CREATE POLICY own_todos ON todos
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
CREATE TABLE todo_audit (seq bigserial PRIMARY KEY, op text NOT NULL, todo_id text NOT NULL,
                         description text);
CREATE FUNCTION audit_todo() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
    INSERT INTO todo_audit(op, todo_id, description)
    VALUES (TG_OP, COALESCE(NEW.id, OLD.id), CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.description END);
    RETURN NULL;
END $$;
CREATE TRIGGER todos_audit AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION audit_todo();
";

/// u1 owns L1 (T1, T2), u2 owns L2 (T3) and is a member of L1, u3 owns L3 (T4).
const SEED: &str = "
INSERT INTO lists VALUES ('L1', 'u1', 'Groceries'), ('L2', 'u2', 'Work'), ('L3', 'u3', 'Secret');
INSERT INTO todos (id, list_id, owner_id, description, completed, weight) VALUES
    ('T1', 'L1', 'u1', 'milk', false, 1.5),
    ('T2', 'L1', 'u1', 'eggs', true, NULL),
    ('T3', 'L2', 'u2', 'report', false, 2),
    ('T4', 'L3', 'u3', 'hidden', false, 0);
INSERT INTO list_members VALUES ('M1', 'L1', 'u2');
";

/// Each user's own lists and todos, plus the lists (and their todos) they are a member of.
const RULES: &str = "
bucket_definitions:
  own:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
  shared:
    parameters: SELECT list_id FROM list_members WHERE user_id = request.user_id()
    data:
      - SELECT * FROM lists WHERE id = bucket.list_id
      - SELECT * FROM todos WHERE list_id = bucket.list_id
";

/// What a user's device should hold: the rows of the buckets the rules give them.
const USER_TODOS: &str = "SELECT id, list_id, owner_id, description, completed::int::int8, weight
    FROM todos
    WHERE owner_id = $1 OR list_id IN (SELECT list_id FROM list_members WHERE user_id = $1)
    ORDER BY id COLLATE \"C\"";
const USER_LISTS: &str = "SELECT id, owner_id, name FROM lists
    WHERE owner_id = $1 OR id IN (SELECT list_id FROM list_members WHERE user_id = $1)
    ORDER BY id COLLATE \"C\"";
const LOCAL_TODOS: &str =
    "SELECT id, list_id, owner_id, description, completed, weight FROM todos ORDER BY id";
const LOCAL_LISTS: &str = "SELECT id, owner_id, name FROM lists ORDER BY id";

/// How long a small change may take to travel Postgres → applier → gateway → client (or back).
const CONVERGE: Duration = Duration::from_secs(60);
/// How long a sync of the large data set may take.
const LARGE_SYNC: Duration = Duration::from_secs(600);

/// Panics anywhere in this process (the client's background tasks included): must stay 0.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    run(vec![
        test(
            "initial_sync_brings_only_the_users_buckets_with_typed_columns",
            initial_sync_brings_only_the_users_buckets_with_typed_columns,
        ),
        test(
            "live_changes_arrive_and_watch_reruns_once_per_transaction",
            live_changes_arrive_and_watch_reruns_once_per_transaction,
        ),
        test(
            "offline_writes_are_queued_then_uploaded_once_to_a_new_endpoint",
            offline_writes_are_queued_then_uploaded_once_to_a_new_endpoint,
        ),
        test(
            "rejected_uploads_are_dropped_and_the_servers_state_replaces_them",
            rejected_uploads_are_dropped_and_the_servers_state_replaces_them,
        ),
        test(
            "two_clients_editing_one_row_converge_to_the_backends_last_write",
            two_clients_editing_one_row_converge_to_the_backends_last_write,
        ),
        test(
            "losing_access_to_a_bucket_removes_its_rows_locally",
            losing_access_to_a_bucket_removes_its_rows_locally,
        ),
        test(
            "redeployed_rules_switch_buckets_without_rows_flickering",
            redeployed_rules_switch_buckets_without_rows_flickering,
        ),
        test(
            "client_killed_while_applying_a_checkpoint_reopens_consistent",
            client_killed_while_applying_a_checkpoint_reopens_consistent,
        ),
        test(
            "http_errors_and_expired_tokens_are_retried_and_converge",
            http_errors_and_expired_tokens_are_retried_and_converge,
        ),
        test(
            "broken_responses_on_the_wire_are_retried_and_converge",
            broken_responses_on_the_wire_are_retried_and_converge,
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// Fixture: a cluster whose worker serves the test's database, rules active, gateways.

/// The client's view of [`SCHEMA`]: `created_at` is left out (it still travels in the row JSON).
fn client_schema() -> Schema {
    Schema::new(vec![
        Table::new("lists").text("owner_id").text("name"),
        Table::new("todos")
            .text("list_id")
            .text("owner_id")
            .text("description")
            .integer("completed")
            .real("weight"),
    ])
}

/// Fast retries, so that tests spend their time on outcomes rather than backoff.
fn sync_options() -> SyncOptions {
    SyncOptions {
        retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_secs(1),
        ..SyncOptions::default()
    }
}

/// A [`TestDb`] whose cluster runs an applier worker for it. Before the database is dropped,
/// connections to it are disallowed, so that the worker, terminated by the cleanup, cannot
/// reconnect in between and make `DROP DATABASE` fail.
struct WorkerDb(TestDb);

impl std::ops::Deref for WorkerDb {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl Drop for WorkerDb {
    fn drop(&mut self) {
        let sql = format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            self.0.name()
        );
        let result = self
            .0
            .cluster()
            .with_sync_client("postgres", move |c| Ok(c.batch_execute(&sql)?));
        if let Err(e) = result {
            eprintln!("warning: closing database {}: {e:#}", self.0.name());
        }
    }
}

/// A database `<prefix>_<pid>` on a cluster of its own whose applier worker serves it, with
/// [`SCHEMA`], [`WRITE_SETUP`], `seed`, and [`RULES`] active. The cluster goes with the database.
async fn database(prefix: &str, seed: &str) -> anyhow::Result<WorkerDb> {
    let name = format!("{prefix}_{}", std::process::id());
    let cluster = tokio::task::spawn_blocking({
        let name = name.clone();
        move || {
            Cluster::start(ClusterOptions {
                worker_databases: vec![name],
            })
        }
    })
    .await??;
    let db = WorkerDb(TestDb::create_named(Arc::new(cluster), &name).await?);
    db.exec(SCHEMA).await?;
    db.exec(WRITE_SETUP).await?;
    db.exec(seed).await?;
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?
        .get(0);
    wait_worker_activates(&db, version, LARGE_SYNC).await?;
    Ok(db)
}

/// A gateway for `db` with `lists` and `todos` writable, on `listen` if given (else port 0).
async fn start_gateway(db: &TestDb, listen: Option<SocketAddr>) -> anyhow::Result<TestGateway> {
    start_gateway_with(db, listen, |_| {}).await
}

async fn start_gateway_with(
    db: &TestDb,
    listen: Option<SocketAddr>,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<TestGateway> {
    TestGateway::start_with(db, |c| {
        c.write.tables = [("lists", "public.lists"), ("todos", "public.todos")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(addr) = listen {
            c.listen = addr;
        }
        adjust(c);
    })
    .await
}

fn endpoint(gateway: &TestGateway) -> String {
    gateway.url("")
}

/// Runs `future` with a deadline.
async fn within<T>(
    what: &str,
    timeout: Duration,
    future: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"))
}

// ---------------------------------------------------------------------------------------------
// A connector whose endpoint and tokens the test controls.

struct ConnectorState {
    endpoint: String,
    /// Where uploads go instead of `endpoint`, if set.
    upload_endpoint: Option<String>,
    /// Tokens handed out by `fetch_credentials`, in order; the last one is handed out forever.
    tokens: VecDeque<String>,
    fetches: usize,
    uploads: usize,
    /// Uploads go to `{endpoint}/api/crud` with the newest token handed out (or the last one of
    /// the list before any was).
    upload_token: String,
    gateway: Option<(String, String, GatewayConnector)>,
}

/// A [`Connector`] over the gateway's write endpoint whose endpoint and tokens can change while
/// the client runs, and which counts credential fetches and successful uploads.
#[derive(Clone)]
struct TestConnector {
    state: Arc<Mutex<ConnectorState>>,
}

impl TestConnector {
    fn new(endpoint: &str, tokens: Vec<String>) -> TestConnector {
        let upload_token = tokens.last().cloned().unwrap_or_default();
        TestConnector {
            state: Arc::new(Mutex::new(ConnectorState {
                endpoint: endpoint.to_owned(),
                upload_endpoint: None,
                tokens: tokens.into(),
                fetches: 0,
                uploads: 0,
                upload_token,
                gateway: None,
            })),
        }
    }

    /// A connector for `user` with an hour-long token.
    fn for_user(endpoint: &str, user: &str) -> TestConnector {
        TestConnector::new(endpoint, vec![gateway::token(user)])
    }

    fn lock(&self) -> MutexGuard<'_, ConnectorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Uploads go to `endpoint`'s write endpoint from now on, whatever the sync endpoint is.
    fn set_upload_endpoint(&self, endpoint: &str) {
        self.lock().upload_endpoint = Some(endpoint.to_owned());
    }

    fn set_endpoint(&self, endpoint: &str) {
        self.lock().endpoint = endpoint.to_owned();
    }

    fn fetches(&self) -> usize {
        self.lock().fetches
    }

    fn uploads(&self) -> usize {
        self.lock().uploads
    }
}

impl Connector for TestConnector {
    async fn fetch_credentials(&self) -> Result<Credentials, BoxError> {
        let mut state = self.lock();
        state.fetches += 1;
        let token = if state.tokens.len() > 1 {
            state.tokens.pop_front()
        } else {
            state.tokens.front().cloned()
        }
        .ok_or("the test connector has no token")?;
        state.upload_token.clone_from(&token);
        Ok(Credentials {
            endpoint: state.endpoint.clone(),
            token,
        })
    }

    async fn upload(&self, transaction: &CrudTransaction) -> Result<(), UploadError> {
        let gateway = {
            let mut state = self.lock();
            let endpoint = state
                .upload_endpoint
                .clone()
                .unwrap_or_else(|| state.endpoint.clone());
            let token = state.upload_token.clone();
            match &state.gateway {
                Some((e, t, g)) if *e == endpoint && *t == token => g.clone(),
                _ => {
                    let g = GatewayConnector::new(&endpoint, &token).with_gateway_write_endpoint();
                    state.gateway = Some((endpoint, token, g.clone()));
                    g
                }
            }
        };
        let result = gateway.upload(transaction).await;
        if result.is_ok() {
            self.lock().uploads += 1;
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing a device with Postgres.

#[derive(Debug, Clone, PartialEq)]
struct Todo {
    id: String,
    list_id: String,
    owner_id: String,
    description: String,
    completed: i64,
    weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct List {
    id: String,
    owner_id: String,
    name: String,
}

fn todo_from(row: &Row) -> anyhow::Result<Todo> {
    Ok(Todo {
        id: row.get(0)?,
        list_id: row.get(1)?,
        owner_id: row.get(2)?,
        description: row.get(3)?,
        completed: row.get(4)?,
        weight: row.get(5)?,
    })
}

async fn local_todos(db: &FerryDatabase) -> anyhow::Result<Vec<Todo>> {
    db.query(LOCAL_TODOS, ())
        .await?
        .iter()
        .map(todo_from)
        .collect()
}

async fn local_lists(db: &FerryDatabase) -> anyhow::Result<Vec<List>> {
    db.query(LOCAL_LISTS, ())
        .await?
        .iter()
        .map(|r| {
            Ok(List {
                id: r.get(0)?,
                owner_id: r.get(1)?,
                name: r.get(2)?,
            })
        })
        .collect()
}

async fn server_todos(pg: &TestDb, user: &str) -> anyhow::Result<Vec<Todo>> {
    Ok(pg
        .query(USER_TODOS, &[&user])
        .await?
        .iter()
        .map(|r| Todo {
            id: r.get(0),
            list_id: r.get(1),
            owner_id: r.get(2),
            description: r.get(3),
            completed: r.get(4),
            weight: r.get(5),
        })
        .collect())
}

async fn server_lists(pg: &TestDb, user: &str) -> anyhow::Result<Vec<List>> {
    Ok(pg
        .query(USER_LISTS, &[&user])
        .await?
        .iter()
        .map(|r| List {
            id: r.get(0),
            owner_id: r.get(1),
            name: r.get(2),
        })
        .collect())
}

fn ids(todos: &[Todo]) -> Vec<&str> {
    todos.iter().map(|t| t.id.as_str()).collect()
}

/// Waits until `db` holds exactly what the rules give `user` in Postgres, with nothing left to
/// upload.
async fn converged(db: &FerryDatabase, pg: &TestDb, user: &str) -> anyhow::Result<()> {
    let result = wait_until("the client to converge to Postgres", CONVERGE, || async {
        let same = db.upload_queue_len().await? == 0
            && local_todos(db).await? == server_todos(pg, user).await?
            && local_lists(db).await? == server_lists(pg, user).await?;
        Ok(same.then_some(()))
    })
    .await;
    if let Err(e) = result {
        bail!(
            "{e:#}\nlocal todos:  {:?}\nserver todos: {:?}\nlocal lists:  {:?}\nserver lists: {:?}\nstatus: {:?}",
            local_todos(db).await?,
            server_todos(pg, user).await?,
            local_lists(db).await?,
            server_lists(pg, user).await?,
            db.status()
        );
    }
    Ok(())
}

/// Opens a database in `dir`, connects it for `user` through `gateway` and waits for its first
/// sync.
async fn synced_client(
    dir: &Path,
    file: &str,
    gateway: &TestGateway,
    user: &str,
) -> anyhow::Result<(FerryDatabase, TestConnector)> {
    let db = FerryDatabase::open(dir.join(file), client_schema())?;
    let connector = TestConnector::for_user(&endpoint(gateway), user);
    db.connect(connector.clone(), sync_options()).await?;
    within("the first sync", CONVERGE, db.wait_for_first_sync()).await?;
    Ok((db, connector))
}

/// Every distinct download and upload error a client's status showed, collected in the
/// background.
#[derive(Clone, Default)]
struct StatusLog {
    errors: Arc<Mutex<Vec<String>>>,
}

impl StatusLog {
    fn watch(db: &FerryDatabase) -> StatusLog {
        let log = StatusLog::default();
        let errors = log.errors.clone();
        let mut statuses = Box::pin(db.status_stream());
        tokio::spawn(async move {
            while let Some(status) = statuses.next().await {
                let mut errors = errors.lock().unwrap_or_else(PoisonError::into_inner);
                for e in [&status.download_error, &status.upload_error]
                    .into_iter()
                    .flatten()
                {
                    if errors.last() != Some(e) {
                        errors.push(e.clone());
                    }
                }
            }
        });
        log
    }

    fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn any(&self, needle: &str) -> bool {
        self.any_since(0, needle)
    }

    /// Whether an error after the first `skip` ones contains `needle`.
    fn any_since(&self, skip: usize, needle: &str) -> bool {
        self.errors().iter().skip(skip).any(|e| e.contains(needle))
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Initial sync.

async fn initial_sync_brings_only_the_users_buckets_with_typed_columns() -> anyhow::Result<()> {
    let pg = database("ce_initial", SEED).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;

    let db = FerryDatabase::open(dir.path().join("u1.db"), client_schema())?;
    ensure!(!db.status().has_synced(), "a new file has never synced");
    db.connect(
        TestConnector::for_user(&endpoint(&gw), "u1"),
        sync_options(),
    )
    .await?;
    within("the first sync", CONVERGE, db.wait_for_first_sync()).await?;
    let status = db.status();
    ensure!(
        status.connected && status.download_error.is_none() && status.last_synced_at.is_some(),
        "{status:?}"
    );

    // u1 gets its own list and todos only.
    let todos = local_todos(&db).await?;
    ensure!(ids(&todos) == ["T1", "T2"], "{todos:?}");
    ensure!(local_lists(&db).await? == server_lists(&pg, "u1").await?);
    ensure!(todos == server_todos(&pg, "u1").await?);
    ensure!(
        todos[0]
            == Todo {
                id: "T1".into(),
                list_id: "L1".into(),
                owner_id: "u1".into(),
                description: "milk".into(),
                completed: 0,
                weight: Some(1.5),
            },
        "{todos:?}"
    );
    // Typed columns: a boolean arrives as an integer, a double as a real, a NULL as NULL; a
    // Postgres column outside the client schema is not a column of the view.
    let types = db
        .query(
            "SELECT typeof(completed), typeof(weight), typeof(description), typeof(id) \
             FROM todos ORDER BY id",
            (),
        )
        .await?;
    let types: Vec<Vec<String>> = types
        .iter()
        .map(|r| (0..4).map(|i| r.get::<String>(i)).collect())
        .collect::<Result<_, _>>()?;
    ensure!(
        types
            == [
                ["integer", "real", "text", "text"],
                ["integer", "null", "text", "text"]
            ],
        "{types:?}"
    );
    let t2 = &todos[1];
    ensure!(t2.completed == 1 && t2.weight.is_none(), "{t2:?}");
    ensure!(
        db.query("SELECT created_at FROM todos", ()).await.is_err(),
        "created_at is not in the client schema"
    );

    // u2 gets its own list plus the list it is a member of, from a second file and connection.
    let (db2, _) = synced_client(dir.path(), "u2.db", &gw, "u2").await?;
    let todos2 = local_todos(&db2).await?;
    ensure!(ids(&todos2) == ["T1", "T2", "T3"], "{todos2:?}");
    ensure!(todos2 == server_todos(&pg, "u2").await?);
    ensure!(local_lists(&db2).await? == server_lists(&pg, "u2").await?);
    db2.disconnect().await;

    // The sync state persists: reopened, the file has synced without connecting.
    db.disconnect().await;
    drop(db);
    let reopened = FerryDatabase::open(dir.path().join("u1.db"), client_schema())?;
    ensure!(reopened.status().has_synced());
    within(
        "wait_for_first_sync on a synced file",
        Duration::from_secs(1),
        reopened.wait_for_first_sync(),
    )
    .await?;
    ensure!(local_todos(&reopened).await? == todos);
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Live updates.

type Results = std::pin::Pin<Box<dyn Stream<Item = ferry_client::Result<Vec<Row>>> + Send>>;

/// The next result of a watched query, as (id, description, completed) triples.
async fn next_result(watch: &mut Results) -> anyhow::Result<Vec<(String, String, i64)>> {
    let rows = within("the watched query to re-run", CONVERGE, watch.next())
        .await?
        .context("the watch ended")??;
    rows.iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .collect()
}

/// (id, description, completed) of an expected result.
type Triple<'a> = (&'a str, &'a str, i64);

fn triples(list: &[Triple]) -> Vec<(String, String, i64)> {
    list.iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), *c))
        .collect()
}

async fn live_changes_arrive_and_watch_reruns_once_per_transaction() -> anyhow::Result<()> {
    let pg = database("ce_live", SEED).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (db, _) = synced_client(dir.path(), "u1.db", &gw, "u1").await?;

    let mut watch: Results = Box::pin(db.watch(
        "SELECT id, description, completed FROM todos ORDER BY id",
        (),
    ));
    ensure!(next_result(&mut watch).await? == triples(&[("T1", "milk", 0), ("T2", "eggs", 1)]));

    // One Postgres transaction inserting, updating and deleting: one re-run, showing all of it.
    pg.exec(
        "BEGIN;
         INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T5', 'L1', 'u1', 'bread');
         UPDATE todos SET description = 'oat milk', completed = true WHERE id = 'T1';
         DELETE FROM todos WHERE id = 'T2';
         COMMIT;",
    )
    .await?;
    let after = next_result(&mut watch).await?;
    ensure!(
        after == triples(&[("T1", "oat milk", 1), ("T5", "bread", 0)]),
        "the first re-run after one transaction must show all of it: {after:?}"
    );

    // One change per transaction: each is one re-run, in order.
    let steps: [(&str, &[Triple]); 3] = [
        (
            "INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T6', 'L1', 'u1', 'jam')",
            &[("T1", "oat milk", 1), ("T5", "bread", 0), ("T6", "jam", 0)],
        ),
        (
            "UPDATE todos SET description = 'apricot jam' WHERE id = 'T6'",
            &[("T1", "oat milk", 1), ("T5", "bread", 0), ("T6", "apricot jam", 0)],
        ),
        (
            "DELETE FROM todos WHERE id = 'T5'",
            &[("T1", "oat milk", 1), ("T6", "apricot jam", 0)],
        ),
    ];
    for (sql, expected) in steps {
        pg.exec(sql).await?;
        let result = next_result(&mut watch).await?;
        ensure!(result == triples(expected), "after {sql}: {result:?}");
    }

    // Changes outside u1's buckets re-run nothing: the next re-run is the one for the sentinel
    // change after them, not a repeat of the last result.
    pg.exec("UPDATE todos SET description = 'quarterly report' WHERE id = 'T3'")
        .await?;
    pg.exec("INSERT INTO lists VALUES ('L9', 'u1', 'Later')")
        .await?;
    pg.exec("UPDATE todos SET completed = false WHERE id = 'T1'")
        .await?;
    let result = next_result(&mut watch).await?;
    ensure!(
        result == triples(&[("T1", "oat milk", 0), ("T6", "apricot jam", 0)]),
        "a re-run without a change of todos: {result:?}"
    );
    converged(&db, &pg, "u1").await?;
    ensure!(local_lists(&db).await?.iter().any(|l| l.id == "L9"));
    db.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Offline writes.

/// How often each kind of write to `todo_id` was applied in Postgres (`INSERT`, `UPDATE`,
/// `DELETE`), after audit entry `after`.
async fn applied(pg: &TestDb, todo_id: &str, after: i64) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(pg
        .query(
            "SELECT op, count(*) FROM todo_audit WHERE todo_id = $1 AND seq > $2 GROUP BY op ORDER BY op",
            &[&todo_id, &after],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

fn counts(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect()
}

async fn offline_writes_are_queued_then_uploaded_once_to_a_new_endpoint() -> anyhow::Result<()> {
    let pg = database("ce_offline", SEED).await?;
    let first = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (db, connector) = synced_client(dir.path(), "u1.db", &first, "u1").await?;
    let status_log = StatusLog::watch(&db);

    // The gateway goes away; the client notices.
    let first_addr = first.addr();
    first.shutdown().await;
    within(
        "the client to report the lost connection",
        CONVERGE,
        db.wait_for_status(|s| !s.connected && s.download_error.is_some()),
    )
    .await?;

    // Offline writes show at once and are queued.
    let audit_start: i64 = pg
        .query_one("SELECT COALESCE(max(seq), 0) FROM todo_audit", &[])
        .await?
        .get(0);
    db.transaction(|tx| {
        tx.execute(
            "INSERT INTO todos (id, list_id, owner_id, description, completed) \
             VALUES ('T10', 'L1', 'u1', 'offline 1', 0)",
            [],
        )?;
        tx.execute(
            "INSERT INTO todos (id, list_id, owner_id, description, completed) \
             VALUES ('T11', 'L1', 'u1', 'offline 2', 0)",
            [],
        )?;
        Ok(())
    })
    .await?;
    db.execute(
        "UPDATE todos SET description = ?1 WHERE id = 'T1'",
        params!["milk (offline)"],
    )
    .await?;
    db.execute("DELETE FROM todos WHERE id = 'T2'", ()).await?;
    db.execute(
        "INSERT INTO todos (id, list_id, owner_id, description, completed) \
         VALUES ('T12', 'L1', 'u1', 'offline 3', 0)",
        (),
    )
    .await?;
    db.execute("UPDATE todos SET completed = 1 WHERE id = 'T12'", ())
        .await?;
    let local = local_todos(&db).await?;
    ensure!(
        ids(&local) == ["T1", "T10", "T11", "T12"]
            && local[0].description == "milk (offline)"
            && local[3].completed == 1,
        "{local:?}"
    );
    ensure!(db.upload_queue_len().await? == 6);
    within(
        "the status to show the queue",
        CONVERGE,
        db.wait_for_status(|s| s.upload_queue_len == 6),
    )
    .await?;
    // Meanwhile the backend changes things too.
    pg.exec(
        "UPDATE todos SET weight = 9.5 WHERE id = 'T1';
         INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T13', 'L1', 'u1', 'from the server');",
    )
    .await?;
    ensure!(
        applied(&pg, "T10", audit_start).await?.is_empty(),
        "nothing can be uploaded while the gateway is down"
    );
    ensure!(db.upload_queue_len().await? == 6, "nothing is lost");

    // A gateway comes back on another port; the app's connector now points there.
    let fetches_before = connector.fetches();
    let second = start_gateway(&pg, None).await?;
    ensure!(second.addr() != first_addr, "a new endpoint");
    connector.set_endpoint(&endpoint(&second));
    converged(&db, &pg, "u1").await?;
    ensure!(
        connector.fetches() > fetches_before,
        "the client fetched credentials again to reach the new endpoint"
    );
    ensure!(connector.uploads() == 5, "five local transactions uploaded");

    // Each write was applied exactly once, and the backend's own changes were kept.
    ensure!(applied(&pg, "T10", audit_start).await? == counts(&[("INSERT", 1)]));
    ensure!(applied(&pg, "T11", audit_start).await? == counts(&[("INSERT", 1)]));
    ensure!(applied(&pg, "T12", audit_start).await? == counts(&[("INSERT", 1), ("UPDATE", 1)]));
    ensure!(
        applied(&pg, "T1", audit_start).await? == counts(&[("UPDATE", 2)]),
        "one update by the backend, one upload"
    );
    ensure!(applied(&pg, "T2", audit_start).await? == counts(&[("DELETE", 1)]));
    let local = local_todos(&db).await?;
    ensure!(
        ids(&local) == ["T1", "T10", "T11", "T12", "T13"]
            && local[0].description == "milk (offline)"
            && local[0].weight == Some(9.5),
        "the client's and the backend's changes of T1 both hold: {local:?}"
    );
    ensure!(
        status_log.any("connect") || status_log.any("network"),
        "the outage was reported: {:?}",
        status_log.errors()
    );
    let status = db.status();
    ensure!(
        status.upload_error.is_none() && status.download_error.is_none(),
        "{status:?}"
    );
    db.disconnect().await;
    second.shutdown().await;
    Ok(())
}

/// Writes the backend refuses for good (403 from row-level security, 422 for a value Postgres
/// cannot take) are dropped from the queue, the writes around them still go through, and the
/// refused rows disappear locally once the server's state is published.
async fn rejected_uploads_are_dropped_and_the_servers_state_replaces_them() -> anyhow::Result<()> {
    let pg = database("ce_rejected", SEED).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (db, connector) = synced_client(dir.path(), "u1.db", &gw, "u1").await?;
    let audit_start: i64 = pg
        .query_one("SELECT COALESCE(max(seq), 0) FROM todo_audit", &[])
        .await?
        .get(0);
    // Someone else's todo (RLS refuses it), a good update, a value that is no boolean.
    db.execute(
        "INSERT INTO todos (id, list_id, owner_id, description, completed) \
         VALUES ('T20', 'L1', 'u2', 'not mine to write', 0)",
        (),
    )
    .await?;
    db.execute("UPDATE todos SET description = 'kept' WHERE id = 'T1'", ())
        .await?;
    db.execute(
        "INSERT INTO todos (id, list_id, owner_id, description, completed) \
         VALUES ('T21', 'L1', 'u1', 'bad value', 'maybe')",
        (),
    )
    .await?;
    ensure!(local_ids(&db).await? == ["T1", "T2", "T20", "T21"]);
    converged(&db, &pg, "u1").await?;
    ensure!(ids(&local_todos(&db).await?) == ["T1", "T2"]);
    ensure!(local_todos(&db).await?[0].description == "kept");
    ensure!(connector.uploads() == 1, "one upload accepted");
    ensure!(applied(&pg, "T1", audit_start).await? == counts(&[("UPDATE", 1)]));
    ensure!(applied(&pg, "T20", audit_start).await?.is_empty());
    ensure!(applied(&pg, "T21", audit_start).await?.is_empty());
    let error = db.status().upload_error.unwrap_or_default();
    ensure!(
        error.contains("rejected") && error.contains("422"),
        "the last rejection shows in the status: {error}"
    );
    db.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

/// The ids of the local todos (whatever their other columns hold).
async fn local_ids(db: &FerryDatabase) -> anyhow::Result<Vec<String>> {
    db.query("SELECT id FROM todos ORDER BY id", ())
        .await?
        .iter()
        .map(|r| Ok(r.get(0)?))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 4. Two clients, one row.

/// T1's description and completed flag in Postgres.
async fn t1(pg: &TestDb) -> anyhow::Result<(String, i64)> {
    let row = pg
        .query_one(
            "SELECT description, completed::int::int8 FROM todos WHERE id = 'T1'",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn two_clients_editing_one_row_converge_to_the_backends_last_write() -> anyhow::Result<()> {
    let pg = database("ce_two", SEED).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (a, a_connector) = synced_client(dir.path(), "a.db", &gw, "u1").await?;
    let (b, _) = synced_client(dir.path(), "b.db", &gw, "u1").await?;
    // Different columns of one row, at the same time: both patches hold.
    let (ra, rb) = tokio::join!(
        a.execute(
            "UPDATE todos SET description = 'from a' WHERE id = 'T1'",
            ()
        ),
        b.execute("UPDATE todos SET completed = 1 WHERE id = 'T1'", ()),
    );
    ra?;
    rb?;
    converged(&a, &pg, "u1").await?;
    converged(&b, &pg, "u1").await?;
    ensure!(t1(&pg).await? == ("from a".to_owned(), 1));

    // The same column, in a known order: a writes offline, b writes online and is applied, then
    // a reconnects and its older edit reaches the backend last — so it wins everywhere. a never
    // shows b's value meanwhile (the write gate holds downloads back until a's upload is in).
    a.disconnect().await;
    a.execute(
        "UPDATE todos SET description = 'a offline' WHERE id = 'T1'",
        (),
    )
    .await?;
    b.execute(
        "UPDATE todos SET description = 'b online' WHERE id = 'T1'",
        (),
    )
    .await?;
    converged(&b, &pg, "u1").await?;
    ensure!(t1(&pg).await?.0 == "b online");
    let seen_by_a = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut a_watch = Box::pin(a.watch("SELECT description FROM todos WHERE id = 'T1'", ()));
    let recorder = {
        let seen = seen_by_a.clone();
        tokio::spawn(async move {
            while let Some(Ok(rows)) = a_watch.next().await {
                if let Some(Ok(d)) = rows.first().map(|r| r.get::<String>(0)) {
                    seen.lock().unwrap_or_else(PoisonError::into_inner).push(d);
                }
            }
        })
    };
    a.connect(a_connector.clone(), sync_options()).await?;
    converged(&a, &pg, "u1").await?;
    converged(&b, &pg, "u1").await?;
    ensure!(t1(&pg).await?.0 == "a offline", "the backend's last write");
    recorder.abort();
    let seen = seen_by_a
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    ensure!(
        seen.first().map(String::as_str) == Some("a offline")
            && !seen.iter().any(|d| d == "b online"),
        "a showed the overwritten value while its own write was pending: {seen:?}"
    );

    // The same column at the same time: whichever the backend applied last wins on both.
    let (ra, rb) = tokio::join!(
        a.execute(
            "UPDATE todos SET description = 'race a' WHERE id = 'T1'",
            ()
        ),
        b.execute(
            "UPDATE todos SET description = 'race b' WHERE id = 'T1'",
            ()
        ),
    );
    ra?;
    rb?;
    converged(&a, &pg, "u1").await?;
    converged(&b, &pg, "u1").await?;
    let winner = t1(&pg).await?.0;
    ensure!(winner == "race a" || winner == "race b", "{winner}");
    let last_applied: String = pg
        .query_one(
            "SELECT description FROM todo_audit WHERE todo_id = 'T1' ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .get(0);
    ensure!(winner == last_applied, "{winner} vs {last_applied}");

    // The backend writes last: both follow.
    pg.exec("UPDATE todos SET description = 'server', completed = false WHERE id = 'T1'")
        .await?;
    converged(&a, &pg, "u1").await?;
    converged(&b, &pg, "u1").await?;
    ensure!(local_todos(&a).await? == local_todos(&b).await?);
    ensure!(local_todos(&a).await?[0].description == "server");
    a.disconnect().await;
    b.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Losing access.

async fn losing_access_to_a_bucket_removes_its_rows_locally() -> anyhow::Result<()> {
    let seed = format!(
        "{SEED}
         INSERT INTO todos (id, list_id, owner_id, description) VALUES ('T9', 'L1', 'u2', 'u2 in the shared list');"
    );
    let pg = database("ce_access", &seed).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (u1, _) = synced_client(dir.path(), "u1.db", &gw, "u1").await?;
    let (u2, _) = synced_client(dir.path(), "u2.db", &gw, "u2").await?;
    ensure!(ids(&local_todos(&u1).await?) == ["T1", "T2"]);
    ensure!(ids(&local_todos(&u2).await?) == ["T1", "T2", "T3", "T9"]);

    // u2 leaves L1: its rows go, except T9, which u2 still has through its own bucket.
    pg.exec("DELETE FROM list_members WHERE id = 'M1'").await?;
    converged(&u2, &pg, "u2").await?;
    ensure!(ids(&local_todos(&u2).await?) == ["T3", "T9"]);
    let lists: Vec<String> = local_lists(&u2).await?.into_iter().map(|l| l.id).collect();
    ensure!(lists == ["L2"], "{lists:?}");

    // T1 changes owner: u1 loses it.
    pg.exec("UPDATE todos SET owner_id = 'u3' WHERE id = 'T1'")
        .await?;
    converged(&u1, &pg, "u1").await?;
    ensure!(ids(&local_todos(&u1).await?) == ["T2"]);

    // And back: u2 joins L1 again and gets its rows, T1 (now u3's) included.
    pg.exec("INSERT INTO list_members VALUES ('M2', 'L1', 'u2')")
        .await?;
    converged(&u2, &pg, "u2").await?;
    ensure!(ids(&local_todos(&u2).await?) == ["T1", "T2", "T3", "T9"]);
    converged(&u1, &pg, "u1").await?;
    u1.disconnect().await;
    u2.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

/// A new rules version is built beside the active one and switched to; the client drops the old
/// version's buckets and downloads the new ones, and its rows never disappear meanwhile.
async fn redeployed_rules_switch_buckets_without_rows_flickering() -> anyhow::Result<()> {
    let pg = database("ce_redeploy", SEED).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let (db, _) = synced_client(dir.path(), "u1.db", &gw, "u1").await?;
    let seen = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let mut watch = Box::pin(db.watch("SELECT id FROM todos ORDER BY id", ()));
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(rows)) = watch.next().await {
                let ids = rows
                    .iter()
                    .filter_map(|r| r.get::<String>(0).ok())
                    .collect();
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(ids);
            }
        })
    };
    let old_version: i64 = pg
        .query_one(
            "SELECT max(id) FROM ferry.sync_rules WHERE state = 'active'",
            &[],
        )
        .await?
        .get(0);

    // A local write in flight during the switch, and the same rules under another bucket name.
    db.execute(
        "UPDATE todos SET description = 'during redeploy' WHERE id = 'T1'",
        (),
    )
    .await?;
    let rules = RULES.replace("  own:", "  mine:");
    let version: i64 = pg
        .query_one("SELECT ferry.deploy_rules($1)", &[&rules])
        .await?
        .get(0);
    ensure!(version != old_version);
    let buckets = |db: &FerryDatabase| {
        let db = db.clone();
        async move {
            let names: Vec<String> = db
                .read(|c| {
                    let mut stmt = c.prepare("SELECT name FROM ferry_buckets ORDER BY name")?;
                    let names = stmt
                        .query_map([], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    Ok(names)
                })
                .await?;
            anyhow::Ok(names)
        }
    };
    let expected = [format!("{version}#mine[\"u1\"]")];
    wait_until(
        "the client to hold the new version's buckets",
        CONVERGE,
        || async { Ok((buckets(&db).await? == expected).then_some(())) },
    )
    .await
    .with_context(|| format!("status: {:?}", db.status()))?;
    converged(&db, &pg, "u1").await?;
    ensure!(local_todos(&db).await?[0].description == "during redeploy");
    pg.exec("UPDATE todos SET description = 'after redeploy' WHERE id = 'T2'")
        .await?;
    converged(&db, &pg, "u1").await?;
    recorder.abort();
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    ensure!(
        !seen.is_empty() && seen.iter().all(|ids| ids == &["T1", "T2"]),
        "the rows stayed visible throughout: {seen:?}"
    );
    db.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Killed mid-checkpoint.

/// Rows of the large data set (all u1's, in L1).
const LARGE_ROWS: i64 = 200_000;

/// A client in a child process, reporting its progress line by line.
struct Victim {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    started: Instant,
}

/// One event a victim reported, with its time since the start.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Progress { done: u64, total: u64 },
    Synced,
    Error(String),
}

impl Victim {
    fn spawn(file: &Path, endpoint: &str, token: &str) -> anyhow::Result<Victim> {
        let schema = serde_json::to_string(&client_schema())?;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry-client-victim"))
            .arg(file)
            .arg(endpoint)
            .arg(token)
            .arg(schema)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting ferry-client-victim")?;
        let stdout = child.stdout.take().context("the victim's stdout")?;
        Ok(Victim {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            started: Instant::now(),
        })
    }

    /// The next event, or `None` when the victim's output ended.
    async fn next(&mut self) -> anyhow::Result<Option<(Duration, Event)>> {
        let Some(line) =
            within("the victim's next line", LARGE_SYNC, self.lines.next_line()).await??
        else {
            return Ok(None);
        };
        let at = self.started.elapsed();
        let mut words = line.split_whitespace();
        let event = match words.next() {
            Some("progress") => {
                let mut n =
                    || -> anyhow::Result<u64> { Ok(words.next().context("a number")?.parse()?) };
                Event::Progress {
                    done: n()?,
                    total: n()?,
                }
            }
            Some("synced") => Event::Synced,
            Some("error") => Event::Error(line["error ".len()..].to_owned()),
            _ => bail!("unexpected line from the victim: {line}"),
        };
        Ok(Some((at, event)))
    }

    /// Reads events until one satisfies `until`; returns it and its time.
    async fn until(&mut self, until: impl Fn(&Event) -> bool) -> anyhow::Result<Duration> {
        while let Some((at, event)) = self.next().await? {
            if until(&event) {
                return Ok(at);
            }
        }
        bail!("the victim's output ended")
    }

    /// SIGKILL (no chance to clean up) and wait for it to be gone.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        within(
            "the victim to die",
            Duration::from_secs(30),
            self.child.wait(),
        )
        .await??;
        Ok(())
    }
}

/// `<file>-wal`.
fn wal_path(db_file: &Path) -> PathBuf {
    let mut wal = db_file.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Follows a SQLite WAL file as a writer appends to it, and tells how many of its frames belong
/// to a transaction that has not committed (yet): the valid frames — salts and checksum chain
/// intact — after the last commit frame. Non-zero means the writer is inside a write transaction
/// that has spilled pages (or is writing its commit); right after a kill, that it died there.
struct WalWatch {
    path: PathBuf,
    /// The generation being followed: the header's salts, and the checksum after the header.
    salts: Option<(u32, u32)>,
    big_endian: bool,
    page_size: usize,
    /// Where the next frame starts, and the checksum chain up to it.
    offset: u64,
    sum: (u32, u32),
    frames: usize,
    committed: usize,
}

impl WalWatch {
    fn new(db_file: &Path) -> WalWatch {
        WalWatch {
            path: wal_path(db_file),
            salts: None,
            big_endian: false,
            page_size: 0,
            offset: 32,
            sum: (0, 0),
            frames: 0,
            committed: 0,
        }
    }

    /// SQLite's `walChecksumBytes`: 32-bit words, in pairs, in the byte order the magic names.
    fn checksum(&self, data: &[u8], mut s: (u32, u32)) -> (u32, u32) {
        for pair in data.chunks_exact(8) {
            let word = |b: &[u8]| {
                let b = [b[0], b[1], b[2], b[3]];
                if self.big_endian {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            s.0 = s.0.wrapping_add(word(&pair[..4])).wrapping_add(s.1);
            s.1 = s.1.wrapping_add(word(&pair[4..])).wrapping_add(s.0);
        }
        s
    }

    /// Reads what was appended since the last call; returns the uncommitted frames.
    fn poll(&mut self) -> anyhow::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let be = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut header = [0u8; 32];
        if file.read_exact(&mut header).is_err() {
            return Ok(0);
        }
        let magic = be(&header, 0);
        ensure!(
            magic & !1 == 0x377f_0682,
            "not a WAL file: magic {magic:#x}"
        );
        let salts = (be(&header, 16), be(&header, 20));
        if self.salts != Some(salts) {
            // A new generation (the log restarted after a checkpoint): follow it from its start.
            self.big_endian = magic & 1 == 1;
            self.page_size = be(&header, 8) as usize;
            let sum = self.checksum(&header[..24], (0, 0));
            if sum != (be(&header, 24), be(&header, 28)) {
                return Ok(0); // The header is being rewritten.
            }
            self.salts = Some(salts);
            self.sum = sum;
            self.offset = 32;
            self.frames = 0;
            self.committed = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let frame_len = 24 + self.page_size;
        for frame in bytes.chunks_exact(frame_len) {
            if (be(frame, 8), be(frame, 12)) != salts {
                break;
            }
            let sum = self.checksum(&frame[24..], self.checksum(&frame[..8], self.sum));
            if sum != (be(frame, 16), be(frame, 20)) {
                break; // Not written completely yet, or left over from an older generation.
            }
            self.sum = sum;
            self.frames += 1;
            if be(frame, 4) != 0 {
                self.committed = self.frames;
            }
            self.offset += frame_len as u64;
        }
        Ok(self.frames - self.committed)
    }
}

/// What a reopened file holds: (lists, todos, todos whose description ends in " v2", staged
/// ops not yet published).
async fn inspect(file: &Path) -> anyhow::Result<(i64, i64, i64, i64)> {
    let db = FerryDatabase::open(file, client_schema())?;
    let check: String = db
        .read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
        .await?;
    ensure!(check == "ok", "integrity_check: {check}");
    let row = db
        .query(
            "SELECT (SELECT count(*) FROM lists), count(*), \
             COALESCE(sum(description LIKE '% v2'), 0), \
             (SELECT count(*) FROM ferry_stage) FROM todos",
            (),
        )
        .await?;
    let row = row.first().context("one row")?;
    let counts = (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    ensure!(
        db.status().has_synced() == (counts.1 > 0),
        "the sync state says synced iff the rows are there: {counts:?}, {:?}",
        db.status()
    );
    Ok(counts)
}

/// The large data set as Postgres has it and as a client file has it, summarised.
async fn summary_pg(pg: &TestDb) -> anyhow::Result<(i64, i64, i64, f64)> {
    let r = pg
        .query_one(
            "SELECT count(*), sum(length(description))::int8, sum(completed::int)::int8, sum(weight) \
             FROM todos WHERE owner_id = 'u1'",
            &[],
        )
        .await?;
    Ok((r.get(0), r.get(1), r.get(2), r.get(3)))
}

async fn summary_local(db: &FerryDatabase) -> anyhow::Result<(i64, i64, i64, f64)> {
    let rows = db
        .query(
            "SELECT count(*), sum(length(description)), sum(completed), sum(weight) FROM todos",
            (),
        )
        .await?;
    let r = rows.first().context("one row")?;
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

/// Reconnects a killed client's file in this process and waits until it holds what Postgres has.
async fn resync(file: &Path, gateway: &TestGateway, pg: &TestDb) -> anyhow::Result<()> {
    let db = FerryDatabase::open(file, client_schema())?;
    db.connect(
        GatewayConnector::new(endpoint(gateway), gateway::token("u1")),
        sync_options(),
    )
    .await?;
    let expected = summary_pg(pg).await?;
    wait_until(
        "the reconnected client to finish the sync",
        LARGE_SYNC,
        || async { Ok((summary_local(&db).await? == expected).then_some(())) },
    )
    .await?;
    db.disconnect().await;
    Ok(())
}

/// When a victim is shot.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Once half the checkpoint's ops have arrived.
    HalfDownloaded,
    /// This fraction of the calibrated time from 95 % downloaded to published after reaching
    /// 95 % (the time the last ops and the publication take).
    Tail(f64),
    /// After 95 %, as soon as the file's WAL shows at least this many frames of a transaction
    /// that has not committed: inside the publication, which spills pages as it goes.
    InFlight(usize),
}

/// Syncs a fresh copy of `base` (or an empty file) in a victim and kills it at several moments
/// of the download and of the publication of the checkpoint; after each kill the reopened file
/// must show the checkpoint entirely or not at all (`consistent` says which counts are allowed).
/// Returns a line per kill for the report.
async fn kill_at_moments(
    label: &str,
    dir: &Path,
    base: Option<&Path>,
    gw: &TestGateway,
    pg: &TestDb,
    consistent: impl Fn((i64, i64, i64, i64)) -> bool,
) -> anyhow::Result<Vec<String>> {
    let fresh = |name: &str| -> anyhow::Result<PathBuf> {
        let file = dir.join(format!("{label}-{name}.db"));
        if let Some(base) = base {
            // Nothing has the base open: its file and WAL together are a consistent copy.
            std::fs::copy(base, &file)?;
            if wal_path(base).exists() {
                std::fs::copy(wal_path(base), wal_path(&file))?;
            }
        }
        Ok(file)
    };
    let token = gateway::token("u1");
    let reached = |percent: u64| {
        move |e: &Event| match e {
            Event::Progress { done, total } => *total > 0 && *done * 100 >= *total * percent,
            Event::Synced => true,
            Event::Error(_) => false,
        }
    };

    // Calibration: how long from 95 % downloaded to published.
    let file = fresh("calibration")?;
    let mut victim = Victim::spawn(&file, &endpoint(gw), &token)?;
    let at_95 = victim.until(reached(95)).await?;
    let at_synced = victim.until(|e| *e == Event::Synced).await?;
    victim.kill().await?;
    let tail = at_synced.saturating_sub(at_95);
    let mut report = vec![format!(
        "{label}: full sync {:.2}s, 95% → published {:.2}s",
        at_synced.as_secs_f64(),
        tail.as_secs_f64()
    )];
    let counts = inspect(&file).await?;
    ensure!(consistent(counts), "{label} calibration: {counts:?}");

    let moments = [
        Moment::HalfDownloaded,
        Moment::InFlight(1),
        Moment::Tail(0.4),
        Moment::InFlight(2000),
        Moment::Tail(0.8),
        Moment::Tail(1.0),
    ];
    let mut inside_a_transaction = 0;
    for (i, moment) in moments.into_iter().enumerate() {
        let file = fresh(&format!("kill{i}"))?;
        let mut wal = WalWatch::new(&file);
        let mut victim = Victim::spawn(&file, &endpoint(gw), &token)?;
        let mut exited = false;
        match moment {
            Moment::HalfDownloaded => {
                victim
                    .until(|e| matches!(e, Event::Progress { .. }) && reached(50)(e))
                    .await?;
            }
            Moment::Tail(f) => {
                victim.until(reached(95)).await?;
                // The victim's output is drained meanwhile, so it never blocks on a full pipe.
                let drained = tokio::time::timeout(tail.mul_f64(f), async {
                    while victim.next().await?.is_some() {}
                    anyhow::Ok(())
                })
                .await;
                exited = matches!(drained, Ok(Ok(())));
            }
            Moment::InFlight(frames) => {
                victim.until(reached(95)).await?;
                let deadline = Instant::now() + LARGE_SYNC;
                loop {
                    ensure!(
                        Instant::now() < deadline,
                        "{label}: no transaction in flight"
                    );
                    if wal.poll()? >= frames {
                        break;
                    }
                    tokio::select! {
                        line = victim.next() => match line? {
                            Some((_, Event::Synced)) => bail!(
                                "{label}: published before {frames} uncommitted WAL frames were seen"
                            ),
                            Some(_) => {}
                            None => bail!("{label}: the victim's output ended"),
                        },
                        () = tokio::time::sleep(Duration::from_millis(2)) => {}
                    }
                }
            }
        }
        victim.kill().await?;
        let in_flight = wal.poll()?;
        if in_flight > 0 {
            inside_a_transaction += 1;
        }
        let counts = inspect(&file).await?;
        ensure!(
            consistent(counts),
            "{label}, killed at {moment:?}: a partial checkpoint is visible (lists, todos, v2 todos, \
             staged ops) = {counts:?}"
        );
        report.push(format!(
            "{label}: killed at {moment:?}{}: {in_flight} uncommitted WAL frames; reopened: \
             lists {}, todos {}, v2 {}, staged ops {}",
            if exited { " (it had exited)" } else { "" },
            counts.0,
            counts.1,
            counts.2,
            counts.3
        ));
        // Reconnecting completes the sync.
        if i % 2 == 1 {
            resync(&file, gw, pg).await?;
        }
    }
    ensure!(
        inside_a_transaction >= 2,
        "{label}: only {inside_a_transaction} kills hit a write transaction in flight\n{}",
        report.join("\n")
    );
    Ok(report)
}

async fn client_killed_while_applying_a_checkpoint_reopens_consistent() -> anyhow::Result<()> {
    let seed = format!(
        "{SEED}
         INSERT INTO todos (id, list_id, owner_id, description, completed, weight)
         SELECT 'K' || g, 'L1', 'u1', 'item ' || g, g % 3 = 0, g * 0.5
         FROM generate_series(1, {LARGE_ROWS}) g;"
    );
    let started = Instant::now();
    let pg = database("ce_kill", &seed).await?;
    let gw = start_gateway(&pg, None).await?;
    let dir = tempfile::tempdir()?;
    let mut report = vec![format!(
        "setup ({LARGE_ROWS} rows snapshotted): {:.1}s",
        started.elapsed().as_secs_f64()
    )];
    let all = LARGE_ROWS + 2;

    // The first checkpoint, into empty files: nothing or everything.
    report.extend(
        kill_at_moments(
            "initial",
            dir.path(),
            None,
            &gw,
            &pg,
            |(lists, todos, _, _)| (lists, todos) == (0, 0) || (lists, todos) == (1, all),
        )
        .await?,
    );

    // A checkpoint that changes every row, into copies of a synced file: old or new, never mixed.
    let base = dir.path().join("base.db");
    {
        let db = FerryDatabase::open(&base, client_schema())?;
        db.connect(
            GatewayConnector::new(endpoint(&gw), gateway::token("u1")),
            sync_options(),
        )
        .await?;
        within(
            "the base file's first sync",
            LARGE_SYNC,
            db.wait_for_first_sync(),
        )
        .await?;
        ensure!(summary_local(&db).await? == summary_pg(&pg).await?);
        db.disconnect().await;
    }
    pg.exec("UPDATE todos SET description = description || ' v2' WHERE owner_id = 'u1'")
        .await?;
    // One source transaction is one applier step: once one of its ops is stored, its checkpoint
    // is complete.
    wait_until("the applier to process the update", LARGE_SYNC, || async {
        let done: bool = pg
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM ferry.ops WHERE object_id = 'K1' AND data LIKE '%v2%')",
                &[],
            )
            .await?
            .get(0);
        Ok(done.then_some(()))
    })
    .await?;
    report.extend(
        kill_at_moments(
            "update",
            dir.path(),
            Some(&base),
            &gw,
            &pg,
            |(lists, todos, v2, _)| lists == 1 && todos == all && (v2 == 0 || v2 == all),
        )
        .await?,
    );
    eprintln!("{}", report.join("\n"));
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. HTTP errors and expired tokens.

async fn http_errors_and_expired_tokens_are_retried_and_converge() -> anyhow::Result<()> {
    let pg = database("ce_errors", SEED).await?;
    // No leeway: a token past its expiry is refused at once.
    let gw = start_gateway_with(&pg, None, |c| c.auth.leeway_secs = 0).await?;
    let addr = gw.addr();
    let dir = tempfile::tempdir()?;
    let db = FerryDatabase::open(dir.path().join("u1.db"), client_schema())?;
    let status_log = StatusLog::watch(&db);

    // An expired token (HTTP 401), then one that expires 8 s into the stream, then a good one.
    let connector = TestConnector::new(
        &endpoint(&gw),
        vec![
            gateway::token_expiring_in("u1", -120),
            gateway::token_expiring_in("u1", 8),
            gateway::token("u1"),
        ],
    );
    db.connect(connector.clone(), sync_options()).await?;
    within("the first sync", CONVERGE, db.wait_for_first_sync()).await?;
    ensure!(
        status_log.any("401"),
        "the refused token shows in the status: {:?}",
        status_log.errors()
    );
    ensure!(
        connector.fetches() == 2,
        "synced with the second token, after one refusal"
    );
    // The short token runs out mid-stream (the gateway says `token_expires_in: 0` and ends it):
    // the client fetches the next one and carries on.
    wait_until("the expired stream to be replaced", CONVERGE, || async {
        Ok((connector.fetches() >= 3 && db.status().connected).then_some(()))
    })
    .await?;
    pg.exec("UPDATE todos SET description = 'after the token change' WHERE id = 'T1'")
        .await?;
    converged(&db, &pg, "u1").await?;

    // The gateway stops in the middle of a large checkpoint.
    let before = local_todos(&db).await?.len() as i64;
    pg.exec(
        "INSERT INTO todos (id, list_id, owner_id, description)
         SELECT 'B' || g, 'L1', 'u1', 'bulk ' || g FROM generate_series(1, 50000) g",
    )
    .await?;
    within(
        "the client to be in the middle of the download",
        CONVERGE,
        db.wait_for_status(|s| {
            s.downloading
                && s.download_progress
                    .as_ref()
                    .is_some_and(|p| p.overall().0 > 0 && p.overall().0 < p.overall().1)
        }),
    )
    .await?;
    gw.shutdown().await;
    let during = local_todos(&db).await?.len() as i64;
    ensure!(
        during == before || during == before + 50_000,
        "a partial checkpoint is visible: {during} rows (before {before})"
    );
    within(
        "the client to report the outage",
        CONVERGE,
        db.wait_for_status(|s| !s.connected && s.download_error.is_some()),
    )
    .await?;
    let error = db.status().download_error.unwrap_or_default();
    ensure!(
        error.contains(&addr.to_string()),
        "the error names the endpoint: {error}"
    );
    // Back on the same address: the client retries on its own and completes.
    let gw = start_gateway_with(&pg, Some(addr), |c| c.auth.leeway_secs = 0).await?;
    converged(&db, &pg, "u1").await?;
    ensure!(local_todos(&db).await?.len() as i64 == before + 50_000);
    ensure!(db.status().download_error.is_none(), "{:?}", db.status());
    ensure!(
        PANICS.load(Ordering::SeqCst) == 0,
        "something panicked in this process"
    );
    db.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 8. Broken responses on the wire.

/// What [`FaultProxy`] does with the connections it accepts from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forward both ways.
    Pass,
    /// Answer any request with a 503 and an HTML body.
    Unavailable,
    /// Answer any request with a 200 whose NDJSON body is not JSON.
    Garbage,
    /// Forward, but end the connection after this many bytes of the response.
    Truncate(usize),
}

/// A TCP proxy in front of a gateway that breaks responses on the wire, per connection.
struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    /// Connections accepted under each fault.
    accepted: Arc<Mutex<Vec<Fault>>>,
    /// Cuts every open connection when sent to.
    cut: tokio::sync::broadcast::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.cut.send(());
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (cut, _) = tokio::sync::broadcast::channel(4);
        let task = tokio::spawn({
            let (fault, accepted, cut) = (fault.clone(), accepted.clone(), cut.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let now = *fault.lock().unwrap_or_else(PoisonError::into_inner);
                    accepted
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(now);
                    let mut cut = cut.subscribe();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = serve(socket, target, now) => {}
                            _ = cut.recv() => {}
                        }
                    });
                }
            }
        });
        Ok(FaultProxy {
            addr,
            fault,
            accepted,
            cut,
            task,
        })
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Connections accepted under `fault` so far.
    fn accepted(&self, fault: Fault) -> usize {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|f| **f == fault)
            .count()
    }

    /// Drops every open connection at once, as a network failure would.
    fn cut_all(&self) {
        let _ = self.cut.send(());
    }
}

/// One proxied connection.
async fn serve(
    mut client: tokio::net::TcpStream,
    target: SocketAddr,
    fault: Fault,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let canned = |status: &str, content_type: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n{body}"
        )
    };
    let reply = match fault {
        Fault::Unavailable => Some(canned(
            "503 Service Unavailable",
            "text/html",
            "<html><body>upstream unavailable</body></html>",
        )),
        Fault::Garbage => Some(canned(
            "200 OK",
            "application/x-ndjson",
            "this is not json\n{\"checkpoint\": 12}\n",
        )),
        Fault::Pass | Fault::Truncate(_) => None,
    };
    if let Some(reply) = reply {
        // Read the request head first, so that the client sees an answer, not a reset.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        client.write_all(reply.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }
    let limit = match fault {
        Fault::Truncate(n) => n,
        _ => usize::MAX,
    };
    let server = tokio::net::TcpStream::connect(target).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
    let downstream = async {
        let mut sent = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let n = n.min(limit - sent);
            client_write.write_all(&buf[..n]).await?;
            sent += n;
            if sent >= limit {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        _ = upstream => {}
        r = downstream => r?,
    }
    Ok(())
}

async fn broken_responses_on_the_wire_are_retried_and_converge() -> anyhow::Result<()> {
    let seed = format!(
        "{SEED}
         INSERT INTO todos (id, list_id, owner_id, description)
         SELECT 'W' || g, 'L1', 'u1', 'wire ' || g FROM generate_series(1, 20000) g;"
    );
    let pg = database("ce_wire", &seed).await?;
    let gw = start_gateway(&pg, None).await?;
    let proxy = FaultProxy::start(gw.addr()).await?;
    let dir = tempfile::tempdir()?;
    let db = FerryDatabase::open(dir.path().join("u1.db"), client_schema())?;
    let status_log = StatusLog::watch(&db);
    let all = server_todos(&pg, "u1").await?.len();

    // Every fault in turn; each must be reported and retried, and leave no partial checkpoint.
    let faults: [(Fault, &str); 4] = [
        (Fault::Unavailable, "HTTP 503"),
        (Fault::Garbage, "bad sync stream"),
        (Fault::Truncate(64 * 1024), "the stream broke"),
        // Cut in the response head or right after it: the same status may stay up, so only the
        // retry is required.
        (Fault::Truncate(300), ""),
    ];
    proxy.set(faults[0].0);
    let connector = TestConnector::for_user(&proxy.endpoint(), "u1");
    db.connect(connector.clone(), sync_options()).await?;
    for (fault, error) in faults {
        let seen = status_log.errors().len();
        proxy.set(fault);
        proxy.cut_all();
        wait_until(
            &format!("two attempts through {fault:?}"),
            CONVERGE,
            || async {
                // The same error again leaves the status as it was: look at the current one too.
                let current = db.status().download_error.unwrap_or_default();
                let reported = error.is_empty()
                    || current.contains(error)
                    || status_log.any_since(seen, error);
                Ok((proxy.accepted(fault) >= 2 && reported).then_some(()))
            },
        )
        .await
        .with_context(|| format!("errors so far: {:?}", status_log.errors()))?;
        let visible = local_todos(&db).await?.len();
        ensure!(
            visible == 0 || visible == all,
            "{fault:?}: a partial checkpoint is visible ({visible} of {all} rows)"
        );
    }
    ensure!(!db.status().has_synced(), "nothing got through the faults");

    // The network heals, then drops every connection in the middle of the download.
    proxy.set(Fault::Pass);
    proxy.cut_all();
    within(
        "the download to start",
        CONVERGE,
        db.wait_for_status(|s| {
            s.download_progress
                .as_ref()
                .is_some_and(|p| p.overall().0 > 0 && p.overall().0 < p.overall().1)
        }),
    )
    .await?;
    proxy.cut_all();
    converged(&db, &pg, "u1").await?;
    ensure!(local_todos(&db).await?.len() == all);
    ensure!(db.status().download_error.is_none(), "{:?}", db.status());

    // The sync service fails while the backend takes uploads: the upload goes through, the write
    // checkpoint after it fails and is retried; once the service is back, no error remains.
    connector.set_upload_endpoint(&endpoint(&gw));
    proxy.set(Fault::Unavailable);
    proxy.cut_all();
    db.execute(
        "UPDATE todos SET description = 'uploaded directly' WHERE id = 'T1'",
        (),
    )
    .await?;
    wait_until(
        "the upload, and the failed write checkpoint",
        CONVERGE,
        || async {
            let uploaded = t1(&pg).await?.0 == "uploaded directly";
            let reported = db
                .status()
                .upload_error
                .is_some_and(|e| e.contains("write-checkpoint2.json") && e.contains("503"));
            Ok((uploaded && reported).then_some(()))
        },
    )
    .await
    .with_context(|| format!("status: {:?}", db.status()))?;
    let written = std::time::SystemTime::now();
    proxy.set(Fault::Pass);
    converged(&db, &pg, "u1").await?;
    within(
        "a sync after the write that leaves no error behind",
        CONVERGE,
        db.wait_for_status(|s| {
            s.last_synced_at.is_some_and(|t| t > written)
                && s.upload_error.is_none()
                && s.download_error.is_none()
        }),
    )
    .await
    .with_context(|| format!("errors outlive their cause: {:?}", db.status()))?;
    ensure!(
        PANICS.load(Ordering::SeqCst) == 0,
        "something panicked in this process"
    );
    db.disconnect().await;
    drop(proxy);
    gw.shutdown().await;
    Ok(())
}

//! The fault suite: several clients and a writer on Postgres, with faults injected at random
//! points of a seeded schedule — the gateway restarted (cutting every stream mid-stream),
//! Postgres restarted (fast and immediate), the applier worker killed, the sync rules redeployed
//! during writes, clients disconnected and offline with pending writes, and a client process
//! killed (SIGKILL) wherever it is, mid-apply included.
//!
//! After each schedule every client's SQLite must equal what its user should see, computed by
//! plain SQL written for these rules (not by ferry-rules); every accepted upload must be applied
//! exactly once; every upload queue must drain. Throughout, no client may hold a row of another
//! user (the authorization property).
//!
//! Seeded: `FERRY_FAULT_SEEDS=7,8` replays given schedules; `FERRY_FAULT_LONG=1` runs many more
//! and longer schedules than the quick run CI does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use ferry_client::{params, FerryDatabase, GatewayConnector, Schema, SyncOptions, Table};
use ferry_gateway::RunningGateway;
use ferry_tests::ferry_sql::{wait_worker_activates, WORKER_ACTIVATION};
use ferry_tests::gateway::{token, TestGateway};
use ferry_tests::runner::{run, test};
use ferry_tests::{wait_until, Cluster, ClusterOptions, StopMode, TestDb};
use tokio_postgres::Client;

const USERS: usize = 3;

const SCHEMA: &str = "
CREATE TABLE lists (id text PRIMARY KEY, owner_id text NOT NULL, name text NOT NULL);
CREATE TABLE todos (id text PRIMARY KEY, list_id text NOT NULL, owner_id text NOT NULL,
                    description text NOT NULL, completed boolean NOT NULL DEFAULT false);
ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_lists ON lists USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
CREATE POLICY own_todos ON todos USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON lists, todos TO ferry_writer;
";

const RULES: &str = "
bucket_definitions:
  user_lists:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
";

/// The same data as [`RULES`] in another bucket layout: the redeploy fault switches between the
/// two, so what each user should see never changes while every client moves to new buckets.
const RULES_SPLIT: &str = "
bucket_definitions:
  own_lists:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
  own_todos:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
";

/// What the user should see, by plain SQL over the source tables (independent of ferry-rules).
const EXPECTED_TODOS: &str =
    "SELECT id, list_id, description, completed::int::int8 FROM todos WHERE owner_id = $1 ORDER BY id";
const EXPECTED_LISTS: &str = "SELECT id, name FROM lists WHERE owner_id = $1 ORDER BY id";

fn main() {
    let long = std::env::var("FERRY_FAULT_LONG").is_ok_and(|v| v == "1");
    let seeds: Vec<u64> = match std::env::var("FERRY_FAULT_SEEDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) if long => (1..=20).collect(),
        Err(_) => vec![1, 2],
    };
    let actions = if long { 400 } else { 120 };
    run(seeds
        .into_iter()
        .map(|seed| {
            test(&format!("schedule_{seed}_converges_exactly"), move || {
                schedule(seed, actions)
            })
        })
        .collect())
}

/// A small deterministic generator (xorshift64*): the schedule is a function of the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn user(i: usize) -> String {
    format!("u{i}")
}

fn client_schema() -> Schema {
    Schema::new(vec![
        Table::new("lists").text("owner_id").text("name"),
        Table::new("todos")
            .text("list_id")
            .text("owner_id")
            .text("description")
            .integer("completed"),
    ])
}

/// One user's device.
struct Device {
    user: String,
    db: FerryDatabase,
    online: bool,
    /// Local write transactions made (each is one upload).
    writes: u64,
    /// Ids this device created.
    created: Vec<String>,
}

impl Device {
    async fn connect(&mut self, endpoint: &str) -> anyhow::Result<()> {
        let connector =
            GatewayConnector::new(endpoint, token(&self.user)).with_gateway_write_endpoint();
        self.db.connect(connector, SyncOptions::default()).await?;
        self.online = true;
        Ok(())
    }
}

/// A second device of user `u0` that only downloads, in a process of its own
/// (`ferry-client-victim`), which the schedule SIGKILLs at random moments and starts again on the
/// same SQLite file.
struct Watcher {
    file: std::path::PathBuf,
    child: Option<tokio::process::Child>,
}

impl Watcher {
    fn start(&mut self, endpoint: &str) -> anyhow::Result<()> {
        let schema = serde_json::to_string(&client_schema())?;
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry-client-victim"))
            .arg(&self.file)
            .arg(endpoint)
            .arg(token(&user(0)))
            .arg(schema)
            // It exits when its stdin closes, so it never outlives the test.
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ferry-client-victim")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, wherever it is, and wait until it is gone.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }
}

/// A Postgres connection that reconnects after a restart.
struct Writer {
    db: Arc<TestDb>,
    client: Option<Client>,
}

impl Writer {
    /// Runs idempotent statements, reconnecting and retrying while Postgres restarts.
    async fn exec(&mut self, sql: &str) -> anyhow::Result<()> {
        for _ in 0..300 {
            if self.client.as_ref().is_none_or(Client::is_closed) {
                self.client = self.db.connect().await.ok();
            }
            if let Some(c) = &self.client {
                match c.batch_execute(sql).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.code().is_some() && !e.is_closed() => {
                        // A real SQL error, not the connection: a bug in the schedule.
                        return Err(e).with_context(|| format!("executing {sql}"));
                    }
                    Err(_) => self.client = None,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("Postgres did not come back to run {sql}")
    }
}

/// Starts a gateway for `db` (its login role already exists), on `listen` when given, and waits
/// until it serves. It is started directly rather than through `TestGateway`, which needs the
/// test's own connection — gone after a Postgres restart.
async fn start_gateway(db: &TestDb, listen: Option<SocketAddr>) -> anyhow::Result<RunningGateway> {
    let mut config = TestGateway::config(db);
    if let Some(addr) = listen {
        config.listen = addr;
    }
    config.write.tables = [("lists", "public.lists"), ("todos", "public.todos")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    // Rebinding the port of a gateway that just stopped may need a moment.
    let mut last = None;
    for _ in 0..50 {
        match ferry_gateway::start(config.clone()).await {
            Ok(g) => return Ok(g),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!("starting the gateway: {:?}", last))
}

/// The authorization property: a device never holds a row of another user.
async fn assert_only_own_rows(device: &Device) -> anyhow::Result<()> {
    for table in ["lists", "todos"] {
        let rows = device
            .db
            .query(
                format!("SELECT id, owner_id FROM {table} WHERE owner_id IS NOT ?1"),
                params![device.user.as_str()],
            )
            .await?;
        ensure!(
            rows.is_empty(),
            "{} holds {} {table} row(s) of other users, e.g. {:?}",
            device.user,
            rows.len(),
            rows.first().map(|r| r.get::<String>("id"))
        );
    }
    Ok(())
}

async fn schedule(seed: u64, actions: usize) -> anyhow::Result<()> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let name = format!("faultsuite_{}_{seed}", std::process::id());
    let cluster = Arc::new(Cluster::start(ClusterOptions {
        worker_databases: vec![name.clone()],
    })?);
    let db = Arc::new(TestDb::create_named(cluster.clone(), &name).await?);
    db.exec(SCHEMA).await?;
    for i in 0..USERS {
        db.exec(&format!(
            "INSERT INTO lists VALUES ('list-{i}', 'u{i}', 'List of u{i}')"
        ))
        .await?;
    }
    let version: i64 = db
        .query_one("SELECT ferry.deploy_rules($1)", &[&RULES])
        .await?
        .get(0);
    wait_worker_activates(&db, version, WORKER_ACTIVATION).await?;

    // The first start creates the gateway's login role (through TestGateway); later starts
    // reuse it.
    TestGateway::start(&db).await?.shutdown().await;
    let mut gateway = Some(start_gateway(&db, None).await?);
    let addr = gateway
        .as_ref()
        .map(RunningGateway::local_addr)
        .context("gateway")?;
    let endpoint = format!("http://{addr}");
    let dir = tempfile::tempdir()?;
    let mut devices = Vec::new();
    for i in 0..USERS {
        let mut device = Device {
            user: user(i),
            db: FerryDatabase::open(dir.path().join(format!("{}.db", user(i))), client_schema())?,
            online: false,
            writes: 0,
            created: Vec::new(),
        };
        device.connect(&endpoint).await?;
        devices.push(device);
    }
    let mut watcher = Watcher {
        file: dir.path().join("u0-watcher.db"),
        child: None,
    };
    watcher.start(&endpoint)?;
    let mut split_rules = false;
    let mut writer = Writer {
        db: db.clone(),
        client: None,
    };
    let mut log = Vec::new();
    let mut server_rows = 0u64;

    for step in 0..actions {
        let roll = rng.below(100);
        let action = match roll {
            0..=34 => {
                // The server writes: a new todo, an edit, a delete, or a row changing owner.
                let u = rng.below(USERS as u64);
                let sql = match rng.below(4) {
                    0 | 1 => {
                        server_rows += 1;
                        format!(
                            "INSERT INTO todos VALUES ('s-{server_rows}', 'list-{u}', 'u{u}', 'server {step}', false) ON CONFLICT DO NOTHING"
                        )
                    }
                    2 => format!(
                        "UPDATE todos SET description = 'edited {step}', completed = NOT completed WHERE id = 's-{}'",
                        1 + rng.below(server_rows.max(1))
                    ),
                    _ => {
                        let to = rng.below(USERS as u64);
                        format!(
                            "UPDATE todos SET owner_id = 'u{to}', list_id = 'list-{to}' WHERE id = 's-{}'",
                            1 + rng.below(server_rows.max(1))
                        )
                    }
                };
                writer.exec(&sql).await?;
                format!("server: {sql}")
            }
            35..=64 => {
                // A device writes (online or not): a new todo, or an edit of one of its own.
                let i = rng.below(USERS as u64) as usize;
                let d = &mut devices[i];
                if d.created.is_empty() || rng.below(2) == 0 {
                    let id = format!("c{i}-{step}");
                    d.db.execute(
                        "INSERT INTO todos (id, list_id, owner_id, description, completed) VALUES (?1, ?2, ?3, ?4, 0)",
                        params![id.as_str(), format!("list-{i}"), d.user.as_str(), format!("device {step}")],
                    )
                    .await?;
                    d.created.push(id.clone());
                    d.writes += 1;
                    format!("{} inserts {id}", d.user)
                } else {
                    let id = d.created[rng.below(d.created.len() as u64) as usize].clone();
                    // (SQLite does not count rows changed through a view's INSTEAD OF trigger,
                    // so look first.)
                    let present = !d
                        .db
                        .query("SELECT id FROM todos WHERE id = ?1", params![id.as_str()])
                        .await?
                        .is_empty();
                    ensure!(
                        present,
                        "seed {seed}, step {step}: {} lost its own todo {id}",
                        d.user
                    );
                    d.db.execute(
                        "UPDATE todos SET description = ?1, completed = 1 - completed WHERE id = ?2",
                        params![format!("device edit {step}"), id.as_str()],
                    )
                    .await?;
                    d.writes += 1;
                    format!("{} edits {id}", d.user)
                }
            }
            65..=74 => {
                // A device goes offline, or comes back.
                let i = rng.below(USERS as u64) as usize;
                let d = &mut devices[i];
                if d.online {
                    d.db.disconnect().await;
                    d.online = false;
                    format!("{} goes offline", d.user)
                } else {
                    d.connect(&endpoint).await?;
                    format!("{} comes back", d.user)
                }
            }
            75..=80 => {
                if let Some(g) = gateway.take() {
                    g.shutdown().await;
                }
                tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
                gateway = Some(start_gateway(&db, Some(addr)).await?);
                "gateway restarted".to_owned()
            }
            81..=85 => {
                let c = db.connect().await?;
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ferry applier'",
                    &[],
                )
                .await?;
                "applier worker killed".to_owned()
            }
            86..=88 => {
                split_rules = !split_rules;
                let rules = if split_rules { RULES_SPLIT } else { RULES };
                writer
                    .exec(&format!("SELECT ferry.deploy_rules($rules${rules}$rules$)"))
                    .await?;
                let layout = if split_rules { "split" } else { "joined" };
                format!("rules redeployed ({layout} buckets)")
            }
            89..=91 => {
                watcher.kill().await?;
                tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
                watcher.start(&endpoint)?;
                "watcher process killed and restarted".to_owned()
            }
            92..=95 => {
                let mode = if rng.below(2) == 0 {
                    StopMode::Fast
                } else {
                    StopMode::Immediate
                };
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.restart(mode)).await??;
                format!("Postgres restarted ({mode:?})")
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(50 + rng.below(300))).await;
                "pause".to_owned()
            }
        };
        log.push(format!("{step}: {action}"));
        for d in &devices {
            assert_only_own_rows(d)
                .await
                .with_context(|| format!("seed {seed}, after step {step}: {action}"))?;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Everyone back online; everything must converge.
    for d in devices.iter_mut().filter(|d| !d.online) {
        d.connect(&endpoint).await?;
    }
    let mut outcome = converge(&db, &devices).await;
    if outcome.is_ok() {
        outcome = converge_watcher(&db, &mut watcher, &endpoint).await;
    }
    if let Err(e) = outcome {
        let tail = log
            .iter()
            .rev()
            .take(25)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        anyhow::bail!("seed {seed} diverged: {e:#}\nlast steps of the schedule:\n{tail}");
    }
    for d in &devices {
        d.db.disconnect().await;
    }
    if let Some(g) = gateway.take() {
        g.shutdown().await;
    }
    eprintln!("seed {seed}: {actions} steps converged ({})", summary(&log));
    Ok(())
}

fn summary(log: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log {
        let kind = if line.contains("server:") {
            "server writes"
        } else if line.contains("inserts") || line.contains("edits") {
            "device writes"
        } else if line.contains("offline") || line.contains("comes back") {
            "device offline/online"
        } else if line.contains("gateway") {
            "gateway restarts"
        } else if line.contains("worker") {
            "worker kills"
        } else if line.contains("redeployed") {
            "rules redeploys"
        } else if line.contains("watcher") {
            "client process kills"
        } else if line.contains("Postgres") {
            "Postgres restarts"
        } else {
            "pauses"
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows of `device` as (todos, lists), in the shape of [`EXPECTED_TODOS`] and [`EXPECTED_LISTS`].
type DeviceRows = (Vec<(String, String, String, i64)>, Vec<(String, String)>);

/// What `user` should see, by the plain-SQL expectation.
async fn expected_rows(pg: &Client, user: &str) -> anyhow::Result<DeviceRows> {
    let todos = pg
        .query(EXPECTED_TODOS, &[&user])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let lists = pg
        .query(EXPECTED_LISTS, &[&user])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok((todos, lists))
}

/// What a client's database holds (at its last published checkpoint).
async fn device_rows(db: &FerryDatabase) -> anyhow::Result<DeviceRows> {
    let todos = db
        .query(
            "SELECT id, list_id, description, completed FROM todos ORDER BY id",
            (),
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.get::<String>("id")?,
                r.get::<String>("list_id")?,
                r.get::<String>("description")?,
                r.get::<i64>("completed")?,
            ))
        })
        .collect::<Result<_, ferry_client::Error>>()?;
    let lists = db
        .query("SELECT id, name FROM lists ORDER BY id", ())
        .await?
        .iter()
        .map(|r| Ok((r.get::<String>("id")?, r.get::<String>("name")?)))
        .collect::<Result<_, ferry_client::Error>>()?;
    Ok((todos, lists))
}

/// Waits until the watcher's file, opened after a SIGKILL at a random moment, holds exactly what
/// `u0` should see and no row of anyone else; between looks the watcher syncs on.
async fn converge_watcher(
    db: &TestDb,
    watcher: &mut Watcher,
    endpoint: &str,
) -> anyhow::Result<()> {
    let pg = db.connect().await?;
    let want = expected_rows(&pg, &user(0)).await?;
    let mut last = None;
    for _ in 0..60 {
        if watcher.child.is_none() {
            watcher.start(endpoint)?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        watcher.kill().await?;
        let local = FerryDatabase::open(&watcher.file, client_schema())?;
        let got = device_rows(&local).await?;
        let device = Device {
            user: user(0),
            db: local,
            online: false,
            writes: 0,
            created: Vec::new(),
        };
        assert_only_own_rows(&device)
            .await
            .context("the watcher (a killed client process)")?;
        if got == want {
            return Ok(());
        }
        last = Some((got.0.len(), got.1.len()));
    }
    anyhow::bail!(
        "the watcher did not converge: (todos, lists) {last:?} locally, ({}, {}) expected",
        want.0.len(),
        want.1.len()
    )
}

/// Waits until every device's queue is empty and its tables equal the plain-SQL expectation,
/// then checks every upload was applied exactly once.
async fn converge(db: &TestDb, devices: &[Device]) -> anyhow::Result<()> {
    let pg = db.connect().await?;
    for d in devices {
        wait_until(
            &format!("{} to converge", d.user),
            Duration::from_secs(120),
            || async {
                if d.db.upload_queue_len().await? > 0 {
                    return Ok(None);
                }
                let (want_todos, want_lists) = expected_rows(&pg, &d.user).await?;
                let (got_todos, got_lists) = device_rows(&d.db).await?;
                if got_todos == want_todos && got_lists == want_lists {
                    Ok(Some(()))
                } else {
                    anyhow::bail!(
                        "{}: {} todos locally, {} expected; lists {} vs {}",
                        d.user,
                        got_todos.len(),
                        want_todos.len(),
                        got_lists.len(),
                        want_lists.len()
                    )
                }
            },
        )
        .await?;
        // Every accepted upload applied once: one applied_uploads row per local write
        // transaction, and every row the device created is in Postgres.
        let uploads: i64 = pg
            .query_one(
                "SELECT count(*) FROM ferry.applied_uploads WHERE client_id = $1",
                &[&d.db.client_id()],
            )
            .await?
            .get(0);
        ensure!(
            uploads as u64 == d.writes,
            "{}: {} uploads applied for {} local write transactions",
            d.user,
            uploads,
            d.writes
        );
        for id in &d.created {
            let n: i64 = pg
                .query_one("SELECT count(*) FROM todos WHERE id = $1", &[id])
                .await?
                .get(0);
            ensure!(
                n == 1,
                "{}: created {id}, Postgres has it {n} times",
                d.user
            );
        }
        assert_only_own_rows(d).await?;
    }
    Ok(())
}

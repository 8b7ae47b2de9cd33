//! One fresh database per test, with the ferry extension created.
//!
//! [`TestDb`] owns the database: dropping it (also while a failing test unwinds) drops every
//! replication slot of that database — a leaked slot retains WAL forever — and then the database.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

use crate::cluster::Cluster;

static DB_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A database of its own on a cluster, with `CREATE EXTENSION ferry` done, and a connection to it.
pub struct TestDb {
    cluster: Arc<Cluster>,
    name: String,
    client: Client,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl TestDb {
    /// Creates database `<prefix>_<n>` with the extension and connects to it.
    pub async fn create(cluster: Arc<Cluster>, prefix: &str) -> anyhow::Result<TestDb> {
        let name = format!(
            "{}_{}_{}",
            prefix,
            std::process::id(),
            DB_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        TestDb::create_named(cluster, &name).await
    }

    /// Creates database `name` (for a cluster whose worker was told its name) with the extension.
    pub async fn create_named(cluster: Arc<Cluster>, name: &str) -> anyhow::Result<TestDb> {
        let name = name.to_owned();
        let create = format!("CREATE DATABASE {name}");
        cluster.with_sync_client("postgres", move |c| Ok(c.batch_execute(&create)?))?;
        let client = connect(&cluster, &name).await?;
        let db = TestDb {
            cluster,
            name,
            client,
        };
        db.client
            .batch_execute("CREATE EXTENSION ferry")
            .await
            .context("CREATE EXTENSION ferry")?;
        Ok(db)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster it lives on.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The test's connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A new, separate connection to this database.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        connect(&self.cluster, &self.name).await
    }

    /// Replaces the test's connection (after the server restarted).
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        self.client = connect(&self.cluster, &self.name).await?;
        Ok(())
    }

    /// Runs one or more statements without parameters.
    pub async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .with_context(|| format!("executing: {sql}"))
    }

    /// Runs a query and returns its rows.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> anyhow::Result<Vec<Row>> {
        self.client
            .query(sql, params)
            .await
            .with_context(|| format!("querying: {sql}"))
    }

    /// Runs a query that returns exactly one row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> anyhow::Result<Row> {
        self.client
            .query_one(sql, params)
            .await
            .with_context(|| format!("querying one row: {sql}"))
    }

    /// The replication slots of this database.
    pub async fn slots(&self) -> anyhow::Result<Vec<String>> {
        let rows = self
            .query(
                "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database() ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

async fn connect(cluster: &Cluster, database: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(&cluster.conn_string(database), NoTls)
        .await
        .with_context(|| format!("connecting to {database} on port {}", cluster.port()))?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped or the server goes away; both are normal
        // in tests that restart Postgres.
        let _ = connection.await;
    });
    Ok(client)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let result = self.cluster.with_sync_client("postgres", move |c| {
            // Stop whatever still uses the database or its slots, then drop the slots and the database.
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )?;
            for attempt in 0..50 {
                let slots = c.query(
                    "SELECT slot_name::text, active FROM pg_replication_slots WHERE database = $1",
                    &[&name],
                )?;
                if slots.is_empty() {
                    break;
                }
                for slot in &slots {
                    let slot_name: String = slot.get(0);
                    let _ = c.execute("SELECT pg_drop_replication_slot($1)", &[&slot_name]);
                }
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("warning: cleaning up test database {}: {e:#}", self.name);
        }
    }
}

//! A throwaway Postgres cluster with the ferry extension available.
//!
//! Started through `scripts/pg-cluster.sh` (the one place that knows the cluster settings) in a
//! directory of its own, on a free port of 127.0.0.1 and with its own socket directory, so clusters
//! of parallel test binaries never collide. Dropping a [`Cluster`] stops it and removes its
//! directory. Directories of clusters whose test process died (killed, Ctrl-C) are swept by the
//! next harness start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

use crate::workspace;

/// How a cluster is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `pg_ctl -m fast`: clients disconnected, a clean shutdown checkpoint.
    Fast,
    /// `pg_ctl -m immediate`: like a crash; recovery runs at the next start.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Settings of a new cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Databases whose ferry applier worker starts with the cluster (`ferry.database`).
    /// Empty: no worker; tests drive the applier with `SELECT ferry.advance()`.
    pub worker_databases: Vec<String>,
}

/// A running throwaway cluster. Stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// The directory under which all harness clusters live; each subdirectory is named
/// `<pid>-<n>` after the test process that owns it.
fn clusters_root() -> PathBuf {
    std::env::temp_dir().join("ferry-test-clusters")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(listener.local_addr()?.port())
}

fn run_script(args: &[&str]) -> anyhow::Result<()> {
    let script = workspace::script("pg-cluster.sh");
    let output = Command::new(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed:\n{}{}",
            script.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Stops and removes clusters left behind by test processes that no longer exist.
fn sweep_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(clusters_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let _ = run_script(&["stop", &dir.to_string_lossy(), "immediate"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

impl Cluster {
    /// Initialises and starts a new cluster. Fails loudly when Postgres or the extension is missing.
    pub fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        sweep_stale_clusters();
        let root = clusters_root();
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let dir = root.join(format!(
            "{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let mut last_error = None;
        // A port found free can be taken before Postgres binds it; try a few.
        for _ in 0..5 {
            let port = free_port()?;
            let port_arg = port.to_string();
            let database = options.worker_databases.join(",");
            let dir_arg = dir.to_string_lossy().into_owned();
            let mut args = vec!["start", dir_arg.as_str(), port_arg.as_str()];
            args.extend(["--database", database.as_str()]);
            match run_script(&args) {
                Ok(()) => {
                    let cluster = Cluster { dir, port };
                    cluster.check_extension_available()?;
                    return Ok(cluster);
                }
                Err(e) => {
                    let _ = run_script(&["stop", &dir_arg, "immediate"]);
                    let _ = std::fs::remove_dir_all(&dir);
                    last_error = Some(e);
                }
            }
        }
        Err(last_error
            .expect("at least one attempt")
            .context("starting a throwaway cluster"))
    }

    fn check_extension_available(&self) -> anyhow::Result<()> {
        let row = self.with_sync_client("postgres", |client| {
            Ok(client.query_opt(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'ferry'",
                &[],
            )?)
        })?;
        if row.is_none() {
            bail!(
                "the ferry extension is not installed in this Postgres; run scripts/install-extension.sh \
                 (scripts/test.sh does it for you)"
            );
        }
        Ok(())
    }

    /// The TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (`data/`, `sock/`, `log/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A libpq-style connection string for `database` as the superuser `postgres`.
    pub fn conn_string(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={} application_name=ferry-tests",
            self.port, database
        )
    }

    /// Runs `f` with a blocking connection to `database`, on a thread of its own so that it works
    /// inside and outside async code alike (setup and teardown in `Drop`).
    pub fn with_sync_client<T: Send>(
        &self,
        database: &str,
        f: impl FnOnce(&mut postgres::Client) -> anyhow::Result<T> + Send,
    ) -> anyhow::Result<T> {
        let conn_string = self.conn_string(database);
        let port = self.port;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let mut client = postgres::Client::connect(&conn_string, postgres::NoTls)
                        .with_context(|| {
                            format!("connecting to database {database} on port {port}")
                        })?;
                    f(&mut client)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("a blocking database call panicked"))?
        })
    }

    /// Stops the cluster (it keeps its data) — for restart tests.
    pub fn stop(&self, mode: StopMode) -> anyhow::Result<()> {
        run_script(&["stop", &self.dir.to_string_lossy(), mode.as_arg()])
    }

    /// Starts a stopped cluster again with its data.
    pub fn start_again(&self) -> anyhow::Result<()> {
        run_script(&["restart", &self.dir.to_string_lossy(), "fast"])
    }

    /// Stops the cluster with `mode` and starts it again.
    pub fn restart(&self, mode: StopMode) -> anyhow::Result<()> {
        run_script(&["restart", &self.dir.to_string_lossy(), mode.as_arg()])
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/pg.log")).unwrap_or_default()
    }

    /// Stops the cluster and removes its directory. Idempotent; also done on drop.
    pub fn destroy(&self) {
        let _ = run_script(&["stop", &self.dir.to_string_lossy(), "immediate"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.destroy();
    }
}

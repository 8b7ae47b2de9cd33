//! The gateway in a process of its own, for the figures that report its memory or load it with
//! thousands of connections: [`GatewayProcess::start`] re-executes the benchmark binary
//! (`std::env::current_exe()`) with the hidden flag `--`[`FLAG`]` <libpq string>`; that child runs
//! [`serve`], which starts the test gateway's configuration ([`crate::gateway::config_for`], the
//! one definition shared with the in-process [`crate::gateway::TestGateway`]) on
//! `127.0.0.1:0`, prints its bound address on stdout and runs until it is killed or its stdin
//! closes (so it never outlives the benchmark). The parent reads the address, waits for
//! `/probes/readiness`, reads the child's memory from `/proc`, and kills it when the
//! [`GatewayProcess`] is stopped or dropped (error paths included).
//!
//! What the figures send to it is theirs ([`super::stream_reader`], ferry clients).

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::applier::{process_memory, ProcessMemory};
use crate::database::TestDb;
use crate::gateway;

/// The hidden command-line flag (without its `--`) that makes `ferry-bench` run [`serve`]
/// instead of figures.
pub const FLAG: &str = "gateway-process";

/// The hidden flag (without its `--`) with the child's `limits.max_streams` (default: the
/// gateway's own default).
pub const MAX_STREAMS_FLAG: &str = "gateway-max-streams";

/// How long the child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A gateway running in a child process. Killed when stopped or dropped.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: ChildStdin,
    pid: i32,
    addr: SocketAddr,
}

impl GatewayProcess {
    /// Starts a gateway process for `db` (creating the test login role first), with
    /// `limits.max_streams` set to `max_streams` when given, and waits until it is ready.
    pub async fn start(db: &TestDb, max_streams: Option<usize>) -> anyhow::Result<GatewayProcess> {
        gateway::create_login_role(db).await?;
        let exe = std::env::current_exe().context("locating the benchmark binary")?;
        let mut command = Command::new(&exe);
        command
            .arg(format!("--{FLAG}"))
            .arg(gateway::conn_string(db));
        if let Some(n) = max_streams {
            command
                .arg(format!("--{MAX_STREAMS_FLAG}"))
                .arg(n.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} --{FLAG}", exe.display()))?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .context("the gateway process has no pid")?;
        let stdin = child.stdin.take().context("no stdin pipe")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        // From here on, dropping `process` kills the child.
        let mut process = GatewayProcess {
            child,
            _stdin: stdin,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line))
            .await
            .context("the gateway process did not print its address in time")?
            .context("reading the gateway process's stdout")?;
        process.addr = line
            .trim()
            .parse()
            .with_context(|| format!("the gateway process printed {line:?}, not its address"))?;
        // Nothing more is printed; drain stdout anyway so a stray line never blocks the child.
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink).await;
        });
        gateway::wait_ready(process.addr).await?;
        Ok(process)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the endpoint clients are given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The child's memory now (`/proc/<pid>/status`).
    pub fn memory(&self) -> anyhow::Result<ProcessMemory> {
        process_memory(self.pid)
    }

    /// The gateway's open streams now, as its `/metrics` report them
    /// (`ferry_gateway_streams_open`).
    pub async fn open_streams(&self) -> anyhow::Result<i64> {
        let (status, body) = gateway::get(self.addr, "/metrics").await?;
        anyhow::ensure!(status == 200, "GET /metrics answered {status}");
        body.lines()
            .find_map(|l| l.strip_prefix("ferry_gateway_streams_open "))
            .and_then(|v| v.trim().parse().ok())
            .context("no ferry_gateway_streams_open in /metrics")
    }

    /// Kills the child and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .context("killing the gateway process")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        // `kill_on_drop` does the same; said here so that no path leaves the child running.
        let _ = self.child.start_kill();
    }
}

/// The child's side: starts the gateway for `conn_string` ([`gateway::config_for`], listening
/// on `127.0.0.1:0`, `limits.max_streams` raised to `max_streams` when given), prints the bound
/// address on stdout, and runs until killed or until stdin closes.
pub async fn serve(conn_string: &str, max_streams: Option<usize>) -> anyhow::Result<()> {
    let mut config = gateway::config_for(conn_string);
    if let Some(n) = max_streams {
        config.limits.max_streams = n;
    }
    let running = ferry_gateway::start(config)
        .await
        .context("starting the gateway")?;
    println!("{}", running.local_addr());
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    let _ = stdin_closed.await;
    running.shutdown().await;
    Ok(())
}

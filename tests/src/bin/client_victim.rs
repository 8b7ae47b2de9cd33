//! `ferry-client-victim`: a ferry client in a process of its own, for the end-to-end tests that
//! SIGKILL a client in the middle of a sync (`tests/client_e2e.rs`) and then check the SQLite
//! file it leaves behind.
//!
//! ```text
//! ferry-client-victim <db file> <endpoint> <token> <schema JSON>
//! ```
//!
//! It opens the file with the schema (a serialized `ferry_client::Schema`), syncs from the
//! endpoint (no uploads), and reports on stdout, one line per event, flushed at once:
//!
//! - `progress <downloaded> <total>` while a checkpoint downloads;
//! - `synced <n>` each time a full checkpoint has been published (`n` counts them, from 1);
//! - `error <message>` when the status shows a new download error.
//!
//! It runs until killed, or until its stdin closes (so it never outlives a test that died).

use std::io::{Read, Write};
use std::time::SystemTime;

use anyhow::Context;
use ferry_client::{FerryDatabase, GatewayConnector, Schema, SyncOptions};
use futures::StreamExt;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, endpoint, token, schema] = args.as_slice() else {
        anyhow::bail!("usage: ferry-client-victim <db file> <endpoint> <token> <schema JSON>");
    };
    let schema: Schema = serde_json::from_str(schema).context("parsing the schema argument")?;
    std::thread::spawn(|| {
        // Stdin closed (or unreadable): the test is gone.
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(sync(db, endpoint, token, schema))
}

async fn sync(db: &str, endpoint: &str, token: &str, schema: Schema) -> anyhow::Result<()> {
    let db = FerryDatabase::open(db, schema).with_context(|| format!("opening {db}"))?;
    db.connect(
        GatewayConnector::new(endpoint, token),
        SyncOptions::default(),
    )
    .await?;
    let mut statuses = std::pin::pin!(db.status_stream());
    let mut last_synced: Option<SystemTime> = db.status().last_synced_at;
    let mut synced = 0u64;
    let mut last_error = None;
    let mut out = std::io::stdout().lock();
    while let Some(status) = statuses.next().await {
        if let Some(progress) = status
            .download_progress
            .as_ref()
            .filter(|_| status.downloading)
        {
            let (done, total) = progress.overall();
            writeln!(out, "progress {done} {total}")?;
        }
        if status.last_synced_at != last_synced {
            last_synced = status.last_synced_at;
            synced += 1;
            writeln!(out, "synced {synced}")?;
        }
        if status.download_error.is_some() && status.download_error != last_error {
            let message = status.download_error.clone().unwrap_or_default();
            writeln!(out, "error {}", message.replace('\n', " "))?;
        }
        last_error = status.download_error;
        out.flush()?;
    }
    Ok(())
}

//! A live todo list synced through a ferry gateway (the demo's todo app).
//!
//! It opens a local SQLite file with the demo schema (`lists`, `todos`), connects to the gateway,
//! and prints the todo list every time it changes, whether by sync or by a local write, together
//! with the sync status (connected, download progress, upload queue, errors).
//!
//! ```text
//! # with a token you already have
//! cargo run -p ferry-client --example todo -- --endpoint http://127.0.0.1:8080 --token <jwt>
//! # or let the example mint a development token (HS256) for a user
//! cargo run -p ferry-client --example todo -- --dev-secret <secret> --user alice
//! # add a todo (uploaded to the gateway's write endpoint), print once synced, and exit
//! cargo run -p ferry-client --example todo -- --dev-secret s --add "Buy milk" --once
//! ```
//!
//! Run with `--help` for every flag; each can also be set from the environment (`FERRY_*`).
//! `RUST_LOG=ferry_client=debug` logs what the sync does.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use ferry_client::{
    params, FerryDatabase, GatewayConnector, Row, Schema, SyncOptions, SyncStatus, Table,
};
use futures::StreamExt;

/// ferry todo example: prints a live todo list synced through a ferry gateway.
///
/// Give either --token (a JWT the gateway accepts) or --dev-secret (an HS256 key the gateway is
/// configured with; the example then mints tokens for --user).
#[derive(Parser, Debug)]
#[command(name = "todo", version)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, env = "FERRY_ENDPOINT", default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// A JWT for the gateway (sent as `Authorization: Token <jwt>`).
    #[arg(long, env = "FERRY_TOKEN", conflicts_with = "dev_secret")]
    token: Option<String>,
    /// Development only: an HS256 secret (raw bytes of the key) to mint a token with.
    #[arg(long, env = "FERRY_DEV_SECRET")]
    dev_secret: Option<String>,
    /// The user (`sub` claim) of a minted token.
    #[arg(long, env = "FERRY_USER", default_value = "demo-user")]
    user: String,
    /// The audience (`aud` claim) of a minted token.
    #[arg(long, env = "FERRY_AUDIENCE", default_value = "ferry")]
    audience: String,
    /// The key id (`kid` header) of a minted token, if the gateway's key has one.
    #[arg(long, env = "FERRY_KID")]
    kid: Option<String>,
    /// Where local writes are uploaded (POST, JSON body: one transaction). Default: the
    /// gateway's built-in write endpoint, `<endpoint>/api/crud`.
    #[arg(long, env = "FERRY_UPLOAD_URL")]
    upload_url: Option<String>,
    /// Do not upload local writes (they stay queued for a later run).
    #[arg(long, conflicts_with = "upload_url")]
    no_upload: bool,
    /// The local database file.
    #[arg(long, env = "FERRY_DB", default_value = "todo-example.db")]
    db: PathBuf,
    /// Add a todo with this description (to --list-id, or to the user's first list, created if
    /// there is none) after connecting.
    #[arg(long)]
    add: Option<String>,
    /// The list for --add.
    #[arg(long)]
    list_id: Option<String>,
    /// Mark the todo with this id completed.
    #[arg(long)]
    complete: Option<String>,
    /// Print the list once after the first full sync (and, after --add / --complete, once the
    /// server has confirmed the write), then exit instead of watching.
    #[arg(long)]
    once: bool,
    /// Do not connect at all: make the local change (--add / --complete), show the upload queue,
    /// and exit. The next run that connects uploads it.
    #[arg(long)]
    offline: bool,
    /// With --once: give up (exit code 1) if that takes longer than this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// The demo's tables (`sql/examples/todo/schema.sql`), as the client sees them.
fn schema() -> Schema {
    Schema::new(vec![
        Table::new("announcements")
            .text("message")
            .text("created_at"),
        Table::new("lists")
            .text("owner_id")
            .text("name")
            .text("created_at"),
        Table::new("todos")
            .text("list_id")
            .text("owner_id")
            .text("description")
            .integer("completed")
            .text("created_at")
            .text("completed_at"),
    ])
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints an HS256 token valid for 12 hours.
fn mint_token(args: &Args, secret: &str) -> anyhow::Result<String> {
    let now = now_secs();
    let claims = serde_json::json!({
        "sub": args.user,
        "aud": args.audience,
        "iat": now,
        "exp": now + 12 * 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid.clone_from(&args.kid);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("minting a development token")
}

fn describe_status(status: &SyncStatus) -> String {
    let mut parts = Vec::new();
    parts.push(if status.connected {
        "connected".to_owned()
    } else if status.connecting {
        "connecting".to_owned()
    } else {
        "offline".to_owned()
    });
    if status.downloading {
        match &status.download_progress {
            Some(progress) => {
                let (done, total) = progress.overall();
                let filled = if total == 0 {
                    20
                } else {
                    (done * 20 / total.max(1)) as usize
                };
                parts.push(format!(
                    "downloading [{}{}] {done}/{total} ops",
                    "#".repeat(filled.min(20)),
                    "-".repeat(20 - filled.min(20))
                ));
            }
            None => parts.push("downloading".to_owned()),
        }
    }
    match status.last_synced_at {
        Some(at) => {
            let ago = SystemTime::now().duration_since(at).unwrap_or_default();
            parts.push(format!("last synced {}s ago", ago.as_secs()));
        }
        None => parts.push("not synced yet".to_owned()),
    }
    parts.push(format!("upload queue {}", status.upload_queue_len));
    if let Some(e) = &status.download_error {
        parts.push(format!("download error: {e}"));
    }
    if let Some(e) = &status.upload_error {
        parts.push(format!("upload error: {e}"));
    }
    parts.join(" · ")
}

/// Todos printed in full; beyond that the list is summarised.
const SHOWN: usize = 12;

fn print_todos(rows: &[Row]) {
    println!("── todos ({}) ──", rows.len());
    let hidden = rows.len().saturating_sub(SHOWN);
    // The newest matter most in a live view: show the first few and the last ones.
    let shown: Vec<&Row> = if hidden == 0 {
        rows.iter().collect()
    } else {
        rows.iter()
            .take(3)
            .chain(rows.iter().skip(3 + hidden))
            .collect()
    };
    for (i, row) in shown.into_iter().enumerate() {
        if hidden > 0 && i == 3 {
            println!("   … {hidden} more …");
        }
        let done = row.get::<Option<i64>>("completed").ok().flatten() == Some(1);
        let description: String = row
            .get::<Option<String>>("description")
            .ok()
            .flatten()
            .unwrap_or_default();
        let list: String = row
            .get::<Option<String>>("list_name")
            .ok()
            .flatten()
            .unwrap_or_else(|| "-".to_owned());
        let id: String = row.get("id").unwrap_or_default();
        println!(
            "[{}] {description}  (list: {list}, id: {id})",
            if done { "x" } else { " " }
        );
    }
}

/// Makes the local change of --add / --complete, if any; true when there was one. Connected, it
/// first waits (up to --timeout) for the first sync, so a new todo lands in an existing list.
async fn local_change(db: &FerryDatabase, args: &Args) -> anyhow::Result<bool> {
    if let Some(description) = &args.add {
        let list_id = match &args.list_id {
            Some(id) => id.clone(),
            None => {
                // The user's lists come with the first sync; a user without one gets one.
                if !args.offline {
                    let wait = Duration::from_secs(args.timeout);
                    let _ = tokio::time::timeout(wait, db.wait_for_first_sync()).await;
                }
                let user = args.user.clone();
                db.transaction(move |tx| {
                    let existing: Option<String> = tx
                        .query_row(
                            "SELECT id FROM lists WHERE owner_id = ?1 ORDER BY created_at, id",
                            [&user],
                            |r| r.get(0),
                        )
                        .ok();
                    if let Some(id) = existing {
                        return Ok(id);
                    }
                    let id: String = tx.query_row("SELECT uuid()", [], |r| r.get(0))?;
                    tx.execute(
                        "INSERT INTO lists(id, owner_id, name, created_at) \
                         VALUES (?1, ?2, 'My list', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                        [&id, &user],
                    )?;
                    Ok(id)
                })
                .await?
            }
        };
        db.execute(
            "INSERT INTO todos(id, description, completed, list_id, owner_id, created_at) \
             VALUES (uuid(), ?1, 0, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            params![description.as_str(), list_id, args.user.as_str()],
        )
        .await?;
        println!("added {description:?}");
    }
    if let Some(id) = &args.complete {
        let n = db
            .execute(
                "UPDATE todos SET completed = 1, \
                 completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
                params![id.as_str()],
            )
            .await?;
        if n == 0 {
            eprintln!("no todo with id {id}");
        }
    }
    Ok(args.add.is_some() || args.complete.is_some())
}

const TODOS_QUERY: &str = "SELECT t.id, t.description, t.completed, l.name AS list_name \
     FROM todos t LEFT JOIN lists l ON l.id = t.list_id \
     ORDER BY t.created_at, t.id";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // RUST_LOG=ferry_client=debug shows what the sync does.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let token = match (&args.token, &args.dev_secret) {
        (Some(token), _) => token.clone(),
        (None, Some(secret)) => mint_token(&args, secret)?,
        (None, None) => bail!("give --token <jwt> or --dev-secret <secret> (see --help)"),
    };
    let db = FerryDatabase::open(&args.db, schema())
        .with_context(|| format!("opening {}", args.db.display()))?;
    println!(
        "database {} (client id {})",
        args.db.display(),
        db.client_id()
    );

    if args.offline {
        local_change(&db, &args).await?;
        println!(
            "offline: {} change(s) queued for upload",
            db.upload_queue_len().await?
        );
        return Ok(());
    }

    let mut connector = GatewayConnector::new(&args.endpoint, token);
    if let Some(url) = &args.upload_url {
        connector = connector.with_upload_url(url);
    } else if !args.no_upload {
        connector = connector.with_gateway_write_endpoint();
    }
    db.connect(connector, SyncOptions::default()).await?;
    println!("syncing with {}", args.endpoint);

    // A full sync published after a local write includes it: the write gate holds downloads
    // back until the server has the write.
    let before_writes = SystemTime::now();
    let wrote = local_change(&db, &args).await?;
    // Writes queued earlier (say, by an --offline run) are uploaded now too.
    let pending = wrote || db.upload_queue_len().await? > 0;

    if args.once {
        let synced = async {
            db.wait_for_first_sync().await;
            if pending && !args.no_upload {
                db.wait_for_status(|s| {
                    s.upload_queue_len == 0 && s.last_synced_at.is_some_and(|t| t > before_writes)
                })
                .await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(args.timeout), synced)
            .await
            .is_err()
        {
            eprintln!("status: {}", describe_status(&db.status()));
            db.disconnect().await;
            bail!("not synced within {} s", args.timeout);
        }
        print_todos(&db.query(TODOS_QUERY, ()).await?);
        println!("status: {}", describe_status(&db.status()));
        db.disconnect().await;
        return Ok(());
    }

    let mut todos = Box::pin(db.watch(TODOS_QUERY, ()));
    let mut statuses = Box::pin(db.status_stream());
    let mut last_status = String::new();
    loop {
        tokio::select! {
            rows = todos.next() => match rows {
                Some(Ok(rows)) => print_todos(&rows),
                Some(Err(e)) => eprintln!("query failed: {e}"),
                None => break,
            },
            Some(status) = statuses.next() => {
                let line = describe_status(&status);
                if line != last_status {
                    println!("status: {line}");
                    last_status = line;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    db.disconnect().await;
    Ok(())
}

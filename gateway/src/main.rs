//! The `ferry-gateway` command: `serve` runs the sync server, `rules check FILE` validates sync
//! rules offline. Everything else lives in the library (`ferry_gateway`).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_gateway::config::{Config, LogFormat, ENV_OVERRIDES};
use tracing_subscriber::EnvFilter;

const ABOUT: &str =
    "ferry's sync gateway: streams Postgres data to SQLite clients (PowerSync protocol)";

const LONG_ABOUT: &str = "\
ferry's sync gateway: authenticates clients by JWT and streams their buckets from a Postgres
database with the ferry extension, speaking the PowerSync sync protocol, so ferry clients and the
official PowerSync SDKs can sync from it. It is stateless: run as many as you like.

Quick start:
  1. Install the ferry extension in your database and deploy sync rules
     (SELECT ferry.deploy_rules($$...$$)). Check rules first with:
         ferry-gateway rules check sync-rules.yaml
  2. Write a config file (or use environment variables only), e.g. gateway.yaml:
         listen: 0.0.0.0:8080
         postgres:
           url: postgres://ferry_gateway:secret@db:5432/app
         auth:
           audiences: [my-app]
           jwks_url: https://auth.example.com/.well-known/jwks.json
           # or: jwks_file: /etc/ferry/jwks.json
           # or an inline JWKS; HMAC secrets are `kty: oct` keys:
           # jwks: {keys: [{kty: oct, alg: HS256, k: <base64url secret>}]}
  3. Run:  ferry-gateway --config gateway.yaml serve
     Clients connect to http://<host>:8080 with `Authorization: Bearer <jwt>`; the JWT needs
     sub, iat, exp (at most a day after iat) and an aud from auth.audiences.

Endpoints: POST /sync/stream, GET /write-checkpoint2.json, POST /sync/checkpoint-request,
GET /probes/liveness, GET /probes/readiness, GET /metrics, and POST /api/crud when
write.enabled is true (off by default; for apps without their own backend).

SIGTERM or Ctrl-C: open streams end (clients reconnect elsewhere), then the process exits.";

#[derive(Debug, Parser)]
#[command(name = "ferry-gateway", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = env_help())]
struct Cli {
    /// The YAML config file. Environment variables FERRY_* override its settings.
    #[arg(long, short, env = "FERRY_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGTERM/Ctrl-C.
    Serve,
    /// Work with sync rules files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate a sync rules YAML file offline; prints FILE:LINE:COLUMN: errors and exits 1 if
    /// it has any.
    Check {
        /// The sync rules file.
        file: PathBuf,
    },
}

fn env_help() -> String {
    let mut text = String::from("Environment overrides (each replaces one config setting):\n");
    for spec in ENV_OVERRIDES {
        text.push_str(&format!("  {:<42} {}\n", spec.env, spec.path.join(".")));
    }
    text.push_str(
        "  FERRY_CONFIG                               the config file (same as --config)\n  \
         RUST_LOG                                   log filter, wins over log.level\n",
    );
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rules {
            command: RulesCommand::Check { file },
        } => match ferry_gateway::rules_check::check_file(&file) {
            Ok(check) => {
                print!("{}", check.report);
                if check.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                ExitCode::from(2)
            }
        },
        Command::Serve => match serve(cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferry-gateway: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config =
        Config::load(config_path.as_deref(), std::env::vars()).context("invalid configuration")?;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        ferry_gateway::serve(config, shutdown_signal())
            .await
            .context("cannot start the gateway")
    });
    // Do not wait for idle worker threads (e.g. a pending DNS lookup) before exiting.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

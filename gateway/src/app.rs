//! Assembling the gateway: [`AppState`] (config, keys, pool, checkpoint watcher, limits),
//! [`app`] (the axum `Router` with every route), and [`start`] / [`serve`], which bind the
//! listener and run until shutdown. Kept apart from `main.rs` so tests can start a gateway on
//! `127.0.0.1:0` in-process:
//!
//! ```no_run
//! # async fn demo(auth: ferry_gateway::config::AuthConfig) -> Result<(), ferry_gateway::app::StartError> {
//! let config = ferry_gateway::Config::new("postgres://ferry_gateway@127.0.0.1:5432/app", auth);
//! let gateway = ferry_gateway::start(config).await?;
//! let base = format!("http://{}", gateway.local_addr());
//! // ... run clients against `base` ...
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::auth::jwks::KeySourceError;
use crate::auth::Authenticator;
use crate::checkpoint_watch::{self, WatchState};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::error::GatewayError;
use crate::routes;

/// Largest upload accepted by the write endpoint.
const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// How long shutdown waits for connections to close after streams were told to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything the routes share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// The database.
    pub db: Db,
    /// The process's checkpoint watcher.
    pub watch: watch::Receiver<Arc<WatchState>>,
    /// Turns true when the process shuts down; streams end.
    pub shutdown: watch::Receiver<bool>,
    /// One permit per open stream (`limits.max_streams`).
    pub stream_slots: Arc<Semaphore>,
    /// `write.tables` as the JSON object `ferry.apply_upload` takes.
    pub write_tables: Arc<Value>,
}

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeySourceError),
    /// The pool could not be built (bad URL).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
}

impl AppState {
    /// Loads keys (fetching the JWKS URL once), builds the pool and starts the checkpoint
    /// watcher. Postgres need not be reachable yet: the watcher retries, readiness says so.
    pub async fn new(
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<AppState, StartError> {
        let auth = Authenticator::from_config(&config.auth)?;
        auth.prefetch().await;
        let db = Db::new(&config)?;
        let watch = checkpoint_watch::spawn(
            db.clone(),
            config.limits.shared_ops_per_checkpoint,
            shutdown.clone(),
        );
        let write_tables = Value::Object(
            config
                .write
                .tables
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(qualified_table(v))))
                .collect(),
        );
        Ok(AppState {
            stream_slots: Arc::new(Semaphore::new(config.limits.max_streams)),
            config: Arc::new(config),
            auth: Arc::new(auth),
            db,
            watch,
            shutdown,
            write_tables: Arc::new(write_tables),
        })
    }
}

/// `schema.table` as configured, or `public.table` for a bare name: `ferry.apply_upload` runs
/// with a fixed `search_path` and resolves only qualified names.
pub fn qualified_table(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("public.{name}")
    }
}

/// The router with every route of the gateway.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/sync/stream", post(routes::sync_stream::sync_stream))
        .route(
            "/write-checkpoint2.json",
            get(routes::write_checkpoint::write_checkpoint2),
        )
        .route(
            "/sync/checkpoint-request",
            post(routes::write_checkpoint::checkpoint_request),
        )
        .route("/probes/liveness", get(routes::probes::liveness))
        .route("/probes/readiness", get(routes::probes::readiness))
        .route("/probes/startup", get(routes::probes::readiness))
        .route("/metrics", get(routes::metrics::metrics));
    if state.config.write.enabled {
        router = router.route(
            routes::write_endpoint::PATH,
            post(routes::write_endpoint::apply_crud).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        );
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(uri: Uri) -> GatewayError {
    GatewayError::NotFound(uri.path().to_owned())
}

async fn method_not_allowed(uri: Uri) -> GatewayError {
    GatewayError::MethodNotAllowed(uri.path().to_owned())
}

/// Completes when `shutdown` turns true (or its sender is gone).
pub async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A gateway running in this process (see [`start`]).
#[derive(Debug)]
pub struct RunningGateway {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<Result<(), std::io::Error>>,
}

impl RunningGateway {
    /// The address it listens on (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Ends every stream, stops accepting connections and waits (bounded) for the server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.server).await;
    }
}

/// Binds `config.listen` and serves in a background task until [`RunningGateway::shutdown`].
pub async fn start(config: Config) -> Result<RunningGateway, StartError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let addr = config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind {
            addr,
            message: e.to_string(),
        })?;
    let local_addr = listener.local_addr().map_err(|e| StartError::Bind {
        addr,
        message: e.to_string(),
    })?;
    let state = AppState::new(config, shutdown_rx.clone()).await?;
    let router = app(state);
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { wait_for_shutdown(&mut stop).await })
            .await
    });
    tracing::info!(addr = %local_addr, "ferry gateway listening");
    Ok(RunningGateway {
        local_addr,
        shutdown: shutdown_tx,
        server,
    })
}

/// Runs the gateway until `signal` completes (e.g. SIGTERM), then shuts down gracefully.
pub async fn serve(config: Config, signal: impl Future<Output = ()>) -> Result<(), StartError> {
    let gateway = start(config).await?;
    signal.await;
    tracing::info!("shutting down: ending streams and closing connections");
    gateway.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

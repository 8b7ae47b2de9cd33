//! ferry-gateway: the stateless sync server. It authenticates clients by JWT and streams their
//! buckets with the PowerSync sync protocol (PROTOCOL.md §3), reading everything through the
//! ferry extension's SQL functions (sql/API.md); any number of replicas can run side by side.
//!
//! | module | holds |
//! | --- | --- |
//! | [`config`] | the YAML config and its `FERRY_*` environment overrides |
//! | [`app`] | shared state, the router, `start`/`serve` (what tests and `main` call) |
//! | [`routes`] | one module per HTTP endpoint |
//! | [`auth`] | JWT verification, keys and JWKS sources |
//! | [`stream`] | the per-connection sync stream engine |
//! | [`checkpoint_watch`] | the per-process LISTEN task sharing each checkpoint with all streams |
//! | [`db`] | the connection pool and the typed SQL API calls (the only SQL in the gateway) |
//! | [`error`] | errors → the §3.8 error envelope |
//! | [`metrics`] | Prometheus counters and gauges |
//! | [`rules_check`] | `ferry-gateway rules check FILE` |
//!
//! Wire messages come from `ferry-protocol`; nothing here defines a second copy.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod checkpoint_watch;
pub mod config;
pub mod db;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod rules_check;
pub mod stream;

pub use app::{app, serve, start, AppState, RunningGateway};
pub use config::Config;
pub use error::GatewayError;

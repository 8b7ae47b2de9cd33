//! ferry's end-to-end test harness.
//!
//! Tests in this crate run against real things: a throwaway Postgres cluster with the ferry extension
//! installed ([`cluster`]), one fresh database per test ([`database`]), deadlines instead of sleeps
//! ([`wait`]), and a custom test main ([`runner`]) that tears every cluster down even when tests fail.
//!
//! Test tiers: unit tests live in each crate; this crate holds the end-to-end tier (extension,
//! gateway, client) and the benchmark binary.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cluster;
pub mod database;
pub mod ferry_sql;
pub mod gateway;
pub mod runner;
pub mod wait;
pub mod workspace;

pub use cluster::{Cluster, ClusterOptions, StopMode};
pub use database::TestDb;
pub use runner::{block_on, shared_cluster};
pub use wait::wait_until;

//! The custom test main of every end-to-end test binary.
//!
//! A `static` is never dropped in Rust, so a cluster shared by the tests of one binary cannot be
//! cleaned up by a destructor alone. Each binary instead declares `harness = false` and calls
//! [`run`] with its tests: the shared cluster starts on first use and is stopped and removed after
//! the last test, whatever the tests' outcome. Per-test resources (databases, slots, clusters of
//! restart tests) are guards dropped while a failing test unwinds.

use std::future::Future;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::cluster::{Cluster, ClusterOptions};

static SHARED: Mutex<Option<Arc<Cluster>>> = Mutex::new(None);

/// The cluster shared by the tests of this binary (no applier worker: tests call
/// `ferry.advance()`), started on first use.
pub fn shared_cluster() -> anyhow::Result<Arc<Cluster>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.as_ref() {
        return Ok(cluster.clone());
    }
    let cluster = Arc::new(Cluster::start(ClusterOptions::default())?);
    *shared = Some(cluster.clone());
    Ok(cluster)
}

/// Runs `future` to completion on a fresh multi-threaded runtime.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(future)
}

/// A test: a name and an async body returning `anyhow::Result<()>`.
pub fn test<F, Fut>(name: &str, body: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    Trial::test(name, move || {
        block_on(body()).map_err(|e| Failed::from(format!("{e:#}")))
    })
}

/// Runs `trials` with the standard test-runner command line, then tears the shared cluster down
/// and exits with the run's status.
pub fn run(trials: Vec<Trial>) -> ! {
    let args = Arguments::from_args();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(cluster) = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // A test thread may still hold a clone; destroy explicitly rather than rely on the last drop.
        cluster.destroy();
    }
    conclusion.exit()
}

//! The open-file limit of the benchmark process: [`raise_to_hard_limit`] lifts the soft
//! `RLIMIT_NOFILE` to the hard limit at startup, so that figures holding thousands of streams
//! open (a socket each in the benchmark and in the gateway process, which inherits the limit)
//! do not run out of file descriptors. `scripts/test.sh` runs `ulimit -n 65536`, but the
//! benchmark may be run directly.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft open-file limit to the hard limit and returns the soft limit now in force
/// (`None`: unlimited).
pub fn raise_to_hard_limit() -> anyhow::Result<Option<u64>> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )
        .map_err(|e| anyhow::anyhow!("raising RLIMIT_NOFILE to {:?}: {e}", limit.maximum))?;
    }
    Ok(getrlimit(Resource::Nofile).current)
}

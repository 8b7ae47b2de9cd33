//! The machine a run measured: cores, CPU, memory, Postgres version, the ferry build installed
//! in it, the source revision, and the load average before and after the run (figures of a run
//! on a loaded machine are noisy; the report says so).
//!
//! Read from `/proc`, `git`, and SQL on one of the run's clusters. Measuring figures is not done
//! here.

use std::fmt::Write as _;
use std::process::Command;

use crate::database::TestDb;
use crate::workspace;

/// What a report says about the machine.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// `MemTotal` of `/proc/meminfo`, in KiB.
    pub memory_kib: u64,
    /// `server_version` of the run's clusters.
    pub postgres: String,
    /// When the installed ferry library was built (its file's modification time).
    pub ferry_library: String,
    /// `git describe` of the repository, with a mark when the tree has uncommitted changes.
    pub revision: String,
    /// `/proc/loadavg` when the run started.
    pub load_before: String,
    /// `/proc/loadavg` when the run ended.
    pub load_after: String,
}

impl Machine {
    /// What can be read without a cluster.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            memory_kib,
            revision: revision(),
            load_before: load_average(),
            ..Machine::default()
        }
    }

    /// Fills in the Postgres version and the ferry library's build time from a run's database.
    pub async fn read_server(&mut self, db: &TestDb) -> anyhow::Result<()> {
        let row = db
            .query_one(
                "SELECT current_setting('server_version'), \
                        (SELECT to_char((pg_stat_file(setting || '/ferry.so', true)).modification AT TIME ZONE 'UTC', \
                                        'YYYY-MM-DD HH24:MI:SS \"UTC\"') \
                         FROM pg_config WHERE name = 'PKGLIBDIR')",
                &[],
            )
            .await?;
        self.postgres = row.get(0);
        self.ferry_library = row
            .get::<_, Option<String>>(1)
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(())
    }

    /// The machine section of a report.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "- cores: {} ({})", self.cores, self.cpu);
        let _ = writeln!(
            md,
            "- memory: {:.1} GiB",
            self.memory_kib as f64 / (1024.0 * 1024.0)
        );
        let _ = writeln!(md, "- Postgres: {}", self.postgres);
        let _ = writeln!(md, "- ferry library built: {}", self.ferry_library);
        let _ = writeln!(md, "- source: {}", self.revision);
        let _ = writeln!(
            md,
            "- load average (1, 5, 15 min): {} at start, {} at end",
            self.load_before, self.load_after
        );
        md
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn revision() -> String {
    let root = workspace::root();
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{head} with uncommitted changes")
            } else {
                head
            }
        }
        None => "unknown".to_owned(),
    }
}

//! What a benchmark run reports: each [`Measurement`] (ferry's value, the raw limit measured in
//! the same run, their ratio, the target) and the Markdown document of a whole run ([`Report`]).
//!
//! Figures are reported, never turned into pass/fail gates: the "meets" column says whether a
//! target was reached on this machine in this run, and the run still succeeds when it was not.
//! Measuring is not done here: see [`super::figures`] and [`super::raw`].

use std::fmt::{self, Display, Write as _};

use super::machine::Machine;

/// The unit of a measured value, which also says how to print it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// A rate: "things per second", with the name of the things (`"row changes"`).
    PerSecond(&'static str),
    /// A duration in milliseconds (latencies).
    Milliseconds,
    /// A duration in seconds (how long a whole operation took).
    Seconds,
    /// An amount of memory in MiB.
    Mebibytes,
    /// An amount of memory in KiB (small per-item amounts, e.g. per stream).
    Kibibytes,
    /// A number of things, with the name of the things (`"streams"`).
    Count(&'static str),
}

/// A value with its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// The number, in `unit`.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Quantity {
    /// A rate of `what` per second: `count` things in `seconds`.
    pub fn rate(count: f64, seconds: f64, what: &'static str) -> Quantity {
        Quantity {
            value: if seconds > 0.0 {
                count / seconds
            } else {
                f64::INFINITY
            },
            unit: Unit::PerSecond(what),
        }
    }

    /// A duration in milliseconds.
    pub fn millis(ms: f64) -> Quantity {
        Quantity {
            value: ms,
            unit: Unit::Milliseconds,
        }
    }

    /// A duration in seconds.
    pub fn seconds(s: f64) -> Quantity {
        Quantity {
            value: s,
            unit: Unit::Seconds,
        }
    }

    /// An amount of memory given in KiB (as `/proc/<pid>/status` gives it), shown in MiB.
    pub fn kib(kib: u64) -> Quantity {
        Quantity {
            value: kib as f64 / 1024.0,
            unit: Unit::Mebibytes,
        }
    }

    /// A small amount of memory in KiB, shown in KiB (fractions kept).
    pub fn kibibytes(kib: f64) -> Quantity {
        Quantity {
            value: kib,
            unit: Unit::Kibibytes,
        }
    }

    /// A number of `what`.
    pub fn count(count: f64, what: &'static str) -> Quantity {
        Quantity {
            value: count,
            unit: Unit::Count(what),
        }
    }
}

impl Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Unit::PerSecond(what) => write!(f, "{} {what}/s", thousands(self.value)),
            Unit::Milliseconds if self.value < 10.0 => write!(f, "{:.2} ms", self.value),
            Unit::Milliseconds => write!(f, "{:.1} ms", self.value),
            Unit::Seconds => write!(f, "{:.1} s", self.value),
            Unit::Mebibytes => write!(f, "{:.0} MiB", self.value),
            Unit::Kibibytes => write!(f, "{:.1} KiB", self.value),
            Unit::Count(what) => write!(f, "{} {what}", thousands(self.value)),
        }
    }
}

/// `1234567.8` → `"1,234,568"`.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "∞".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// The raw limit a figure is compared with, measured in the same run (DESIGN.md, "Quality
/// bars": raw decode, COPY out, raw SQLite insert).
#[derive(Debug, Clone, PartialEq)]
pub struct RawLimit {
    /// Which raw limit (`"raw decode"`, `"COPY out"`, …).
    pub name: &'static str,
    /// Its value, in the same unit as ferry's.
    pub value: Quantity,
}

/// A target from the issue, printed beside the figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The value must be at least this (in the figure's unit).
    AtLeast(f64),
    /// The value must be at most this (in the figure's unit).
    AtMost(f64),
    /// The value must be at least this fraction of the raw limit.
    AtLeastFractionOfRaw(f64),
}

impl Target {
    fn describe(self, unit: Unit) -> String {
        match (self, unit) {
            (Target::AtLeast(v), Unit::PerSecond(_)) => format!("≥ {}/s", thousands(v)),
            (Target::AtMost(v), Unit::PerSecond(_)) => format!("≤ {}/s", thousands(v)),
            (Target::AtLeast(v), u) => format!("≥ {}", Quantity { value: v, unit: u }),
            (Target::AtMost(v), u) => format!("≤ {}", Quantity { value: v, unit: u }),
            (Target::AtLeastFractionOfRaw(x), _) => format!("≥ {x} × raw"),
        }
    }

    /// Whether `value` meets the target; `None` when it needs a raw limit that is missing.
    fn met(self, value: f64, raw: Option<f64>) -> Option<bool> {
        match self {
            Target::AtLeast(v) => Some(value >= v),
            Target::AtMost(v) => Some(value <= v),
            Target::AtLeastFractionOfRaw(x) => raw.map(|r| value >= x * r),
        }
    }
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// What was measured, with its size (`"Bulk ingest: 1,000,000 row changes in 10 transactions"`).
    pub figure: String,
    /// ferry's value.
    pub value: Quantity,
    /// The raw limit of the same work in the same run, when the figure has one.
    pub raw: Option<RawLimit>,
    /// The targets, all of which must hold.
    pub targets: Vec<Target>,
    /// A point of comparison measured elsewhere (e.g. PowerSync on this machine), for scale.
    pub reference: Option<String>,
}

impl Measurement {
    /// A measurement without raw limit, targets or reference.
    pub fn new(figure: impl Into<String>, value: Quantity) -> Measurement {
        Measurement {
            figure: figure.into(),
            value,
            raw: None,
            targets: Vec::new(),
            reference: None,
        }
    }

    /// With the raw limit measured in the same run.
    pub fn raw(mut self, name: &'static str, value: Quantity) -> Measurement {
        self.raw = Some(RawLimit { name, value });
        self
    }

    /// With one more target.
    pub fn target(mut self, target: Target) -> Measurement {
        self.targets.push(target);
        self
    }

    /// With a point of comparison measured elsewhere.
    pub fn reference(mut self, reference: impl Into<String>) -> Measurement {
        self.reference = Some(reference.into());
        self
    }

    /// ferry's value divided by the raw limit's.
    pub fn ratio(&self) -> Option<f64> {
        let raw = self.raw.as_ref()?;
        (raw.value.value > 0.0).then(|| self.value.value / raw.value.value)
    }

    /// Whether every target is met; `None` without targets.
    pub fn meets(&self) -> Option<bool> {
        if self.targets.is_empty() {
            return None;
        }
        let raw = self.raw.as_ref().map(|r| r.value.value);
        let mut all = true;
        for t in &self.targets {
            all &= t.met(self.value.value, raw)?;
        }
        Some(all)
    }
}

/// What one figure produced: its rows and free-text details (phase timings, private memory…).
#[derive(Debug, Clone, Default)]
pub struct FigureOutcome {
    /// Rows of the results table.
    pub measurements: Vec<Measurement>,
    /// Details printed under the table.
    pub notes: Vec<String>,
}

/// A whole run: the machine, the command, every figure's outcome or error.
#[derive(Debug, Default)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// Full or quick sizes.
    pub sizes: String,
    /// The machine and its load.
    pub machine: Machine,
    /// Per figure (by name): its outcome, or the error that stopped it.
    pub figures: Vec<(String, Result<FigureOutcome, String>)>,
}

impl Report {
    /// The run as a Markdown document.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# ferry benchmark run\n");
        let _ = writeln!(md, "`{}` ({} sizes)\n", self.command, self.sizes);
        let _ = writeln!(
            md,
            "| figure | ferry | raw limit (same run) | ferry / raw | target | meets |\n| --- | ---: | ---: | ---: | --- | --- |"
        );
        for (_, outcome) in &self.figures {
            let Ok(outcome) = outcome else { continue };
            for m in &outcome.measurements {
                let raw = m
                    .raw
                    .as_ref()
                    .map_or("—".to_owned(), |r| format!("{}: {}", r.name, r.value));
                let ratio = m.ratio().map_or("—".to_owned(), |r| format!("{r:.2}"));
                let mut target = m
                    .targets
                    .iter()
                    .map(|t| t.describe(m.value.unit))
                    .collect::<Vec<_>>()
                    .join(" and ");
                if let Some(reference) = &m.reference {
                    if !target.is_empty() {
                        target.push_str("; ");
                    }
                    target.push_str(&format!("(for scale: {reference})"));
                }
                if target.is_empty() {
                    target = "—".to_owned();
                }
                let meets = match m.meets() {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {raw} | {ratio} | {target} | {meets} |",
                    m.figure, m.value
                );
            }
        }
        let _ = writeln!(md, "\n## Machine\n\n{}", self.machine.to_markdown());
        let _ = writeln!(md, "## Details\n");
        for (name, outcome) in &self.figures {
            match outcome {
                Ok(outcome) => {
                    for note in &outcome.notes {
                        let _ = writeln!(md, "- `{name}`: {note}");
                    }
                }
                Err(e) => {
                    let _ = writeln!(md, "- `{name}`: **failed**: {e}");
                }
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn ratio_and_targets_use_the_raw_limit_of_the_same_run() {
        let m = Measurement::new("x", Quantity::rate(60_000.0, 1.0, "row changes"))
            .raw("raw decode", Quantity::rate(100_000.0, 1.0, "row changes"))
            .target(Target::AtLeast(50_000.0))
            .target(Target::AtLeastFractionOfRaw(0.5));
        assert_eq!(m.ratio(), Some(0.6));
        assert_eq!(m.meets(), Some(true));
        let slow = Measurement {
            value: Quantity::rate(40_000.0, 1.0, "row changes"),
            ..m
        };
        assert_eq!(slow.meets(), Some(false));
        let latency = Measurement::new("lag", Quantity::millis(4.0)).target(Target::AtMost(10.0));
        assert_eq!(latency.meets(), Some(true));
        assert_eq!(latency.ratio(), None);
    }

    #[test]
    fn counts_and_small_memory_print_with_their_unit() {
        assert_eq!(
            Quantity::count(10_000.0, "streams").to_string(),
            "10,000 streams"
        );
        assert_eq!(Quantity::kibibytes(12.34).to_string(), "12.3 KiB");
        let m = Measurement::new("n", Quantity::count(9_000.0, "streams"))
            .target(Target::AtLeast(10_000.0));
        assert_eq!(m.meets(), Some(false));
        assert_eq!(
            Target::AtLeast(10_000.0).describe(Unit::Count("streams")),
            "≥ 10,000 streams"
        );
    }
}

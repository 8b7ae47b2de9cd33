//! `ferry-gateway rules check FILE`: validates a sync rules file offline with ferry-rules (the
//! same compiler the extension's `ferry.deploy_rules` uses) and reports every problem as
//! `FILE:LINE:COLUMN: message`, like a compiler. Needs no database, so it fits CI and editors.
//! Tables are not checked against a database here; `deploy_rules` does that.

use std::fmt::Write as _;
use std::path::Path;

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesCheck {
    /// Whether the rules compile.
    pub ok: bool,
    /// What to print: errors (or a summary) and warnings, one per line.
    pub report: String,
}

fn prefixed(file: &str, line: &str) -> String {
    if line.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{file}:{line}")
    } else {
        format!("{file}: {line}")
    }
}

/// Checks the rules text `yaml`; `file` names it in the report.
pub fn check_text(file: &str, yaml: &str) -> RulesCheck {
    let mut report = String::new();
    match ferry_rules::compile(yaml) {
        Ok(compiled) => {
            for warning in &compiled.warnings {
                let _ = writeln!(report, "{} (warning)", prefixed(file, &warning.to_string()));
            }
            let definitions: Vec<String> = compiled
                .plan
                .definitions()
                .map(|(name, priority)| format!("{name} (priority {priority})"))
                .collect();
            let _ = writeln!(
                report,
                "{file}: OK: {} bucket definition(s): {}",
                definitions.len(),
                definitions.join(", ")
            );
            RulesCheck { ok: true, report }
        }
        Err(errors) => {
            for line in errors.to_string().lines() {
                let _ = writeln!(report, "{}", prefixed(file, line));
            }
            for warning in &errors.warnings {
                let _ = writeln!(report, "{} (warning)", prefixed(file, &warning.to_string()));
            }
            let _ = writeln!(report, "{file}: {} error(s)", errors.errors.len());
            RulesCheck { ok: false, report }
        }
    }
}

/// Reads and checks a rules file.
pub fn check_file(path: &Path) -> Result<RulesCheck, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    Ok(check_text(&path.display().to_string(), &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rules_report_their_definitions() {
        let check = check_text(
            "rules.yaml",
            "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM settings\n",
        );
        assert!(check.ok, "{}", check.report);
        assert!(
            check
                .report
                .contains("rules.yaml: OK: 1 bucket definition(s): global"),
            "{}",
            check.report
        );
    }

    #[test]
    fn errors_are_positioned_with_the_file_name() {
        let check = check_text(
            "rules.yaml",
            "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM\n",
        );
        assert!(!check.ok);
        assert!(check.report.starts_with("rules.yaml:"), "{}", check.report);
        assert!(check.report.contains("error(s)"), "{}", check.report);
    }
}

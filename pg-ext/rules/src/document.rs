//! The structure of a sync rules document (PROTOCOL.md §1.1, §1.2): which keys exist and what
//! their values must be.
//!
//! Reads the positioned YAML tree from [`yaml`](crate::yaml) into [`RulesSource`]: the `config`
//! with defaults applied, and every bucket definition with its queries (still SQL text, with their
//! positions). Every structural problem is collected, not just the first. `streams`, edition 3 and
//! `event_definitions` are refused as "not supported yet". The SQL itself is compiled in
//! [`compile`](mod@crate::compile).

use crate::error::{Diagnostic, Position, QueryKind};
use crate::pg_convert::Precision;
use crate::plan::RulesConfig;
use crate::yaml::{Node, ScalarLoc};

/// A query string with where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuerySource {
    /// The SQL.
    pub text: String,
    /// Where its scalar is.
    pub loc: ScalarLoc,
}

/// One bucket definition as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DefinitionSource {
    /// Its name.
    pub name: String,
    /// Where the name is.
    pub position: Position,
    /// `parameters`; `None` when omitted (then the single query `SELECT`).
    pub parameters: Option<Vec<QuerySource>>,
    /// `data`.
    pub data: Vec<QuerySource>,
    /// `priority`.
    pub priority: Option<u8>,
    /// `accept_potentially_dangerous_queries`.
    pub accept_potentially_dangerous_queries: bool,
}

/// The whole document as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RulesSource {
    /// `config` with defaults.
    pub config: RulesConfig,
    /// `bucket_definitions`, in document order.
    pub definitions: Vec<DefinitionSource>,
}

const TOP_LEVEL_KEYS: &str = "bucket_definitions and config";
const DEFINITION_KEYS: &str = "parameters, data, priority and accept_potentially_dangerous_queries";
const CONFIG_KEYS: &str = "edition, storage_version, timestamps_iso8601, versioned_bucket_ids, fixed_json_extract, custom_postgres_types and timestamp_max_precision";

/// Reads the document; problems go to `errors`.
pub(crate) fn read(root: Option<&Node>, errors: &mut Vec<Diagnostic>) -> RulesSource {
    let mut source = RulesSource::default();
    let Some(root) = root else {
        errors.push(
            Diagnostic::new("the sync rules document is empty")
                .with_hint("start with `bucket_definitions:` and define at least one bucket"),
        );
        return source;
    };
    let Node::Mapping { entries, .. } = root else {
        errors.push(
            Diagnostic::new(format!(
                "the sync rules document must be a mapping, found {}",
                root.kind_name()
            ))
            .at(Some(root.position()))
            .with_hint("start with `bucket_definitions:`"),
        );
        return source;
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut bucket_definitions = None;
    let mut config = None;
    for (key, value) in entries {
        let Some(name) = key.as_scalar().map(|(v, _)| v) else {
            errors.push(
                Diagnostic::new("top-level keys must be plain names").at(Some(key.position())),
            );
            continue;
        };
        if seen.contains(&name) {
            errors.push(
                Diagnostic::new(format!("duplicate top-level key '{name}'"))
                    .at(Some(key.position())),
            );
            continue;
        }
        seen.push(name);
        match name {
            "bucket_definitions" => bucket_definitions = Some(value),
            "config" => config = Some(value),
            "streams" => errors.push(
                Diagnostic::new("Sync Streams (`streams`) are not supported yet")
                    .at(Some(key.position()))
                    .with_hint("write the streams as bucket_definitions"),
            ),
            "event_definitions" => errors.push(
                Diagnostic::new("`event_definitions` are not supported yet")
                    .at(Some(key.position()))
                    .with_hint("remove them; write checkpoints work without them"),
            ),
            "with" => errors.push(
                Diagnostic::new("`with` (common table expressions) is not supported yet")
                    .at(Some(key.position()))
                    .with_hint("it needs config edition 3 (Sync Streams); inline the queries"),
            ),
            other => errors.push(
                Diagnostic::new(format!("unknown top-level key '{other}'"))
                    .at(Some(key.position()))
                    .with_hint(format!("the allowed keys are {TOP_LEVEL_KEYS}")),
            ),
        }
    }
    if let Some(config) = config {
        source.config = read_config(config, errors);
    }
    match bucket_definitions {
        None => {
            if !seen.contains(&"streams") {
                errors.push(
                    Diagnostic::new("`bucket_definitions` is required")
                        .at(Some(root.position()))
                        .with_hint("define at least one bucket under `bucket_definitions:`"),
                );
            }
        }
        Some(node) if node.is_null() => {}
        Some(Node::Mapping { entries, .. }) => {
            for (key, value) in entries {
                if let Some(definition) = read_definition(key, value, &source.definitions, errors) {
                    source.definitions.push(definition);
                }
            }
        }
        Some(other) => errors.push(
            Diagnostic::new(format!(
                "`bucket_definitions` must be a mapping of names to definitions, found {}",
                other.kind_name()
            ))
            .at(Some(other.position())),
        ),
    }
    source
}

fn read_config(node: &Node, errors: &mut Vec<Diagnostic>) -> RulesConfig {
    if node.is_null() {
        return RulesConfig::default();
    }
    let Node::Mapping { entries, .. } = node else {
        errors.push(
            Diagnostic::new(format!(
                "`config` must be a mapping, found {}",
                node.kind_name()
            ))
            .at(Some(node.position())),
        );
        return RulesConfig::default();
    };
    let lookup = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_scalar().is_some_and(|(v, _)| v == name))
    };
    let edition = match lookup("edition") {
        None => 1,
        Some((_, value)) => match value.as_integer() {
            Some(e @ 1..=2) => e as u8,
            Some(3) => {
                errors.push(
                    Diagnostic::new("config edition 3 is not supported yet")
                        .at(Some(value.position()))
                        .with_hint("use edition 1 or 2 with bucket_definitions"),
                );
                1
            }
            _ => {
                errors.push(
                    Diagnostic::new("config `edition` must be 1 or 2")
                        .at(Some(value.position()))
                        .with_hint("edition 3 (Sync Streams) is not supported yet"),
                );
                1
            }
        },
    };
    let mut config = RulesConfig::for_edition(edition);
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_scalar().map(|(v, _)| v) else {
            errors
                .push(Diagnostic::new("config keys must be plain names").at(Some(key.position())));
            continue;
        };
        if seen.contains(&name) {
            errors.push(
                Diagnostic::new(format!("duplicate config key '{name}'")).at(Some(key.position())),
            );
            continue;
        }
        seen.push(name);
        let flag = |errors: &mut Vec<Diagnostic>| -> Option<bool> {
            let b = value.as_bool();
            if b.is_none() {
                errors.push(
                    Diagnostic::new(format!("config `{name}` must be true or false"))
                        .at(Some(value.position())),
                );
            }
            b
        };
        match name {
            "edition" => {}
            "storage_version" => match value.as_integer() {
                Some(2 | 3) => {}
                _ => errors.push(
                    Diagnostic::new("config `storage_version` must be 2 or 3").at(Some(value.position())),
                ),
            },
            "timestamps_iso8601" => {
                if let Some(b) = flag(errors) {
                    config.timestamps_iso8601 = b;
                }
            }
            "versioned_bucket_ids" => {
                if let Some(b) = flag(errors) {
                    config.versioned_bucket_ids = b;
                }
            }
            "fixed_json_extract" => {
                if let Some(b) = flag(errors) {
                    config.fixed_json_extract = b;
                }
            }
            "custom_postgres_types" => {
                if let Some(b) = flag(errors) {
                    config.custom_postgres_types = b;
                }
            }
            "unstable_sqlite_expression_engine" => {
                if flag(errors) == Some(true) {
                    errors.push(
                        Diagnostic::new("`unstable_sqlite_expression_engine` is not supported")
                            .at(Some(value.position()))
                            .with_hint("it requires edition 3, which ferry does not support yet; remove it"),
                    );
                }
            }
            "timestamp_max_precision" => match value.as_str().and_then(Precision::from_name) {
                Some(p) => config.timestamp_max_precision = Some(p),
                None => errors.push(
                    Diagnostic::new("config `timestamp_max_precision` must be seconds, milliseconds, microseconds or nanoseconds")
                        .at(Some(value.position())),
                ),
            },
            other => errors.push(
                Diagnostic::new(format!("unknown config key '{other}'"))
                    .at(Some(key.position()))
                    .with_hint(format!("the allowed keys are {CONFIG_KEYS}")),
            ),
        }
    }
    if config.timestamp_max_precision.is_some() && !config.timestamps_iso8601 {
        let at = lookup("timestamp_max_precision").map(|(k, _)| k.position());
        errors.push(
            Diagnostic::new("`timestamp_max_precision` requires `timestamps_iso8601`")
                .at(at)
                .with_hint("set `timestamps_iso8601: true` or use `edition: 2`"),
        );
    }
    config
}

/// Reads `parameters` (a query or a list of queries) or `data` (a list of queries).
fn read_queries(
    node: &Node,
    definition: &str,
    kind: QueryKind,
    errors: &mut Vec<Diagnostic>,
) -> Vec<QuerySource> {
    let (key, word, expected) = match kind {
        QueryKind::Parameter => ("parameters", "parameter", "a query or a list of queries"),
        QueryKind::Data => ("data", "data", "a list of queries"),
    };
    let mut queries = Vec::new();
    let mut one =
        |item: &Node, errors: &mut Vec<Diagnostic>| match (item.as_str(), item.as_scalar()) {
            (Some(text), Some((_, loc))) => queries.push(QuerySource {
                text: text.to_owned(),
                loc: *loc,
            }),
            _ => errors.push(
                Diagnostic::new(format!(
                    "each {word} query must be an SQL string, found {}",
                    item.kind_name()
                ))
                .at(Some(item.position()))
                .in_definition(definition)
                .with_hint("quote the query, or write it as a `|` block"),
            ),
        };
    match node {
        Node::Sequence { items, .. } => {
            for item in items {
                one(item, errors);
            }
        }
        Node::Scalar { .. } if kind == QueryKind::Parameter => one(node, errors),
        other => errors.push(
            Diagnostic::new(format!(
                "`{key}` must be {expected}, found {}",
                other.kind_name()
            ))
            .at(Some(other.position()))
            .in_definition(definition)
            .with_hint("write each query as a list entry: `- SELECT …`"),
        ),
    }
    queries
}

fn read_definition(
    key: &Node,
    value: &Node,
    earlier: &[DefinitionSource],
    errors: &mut Vec<Diagnostic>,
) -> Option<DefinitionSource> {
    let Some((name, loc)) = key.as_scalar() else {
        errors.push(
            Diagnostic::new("bucket definition names must be plain names").at(Some(key.position())),
        );
        return None;
    };
    let position = loc.position;
    if name.is_empty() || name.contains(['[', ']', '#', '|', '"']) {
        errors.push(
            Diagnostic::new(format!("invalid bucket definition name '{name}'"))
                .at(Some(position))
                .with_hint("use letters, digits and underscores; '[', ']', '#', '|' and '\"' have a meaning in bucket ids"),
        );
        return None;
    }
    if earlier.iter().any(|d| d.name == name) {
        errors.push(
            Diagnostic::new(format!("duplicate bucket definition '{name}'"))
                .at(Some(position))
                .with_hint("give each definition its own name"),
        );
        return None;
    }
    let Node::Mapping { entries, .. } = value else {
        errors.push(
            Diagnostic::new(format!(
                "bucket definition must be a mapping with `data`, found {}",
                value.kind_name()
            ))
            .at(Some(value.position()))
            .in_definition(name),
        );
        return None;
    };
    let mut definition = DefinitionSource {
        name: name.to_owned(),
        position,
        parameters: None,
        data: Vec::new(),
        priority: None,
        accept_potentially_dangerous_queries: false,
    };
    let mut has_data = false;
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in entries {
        let Some(key_name) = k.as_scalar().map(|(s, _)| s) else {
            errors.push(
                Diagnostic::new("keys must be plain names")
                    .at(Some(k.position()))
                    .in_definition(name),
            );
            continue;
        };
        if seen.contains(&key_name) {
            errors.push(
                Diagnostic::new(format!("duplicate key '{key_name}'"))
                    .at(Some(k.position()))
                    .in_definition(name),
            );
            continue;
        }
        seen.push(key_name);
        match key_name {
            "parameters" => {
                if !v.is_null() {
                    definition.parameters =
                        Some(read_queries(v, name, QueryKind::Parameter, errors));
                }
            }
            "data" => {
                has_data = true;
                if !v.is_null() {
                    definition.data = read_queries(v, name, QueryKind::Data, errors);
                }
            }
            "priority" => match v.as_integer() {
                Some(p @ 0..=3) => definition.priority = Some(p as u8),
                _ => errors.push(
                    Diagnostic::new(
                        "invalid priority, expected a number between 0 and 3 (inclusive)",
                    )
                    .at(Some(v.position()))
                    .in_definition(name)
                    .with_hint("0 is synced first, 3 (the default) last"),
                ),
            },
            "accept_potentially_dangerous_queries" => match v.as_bool() {
                Some(b) => definition.accept_potentially_dangerous_queries = b,
                None => errors.push(
                    Diagnostic::new("`accept_potentially_dangerous_queries` must be true or false")
                        .at(Some(v.position()))
                        .in_definition(name),
                ),
            },
            other => errors.push(
                Diagnostic::new(format!("unknown key '{other}'"))
                    .at(Some(k.position()))
                    .in_definition(name)
                    .with_hint(format!("the allowed keys are {DEFINITION_KEYS}")),
            ),
        }
    }
    if !has_data {
        errors.push(
            Diagnostic::new("a bucket definition needs `data`")
                .at(Some(position))
                .in_definition(name)
                .with_hint("add `data:` with a list of queries, e.g. `- SELECT * FROM todos`"),
        );
    }
    Some(definition)
}

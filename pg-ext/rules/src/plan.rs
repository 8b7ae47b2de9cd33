//! The compiled, serializable form of a sync rules document: [`Plan`].
//!
//! A plan is what [`compile`](fn@crate::compile) produces and what the extension stores (as JSON, see
//! [`Plan::to_json`] / [`Plan::from_json`]) and evaluates for every replicated row and every sync
//! request. It is made only of ferry's own types — never sqlparser's — so a stored plan survives
//! sqlparser upgrades. Queries are indexed by source table when the plan is built or loaded, so
//! evaluating a row only looks at the queries that read its table. Evaluation itself lives in
//! [`eval_row`](crate::eval_row), [`eval_parameters`](crate::eval_parameters) and
//! [`resolve`](crate::resolve).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::PlanLoadError;
use crate::expr::Expr;
use crate::filter::Filter;
use crate::functions::FunctionOptions;
use crate::pg_convert::{Precision, ValueOptions};
use crate::table_ref::TableRef;

/// Format number of the stored JSON; bumped on every incompatible change of the plan types.
pub const PLAN_FORMAT: u32 = 1;

/// The bucket priority used when a definition sets none (PROTOCOL.md §1.2).
pub const DEFAULT_PRIORITY: u8 = 3;

/// The document's `config` section with every default applied (PROTOCOL.md §1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesConfig {
    /// `edition`: 1 (default) or 2.
    pub edition: u8,
    /// `timestamps_iso8601` (default: on from edition 2).
    pub timestamps_iso8601: bool,
    /// `versioned_bucket_ids` (default: on from edition 2). ferry versions bucket ids whenever the
    /// caller passes a version; this only records what the document asked for.
    pub versioned_bucket_ids: bool,
    /// `fixed_json_extract` (default: on from edition 2).
    pub fixed_json_extract: bool,
    /// `custom_postgres_types` (default: on from edition 2).
    pub custom_postgres_types: bool,
    /// `timestamp_max_precision`, when set.
    pub timestamp_max_precision: Option<Precision>,
}

impl RulesConfig {
    /// The defaults of `edition`.
    pub fn for_edition(edition: u8) -> Self {
        let modern = edition >= 2;
        RulesConfig {
            edition,
            timestamps_iso8601: modern,
            versioned_bucket_ids: modern,
            fixed_json_extract: modern,
            custom_postgres_types: modern,
            timestamp_max_precision: None,
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig::for_edition(1)
    }
}

/// One bucket definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Definition {
    /// The definition's name (the bucket id prefix).
    pub name: String,
    /// `priority` from the YAML, if set.
    pub priority: Option<u8>,
    /// Bucket parameter names, in bucket id order.
    pub bucket_parameters: Vec<String>,
    /// Indexes into [`Plan::parameter_queries`].
    pub parameter_queries: Vec<usize>,
    /// Indexes into [`Plan::data_queries`].
    pub data_queries: Vec<usize>,
}

/// One output column of a data query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OutputColumn {
    /// `*` (or `alias.*`): every source column not starting with `_`, unless already output.
    All,
    /// `expr AS name`, or a plain column.
    Expr {
        /// Output name.
        name: String,
        /// Value.
        expr: Expr,
    },
}

/// One data query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DataQuery {
    /// Index into [`Plan::definitions`].
    pub definition: usize,
    /// 1-based position in the definition's `data` list.
    pub index: usize,
    /// The source table (or pattern).
    pub table: TableRef,
    /// `object_type` of the rows; `None` for an unaliased pattern (then the actual table name).
    pub object_type: Option<String>,
    /// Output columns, in order.
    pub columns: Vec<OutputColumn>,
    /// `WHERE`, over the definition's bucket parameters as inputs.
    pub filter: Filter,
}

/// How a request-side lookup value is used (table parameter queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InputKind {
    /// The value itself is looked up.
    Value,
    /// The value is a JSON array; each element is looked up.
    Expanding,
    /// A condition on request values; looked up as 1 when true, no lookup when false.
    Boolean,
}

/// A request-side lookup value of a table parameter query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Input {
    /// Evaluated against the request.
    pub expr: Expr,
    /// How it is looked up.
    pub kind: InputKind,
}

/// Where a bucket parameter's value comes from, for one parameter query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ParameterValue {
    /// Computed from the request (and the `json_each` element) at request time.
    Request(Expr),
    /// Stored with the lookup at replication time, under this name.
    Stored(String),
}

/// The three shapes of parameter query (PROTOCOL.md §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ParameterQueryKind {
    /// No `FROM`: one bucket from request data, if the condition holds.
    Static {
        /// `WHERE`, over request values.
        condition: Option<Expr>,
    },
    /// `FROM json_each(<request expression>)`: one bucket per element that passes the condition.
    JsonEach {
        /// The JSON array or object to iterate.
        source: Expr,
        /// `WHERE`, over request values and the element.
        condition: Option<Expr>,
    },
    /// `FROM <table>`: evaluated per row at replication time into lookups.
    Table {
        /// The table.
        table: TableRef,
        /// `WHERE`, over the request-side inputs.
        filter: Filter,
        /// The request-side lookup values, in lookup order.
        inputs: Vec<Input>,
        /// Lookup extractors: values stored per matching row.
        stored: Vec<(String, Expr)>,
    },
}

/// One parameter query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParameterQuery {
    /// Index into [`Plan::definitions`].
    pub definition: usize,
    /// 1-based position in the definition's `parameters` list.
    pub index: usize,
    /// Query id used in lookups (`"1"`, `"2"`, …).
    pub id: String,
    /// `_priority` output, if any.
    pub priority: Option<u8>,
    /// Shape.
    pub kind: ParameterQueryKind,
    /// One entry per bucket parameter of the definition, in bucket id order.
    pub bucket_parameters: Vec<ParameterValue>,
}

/// The queries reading one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TableQueries {
    /// Indexes into [`Plan::data_queries`].
    pub data: Vec<usize>,
    /// Indexes into [`Plan::parameter_queries`].
    pub parameter: Vec<usize>,
}

/// A compiled sync rules document, ready to evaluate rows and requests.
///
/// Build one with [`compile`](fn@crate::compile), store it with [`Plan::to_json`], load it again with
/// [`Plan::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub(crate) format: u32,
    pub(crate) config: RulesConfig,
    pub(crate) definitions: Vec<Definition>,
    pub(crate) data_queries: Vec<DataQuery>,
    pub(crate) parameter_queries: Vec<ParameterQuery>,
    /// Queries by exact table; rebuilt on load.
    #[serde(skip)]
    pub(crate) by_table: HashMap<TableRef, TableQueries>,
    /// Queries of `%` patterns; rebuilt on load.
    #[serde(skip)]
    pub(crate) by_pattern: Vec<(TableRef, TableQueries)>,
}

impl Plan {
    /// Assembles a plan and builds its table index.
    pub(crate) fn new(
        config: RulesConfig,
        definitions: Vec<Definition>,
        data_queries: Vec<DataQuery>,
        parameter_queries: Vec<ParameterQuery>,
    ) -> Plan {
        let mut plan = Plan {
            format: PLAN_FORMAT,
            config,
            definitions,
            data_queries,
            parameter_queries,
            by_table: HashMap::new(),
            by_pattern: Vec::new(),
        };
        plan.build_index();
        plan
    }

    fn build_index(&mut self) {
        fn entry<'a>(
            by_table: &'a mut HashMap<TableRef, TableQueries>,
            by_pattern: &'a mut Vec<(TableRef, TableQueries)>,
            table: &TableRef,
        ) -> &'a mut TableQueries {
            if table.is_pattern() {
                let i = match by_pattern.iter().position(|(t, _)| t == table) {
                    Some(i) => i,
                    None => {
                        by_pattern.push((table.clone(), TableQueries::default()));
                        by_pattern.len() - 1
                    }
                };
                &mut by_pattern[i].1
            } else {
                by_table.entry(table.clone()).or_default()
            }
        }
        let mut by_table: HashMap<TableRef, TableQueries> = HashMap::new();
        let mut by_pattern: Vec<(TableRef, TableQueries)> = Vec::new();
        for (i, q) in self.data_queries.iter().enumerate() {
            entry(&mut by_table, &mut by_pattern, &q.table).data.push(i);
        }
        for (i, q) in self.parameter_queries.iter().enumerate() {
            if let ParameterQueryKind::Table { table, .. } = &q.kind {
                entry(&mut by_table, &mut by_pattern, table)
                    .parameter
                    .push(i);
            }
        }
        self.by_table = by_table;
        self.by_pattern = by_pattern;
    }

    /// Calls `f` with the queries of every index entry that applies to `table` (the exact entry,
    /// then matching patterns with the pattern).
    pub(crate) fn for_table<'a>(
        &'a self,
        table: &TableRef,
        mut f: impl FnMut(&'a TableQueries, Option<&'a TableRef>),
    ) {
        if let Some(queries) = self.by_table.get(table) {
            f(queries, None);
        }
        for (pattern, queries) in &self.by_pattern {
            if pattern.matches(table) {
                f(queries, Some(pattern));
            }
        }
    }

    /// Every table any query reads (data and parameter queries), sorted, without duplicates.
    /// A name ending in `%` is a pattern: see [`TableRef::matches`].
    pub fn source_tables(&self) -> Vec<TableRef> {
        let mut tables: Vec<TableRef> = self
            .by_table
            .keys()
            .chain(self.by_pattern.iter().map(|(t, _)| t))
            .cloned()
            .collect();
        tables.sort();
        tables
    }

    /// True if any query reads `table` (directly or through a pattern).
    pub fn reads_table(&self, table: &TableRef) -> bool {
        let mut found = false;
        self.for_table(table, |_, _| found = true);
        found
    }

    /// The document's configuration, with defaults applied.
    pub fn config(&self) -> &RulesConfig {
        &self.config
    }

    /// How Postgres values are converted for this document (`timestamps_iso8601`,
    /// `timestamp_max_precision`).
    pub fn value_options(&self) -> ValueOptions {
        ValueOptions {
            timestamps_iso8601: self.config.timestamps_iso8601,
            timestamp_max_precision: self.config.timestamp_max_precision.unwrap_or_default(),
        }
    }

    /// The function compatibility switches of this document (`fixed_json_extract`).
    pub fn function_options(&self) -> FunctionOptions {
        FunctionOptions {
            fixed_json_extract: self.config.fixed_json_extract,
        }
    }

    /// Every bucket definition as `(name, priority)`, in document order — the checkpoint line's
    /// `streams`. The priority is the YAML `priority`, else a `_priority` shared by all the
    /// definition's parameter queries, else 3.
    pub fn definitions(&self) -> impl Iterator<Item = (&str, u8)> + '_ {
        self.definitions
            .iter()
            .map(|d| (d.name.as_str(), self.definition_priority(d)))
    }

    pub(crate) fn definition_priority(&self, d: &Definition) -> u8 {
        if let Some(p) = d.priority {
            return p;
        }
        let mut shared: Option<Option<u8>> = None;
        for &q in &d.parameter_queries {
            let p = self.parameter_queries.get(q).and_then(|q| q.priority);
            match shared {
                None => shared = Some(p),
                Some(s) if s == p => {}
                Some(_) => return DEFAULT_PRIORITY,
            }
        }
        shared.flatten().unwrap_or(DEFAULT_PRIORITY)
    }

    /// The priority of buckets produced by parameter query `q`.
    pub(crate) fn query_priority(&self, q: &ParameterQuery) -> u8 {
        q.priority
            .or_else(|| self.definitions.get(q.definition).and_then(|d| d.priority))
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// The plan as JSON, to store and [`load`](Plan::from_json) again.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and every float literal
        // is finite (the compiler refuses others).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Loads a plan stored with [`Plan::to_json`].
    pub fn from_json(json: &str) -> Result<Plan, PlanLoadError> {
        let mut plan: Plan = serde_json::from_str(json)?;
        if plan.format != PLAN_FORMAT {
            return Err(PlanLoadError::Format {
                found: plan.format,
                expected: PLAN_FORMAT,
            });
        }
        plan.build_index();
        Ok(plan)
    }
}

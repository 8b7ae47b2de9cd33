//! A source row → the buckets it belongs to, with its row JSON and checksum (PROTOCOL.md §1.4,
//! §2.2).
//!
//! Holds [`Plan::evaluate_row`] and its result types [`RowEvaluation`], [`BucketOutput`] and
//! [`EvaluationError`]. Only the data queries that read the row's table are evaluated (the plan
//! indexes them by table); nothing is parsed per row.

use std::borrow::Cow;

use crate::bucket_id::bucket_id;
use crate::cast::to_text;
use crate::checksum::put_checksum;
use crate::error::{QueryKind, QueryRef};
use crate::expr::{eval, EvalScope, Expr};
use crate::plan::{DataQuery, OutputColumn, Plan};
use crate::row::Row;
use crate::row_json::row_json;
use crate::table_ref::TableRef;
use crate::value::Value;

/// One membership of a row: the row is in `bucket` as `(object_type, object_id)` with `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketOutput {
    /// Bucket id, e.g. `3#user_lists["u1"]`.
    pub bucket: String,
    /// Client table name: the query's table alias, else the source table name.
    pub object_type: String,
    /// The output `id` as text (`""` when missing).
    pub object_id: String,
    /// The row JSON sent to clients (PROTOCOL.md §1.7).
    pub data: String,
    /// PUT checksum of `(object_type, object_id, data)` (PROTOCOL.md §2.3).
    pub checksum: u32,
}

/// A row or request that could not be evaluated by one query. The rest of the evaluation goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationError {
    /// The bucket definition.
    pub definition: String,
    /// The query within it.
    pub query: QueryRef,
    /// What went wrong.
    pub message: String,
}

/// An evaluation error for one row and one query.
pub type RowError = EvaluationError;

impl std::fmt::Display for EvaluationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "definition '{}', {}: {}",
            self.definition, self.query, self.message
        )
    }
}

/// Everything one source row produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowEvaluation {
    /// Bucket memberships, in query order. A `(bucket, object_type, object_id)` appears once (when
    /// two queries produce it, the later query's data wins).
    pub outputs: Vec<BucketOutput>,
    /// Queries that failed on this row; they contributed no outputs.
    pub errors: Vec<RowError>,
}

impl Plan {
    /// Evaluates every data query that reads `table` against `row`.
    ///
    /// `version` prefixes bucket ids as `<version>#name[…]` (PROTOCOL.md §1.6). Never panics; a
    /// query that fails on this row is reported in [`RowEvaluation::errors`].
    pub fn evaluate_row(&self, table: &TableRef, row: &Row, version: Option<u64>) -> RowEvaluation {
        let mut result = RowEvaluation::default();
        self.for_table(table, |queries, pattern| {
            // Pattern tables see their matched suffix as `_table_suffix`.
            let extended;
            let row = match pattern.and_then(|p| p.suffix_of(table)) {
                Some(suffix) => {
                    let mut r = row.clone();
                    r.push("_table_suffix", Value::Text(suffix.to_owned()));
                    extended = r;
                    &extended
                }
                None => row,
            };
            for &q in &queries.data {
                if let Some(query) = self.data_queries.get(q) {
                    self.evaluate_data_query(query, table, row, version, &mut result);
                }
            }
        });
        result
    }

    fn evaluate_data_query(
        &self,
        query: &DataQuery,
        table: &TableRef,
        row: &Row,
        version: Option<u64>,
        result: &mut RowEvaluation,
    ) {
        let Some(definition) = self.definitions.get(query.definition) else {
            return;
        };
        let fail = |result: &mut RowEvaluation, message: String| {
            result.errors.push(EvaluationError {
                definition: definition.name.clone(),
                query: QueryRef {
                    kind: QueryKind::Data,
                    index: query.index,
                },
                message,
            });
        };
        let scope = EvalScope {
            row: Some(row),
            options: self.function_options(),
            ..EvalScope::default()
        };
        let assignments = match query
            .filter
            .matches(&scope, definition.bucket_parameters.len())
        {
            Ok(a) => a,
            Err(e) => return fail(result, e.to_string()),
        };
        if assignments.is_empty() {
            return;
        }

        // Output columns, in order: `*` never overwrites, explicit columns do (in place).
        let mut columns: Vec<(&str, Cow<'_, Value>)> = Vec::with_capacity(row.len() + 2);
        for column in &query.columns {
            match column {
                OutputColumn::All => {
                    let check = !columns.is_empty();
                    for (name, value) in row.columns() {
                        if name.starts_with('_')
                            || (check && columns.iter().any(|(n, _)| *n == name.as_str()))
                        {
                            continue;
                        }
                        columns.push((name.as_str(), Cow::Borrowed(value)));
                    }
                }
                OutputColumn::Expr { name, expr } => {
                    // A plain column the row does not have is left out, not NULL (PowerSync drops
                    // `undefined`): a column dropped by ALTER TABLE disappears from the row JSON.
                    if let Expr::Column(column) = expr {
                        if row.get(column).is_none() {
                            continue;
                        }
                    }
                    let value = match eval(expr, &scope) {
                        Ok(v) => v,
                        Err(e) => return fail(result, format!("column '{name}': {e}")),
                    };
                    match columns.iter_mut().find(|(n, _)| *n == name.as_str()) {
                        Some(slot) => slot.1 = value,
                        None => columns.push((name.as_str(), value)),
                    }
                }
            }
        }
        let data = row_json(columns.iter().map(|(n, v)| (*n, v.as_ref())));
        let object_id = columns
            .iter()
            .find(|(n, _)| *n == "id")
            .and_then(|(_, v)| to_text(v))
            .map(Cow::into_owned)
            .unwrap_or_default();
        let object_type = query.object_type.as_deref().unwrap_or(&table.name);
        let checksum = put_checksum(object_type, &object_id, &data);

        let mut buckets: Vec<String> = Vec::with_capacity(assignments.len());
        let mut params = Vec::with_capacity(definition.bucket_parameters.len());
        for assignment in &assignments {
            params.clear();
            for i in 0..definition.bucket_parameters.len() {
                params.push(assignment.get(i).cloned().flatten().unwrap_or(Value::Null));
            }
            if let Some(bucket) = bucket_id(version, &definition.name, &params) {
                if !buckets.contains(&bucket) {
                    buckets.push(bucket);
                }
            }
        }
        for bucket in buckets {
            // A later query producing the same membership replaces the earlier one.
            if !result.outputs.is_empty() {
                result.outputs.retain(|o| {
                    !(o.bucket == bucket
                        && o.object_type == object_type
                        && o.object_id == object_id)
                });
            }
            result.outputs.push(BucketOutput {
                bucket,
                object_type: object_type.to_owned(),
                object_id: object_id.clone(),
                data: data.clone(),
                checksum,
            });
        }
    }
}

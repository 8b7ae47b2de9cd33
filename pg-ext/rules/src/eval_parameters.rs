//! A source row → the parameter lookups it produces (PROTOCOL.md §1.3, §2.5).
//!
//! Holds [`Plan::evaluate_parameter_row`] and its result types. For every table parameter query
//! reading the row's table, every way the row matches the query's `WHERE` gives a lookup
//! `[definition, query id, row-side values…]`, stored with the row's lookup-extractor values. The
//! extension replaces a row's previous lookups with these on every change.

use crate::error::{QueryKind, QueryRef};
use crate::eval_row::EvaluationError;
use crate::expr::{eval, EvalScope};
use crate::lookup::{ParameterLookup, ParameterRow};
use crate::plan::{ParameterQuery, ParameterQueryKind, Plan};
use crate::row::Row;
use crate::table_ref::TableRef;
use crate::value::Value;

/// One lookup a row produces, with the rows to store under it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedLookup {
    /// The lookup (its [`key`](ParameterLookup::key) is what the extension indexes).
    pub lookup: ParameterLookup,
    /// What to store under it for this source row (one row per source row).
    pub rows: Vec<ParameterRow>,
}

impl EvaluatedLookup {
    /// `rows` as the JSON array to store (`bucket_parameters`, §2.5).
    pub fn rows_json(&self) -> String {
        ParameterRow::rows_to_json(&self.rows)
    }
}

/// Everything one source row produces for the parameter index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParameterEvaluation {
    /// Lookups, each once, in query order.
    pub lookups: Vec<EvaluatedLookup>,
    /// Queries that failed on this row; they contributed no lookups.
    pub errors: Vec<EvaluationError>,
}

impl Plan {
    /// Evaluates every table parameter query that reads `table` against `row`. Never panics.
    pub fn evaluate_parameter_row(&self, table: &TableRef, row: &Row) -> ParameterEvaluation {
        let mut result = ParameterEvaluation::default();
        self.for_table(table, |queries, pattern| {
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
            for &q in &queries.parameter {
                if let Some(query) = self.parameter_queries.get(q) {
                    self.evaluate_parameter_query(query, row, &mut result);
                }
            }
        });
        result
    }

    fn evaluate_parameter_query(
        &self,
        query: &ParameterQuery,
        row: &Row,
        result: &mut ParameterEvaluation,
    ) {
        let ParameterQueryKind::Table {
            filter,
            inputs,
            stored,
            ..
        } = &query.kind
        else {
            return;
        };
        let Some(definition) = self.definitions.get(query.definition) else {
            return;
        };
        let fail = |result: &mut ParameterEvaluation, message: String| {
            result.errors.push(EvaluationError {
                definition: definition.name.clone(),
                query: QueryRef {
                    kind: QueryKind::Parameter,
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
        let assignments = match filter.matches(&scope, inputs.len()) {
            Ok(a) => a,
            Err(e) => return fail(result, e.to_string()),
        };
        if assignments.is_empty() {
            return;
        }
        let mut values = Vec::with_capacity(stored.len());
        for (name, expr) in stored {
            match eval(expr, &scope) {
                Ok(v) => values.push((name.clone(), v.into_owned())),
                Err(e) => return fail(result, format!("column '{name}': {e}")),
            }
        }
        let parameter_row = ParameterRow::new(values);
        let first = result.lookups.len();
        for assignment in assignments {
            let values: Vec<Value> = (0..inputs.len())
                .map(|i| assignment.get(i).cloned().flatten().unwrap_or(Value::Null))
                .collect();
            let lookup = ParameterLookup::new(definition.name.as_str(), query.id.as_str(), values);
            if result.lookups[first..].iter().any(|l| l.lookup == lookup) {
                continue;
            }
            result.lookups.push(EvaluatedLookup {
                lookup,
                rows: vec![parameter_row.clone()],
            });
        }
    }
}

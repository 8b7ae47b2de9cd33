//! A sync request → its buckets (PROTOCOL.md §1.3 "Resolution at request time", §3.4 step 1).
//!
//! Two steps, so the caller can read the parameter index in between:
//! 1. [`Plan::resolve_request`] evaluates static and `json_each` parameter queries into buckets,
//!    and table parameter queries into the [`ParameterLookup`]s to read;
//! 2. [`Plan::dynamic_buckets`] turns the rows found under those lookups into buckets.
//!
//! Holds those two methods and [`BucketDescription`], [`RequestResolution`], [`DynamicBuckets`].

use std::collections::HashMap;

use crate::bucket_id::bucket_id;
use crate::error::{QueryKind, QueryRef};
use crate::eval_row::EvaluationError;
use crate::expr::{eval, EvalScope};
use crate::filter::normalize;
use crate::json_path::{self, JsonValue};
use crate::lookup::{ParameterLookup, ParameterRow};
use crate::operators::truthy;
use crate::plan::{InputKind, ParameterQuery, ParameterQueryKind, ParameterValue, Plan};
use crate::request::RequestParameters;
use crate::value::Value;

/// A bucket a connection syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDescription {
    /// Bucket id.
    pub bucket: String,
    /// The bucket definition it comes from.
    pub definition: String,
    /// Priority 0 (first) to 3 (default).
    pub priority: u8,
}

/// The first step of resolving a request's buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestResolution {
    /// Buckets that follow from the request alone; fixed for the connection.
    pub static_buckets: Vec<BucketDescription>,
    /// Lookups to read from the parameter index (each once); pass the rows found to
    /// [`Plan::dynamic_buckets`].
    pub lookups: Vec<ParameterLookup>,
    /// Queries that failed for this request.
    pub errors: Vec<EvaluationError>,
}

/// The buckets that follow from looked-up parameter rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamicBuckets {
    /// Buckets, each once (with the highest priority — lowest number — any query gave it).
    pub buckets: Vec<BucketDescription>,
    /// Queries that failed for this request.
    pub errors: Vec<EvaluationError>,
}

/// Adds `bucket`, or raises the priority of an equal bucket already present.
fn add_bucket(buckets: &mut Vec<BucketDescription>, bucket: BucketDescription) {
    match buckets.iter_mut().find(|b| b.bucket == bucket.bucket) {
        Some(existing) => existing.priority = existing.priority.min(bucket.priority),
        None => buckets.push(bucket),
    }
}

fn query_error(plan: &Plan, query: &ParameterQuery, message: String) -> EvaluationError {
    EvaluationError {
        definition: plan
            .definitions
            .get(query.definition)
            .map(|d| d.name.clone())
            .unwrap_or_default(),
        query: QueryRef {
            kind: QueryKind::Parameter,
            index: query.index,
        },
        message,
    }
}

impl Plan {
    /// Step 1: static buckets, and the lookups the table parameter queries need.
    ///
    /// `version` prefixes bucket ids (`<version>#name[…]`). Never panics; a query that fails for
    /// this request is reported in [`RequestResolution::errors`] and yields nothing.
    pub fn resolve_request(
        &self,
        request: &RequestParameters,
        version: Option<u64>,
    ) -> RequestResolution {
        let mut resolution = RequestResolution::default();
        let options = self.function_options();
        for query in &self.parameter_queries {
            let Some(definition) = self.definitions.get(query.definition) else {
                continue;
            };
            let priority = self.query_priority(query);
            let scope = EvalScope {
                request: Some(request),
                options,
                ..EvalScope::default()
            };
            let emit =
                |scope: &EvalScope<'_>, resolution: &mut RequestResolution| -> Result<(), String> {
                    let mut params = Vec::with_capacity(query.bucket_parameters.len());
                    for value in &query.bucket_parameters {
                        match value {
                            ParameterValue::Request(expr) => params
                                .push(eval(expr, scope).map_err(|e| e.to_string())?.into_owned()),
                            ParameterValue::Stored(_) => return Ok(()),
                        }
                    }
                    if let Some(bucket) = bucket_id(version, &definition.name, &params) {
                        add_bucket(
                            &mut resolution.static_buckets,
                            BucketDescription {
                                bucket,
                                definition: definition.name.clone(),
                                priority,
                            },
                        );
                    }
                    Ok(())
                };
            let outcome: Result<(), String> = match &query.kind {
                ParameterQueryKind::Static { condition } => (|| {
                    if let Some(condition) = condition {
                        if !truthy(eval(condition, &scope).map_err(|e| e.to_string())?.as_ref()) {
                            return Ok(());
                        }
                    }
                    emit(&scope, &mut resolution)
                })(),
                ParameterQueryKind::JsonEach { source, condition } => (|| {
                    let source = eval(source, &scope).map_err(|e| e.to_string())?;
                    let elements = json_path::json_each(&source, options.fixed_json_extract)
                        .map_err(|e| e.to_string())?;
                    for (key, value) in &elements {
                        let element_scope = EvalScope {
                            element: Some((key, value)),
                            ..scope
                        };
                        if let Some(condition) = condition {
                            if !truthy(
                                eval(condition, &element_scope)
                                    .map_err(|e| e.to_string())?
                                    .as_ref(),
                            ) {
                                continue;
                            }
                        }
                        emit(&element_scope, &mut resolution)?;
                    }
                    Ok(())
                })(),
                ParameterQueryKind::Table { inputs, .. } => (|| {
                    let mut combinations: Vec<Vec<Value>> = vec![Vec::with_capacity(inputs.len())];
                    for input in inputs {
                        let value = eval(&input.expr, &scope)
                            .map_err(|e| e.to_string())?
                            .into_owned();
                        let choices: Vec<Value> = match input.kind {
                            InputKind::Value => match value {
                                Value::Blob(_) => Vec::new(),
                                v => vec![normalize(v)],
                            },
                            InputKind::Boolean => {
                                if truthy(&value) {
                                    vec![Value::Integer(1)]
                                } else {
                                    Vec::new()
                                }
                            }
                            InputKind::Expanding => match &value {
                                Value::Text(text) => match json_path::parse(text) {
                                    Ok(JsonValue::Array(items)) => items
                                        .iter()
                                        .map(|item| normalize(json_path::to_comparable_value(item)))
                                        .collect(),
                                    _ => Vec::new(),
                                },
                                _ => Vec::new(),
                            },
                        };
                        let mut next = Vec::with_capacity(combinations.len() * choices.len());
                        for combination in &combinations {
                            for choice in &choices {
                                let mut c = combination.clone();
                                c.push(choice.clone());
                                next.push(c);
                            }
                        }
                        combinations = next;
                        if combinations.is_empty() {
                            return Ok(());
                        }
                    }
                    for values in combinations {
                        let lookup = ParameterLookup::new(
                            definition.name.as_str(),
                            query.id.as_str(),
                            values,
                        );
                        if !resolution.lookups.contains(&lookup) {
                            resolution.lookups.push(lookup);
                        }
                    }
                    Ok(())
                })(),
            };
            if let Err(message) = outcome {
                resolution.errors.push(query_error(self, query, message));
            }
        }
        resolution
    }

    /// Step 2: the buckets from the parameter rows found under `resolution`'s lookups.
    ///
    /// `looked_up` maps a lookup's [`key`](ParameterLookup::key) to the rows stored under it (read
    /// back with [`ParameterRow::rows_from_json`]); a lookup without an entry found nothing. A row
    /// lacking a stored value, or giving a BLOB parameter, yields no bucket.
    pub fn dynamic_buckets(
        &self,
        request: &RequestParameters,
        resolution: &RequestResolution,
        looked_up: &HashMap<String, Vec<ParameterRow>>,
        version: Option<u64>,
    ) -> DynamicBuckets {
        let mut result = DynamicBuckets::default();
        let scope = EvalScope {
            request: Some(request),
            options: self.function_options(),
            ..EvalScope::default()
        };
        for lookup in &resolution.lookups {
            let Some(rows) = looked_up.get(&lookup.key()) else {
                continue;
            };
            let Some(query) = self.parameter_query(&lookup.definition, &lookup.query_id) else {
                continue;
            };
            let Some(definition) = self.definitions.get(query.definition) else {
                continue;
            };
            let priority = self.query_priority(query);
            'rows: for row in rows {
                let mut params = Vec::with_capacity(query.bucket_parameters.len());
                for value in &query.bucket_parameters {
                    match value {
                        ParameterValue::Stored(name) => match row.get(name) {
                            Some(v) => params.push(v.clone()),
                            None => continue 'rows,
                        },
                        ParameterValue::Request(expr) => match eval(expr, &scope) {
                            Ok(v) => params.push(v.into_owned()),
                            Err(e) => {
                                result.errors.push(query_error(self, query, e.to_string()));
                                continue 'rows;
                            }
                        },
                    }
                }
                if let Some(bucket) = bucket_id(version, &definition.name, &params) {
                    add_bucket(
                        &mut result.buckets,
                        BucketDescription {
                            bucket,
                            definition: definition.name.clone(),
                            priority,
                        },
                    );
                }
            }
        }
        result
    }

    /// The parameter query `query_id` of definition `definition`.
    fn parameter_query(&self, definition: &str, query_id: &str) -> Option<&ParameterQuery> {
        let d = self.definitions.iter().find(|d| d.name == definition)?;
        d.parameter_queries
            .iter()
            .filter_map(|&q| self.parameter_queries.get(q))
            .find(|q| q.id == query_id)
    }
}

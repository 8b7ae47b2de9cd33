//! The parameter lookup index's two halves (PROTOCOL.md §2.5): the key and the stored rows.
//!
//! Holds [`ParameterLookup`] (`[definition, query id, values…]`, with the canonical text
//! [`ParameterLookup::key`] the extension stores and indexes) and [`ParameterRow`] (the values a
//! table parameter query stores for one matching source row, with their JSON form). Producing them
//! from rows is [`eval_parameters`](crate::eval_parameters); using them for a request is
//! [`resolve`](crate::resolve).

use std::fmt;

use crate::filter::normalize;
use crate::json_path::{self, JsonValue};
use crate::row_json::{row_json, write_bucket_parameters_json, write_json_string};
use crate::value::Value;

/// A lookup in the parameter index: which definition and parameter query, with which values.
///
/// Values are normalised when built (an integral REAL is an INTEGER), so a lookup made at request
/// time with `1.0` finds rows stored with `1`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterLookup {
    /// The bucket definition's name.
    pub definition: String,
    /// The parameter query's id within the definition (`"1"`, `"2"`, …).
    pub query_id: String,
    /// The lookup values, in the query's input order.
    pub values: Vec<Value>,
}

impl ParameterLookup {
    /// A lookup; `values` are normalised.
    pub fn new(
        definition: impl Into<String>,
        query_id: impl Into<String>,
        values: Vec<Value>,
    ) -> Self {
        ParameterLookup {
            definition: definition.into(),
            query_id: query_id.into(),
            values: values.into_iter().map(normalize).collect(),
        }
    }

    /// The canonical key: a compact JSON array `["definition","1",v1,…]`, numbers without a forced
    /// `.0` (so INTEGER 1 and REAL 1.0 give the same key). Equal lookups give equal keys; this is
    /// what the extension stores and indexes.
    pub fn key(&self) -> String {
        let mut out = String::with_capacity(8 + self.definition.len() + self.values.len() * 8);
        out.push('[');
        write_json_string(&mut out, &self.definition);
        out.push(',');
        write_json_string(&mut out, &self.query_id);
        if !self.values.is_empty() {
            let mut values = String::new();
            let blob_free: Vec<Value> = self
                .values
                .iter()
                .map(|v| match v {
                    Value::Blob(_) => Value::Null,
                    other => other.clone(),
                })
                .collect();
            if write_bucket_parameters_json(&mut values, &blob_free).is_some() {
                out.push(',');
                out.push_str(values.get(1..).unwrap_or("]"));
                return out;
            }
        }
        out.push(']');
        out
    }
}

impl fmt::Display for ParameterLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The values a table parameter query stores for one matching source row (its lookup
/// extractors), by output name. BLOB values are never stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParameterRow {
    columns: Vec<(String, Value)>,
}

/// A stored parameter row that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored parameter rows are not a JSON array of objects: {0}")]
pub struct ParameterRowError(String);

impl ParameterRow {
    /// A row from `(name, value)` pairs; BLOB values are left out.
    pub fn new(columns: Vec<(String, Value)>) -> Self {
        ParameterRow {
            columns: columns
                .into_iter()
                .filter(|(_, v)| !matches!(v, Value::Blob(_)))
                .collect(),
        }
    }

    /// The value stored under `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All stored values, in output order.
    pub fn columns(&self) -> &[(String, Value)] {
        &self.columns
    }

    /// The row as a JSON object (row JSON rules: 64-bit integers exact, integral REALs as `3.0`).
    pub fn to_json(&self) -> String {
        row_json(self.columns.iter().map(|(n, v)| (n.as_str(), v)))
    }

    /// Several rows as the JSON array the extension stores per lookup (`bucket_parameters`).
    pub fn rows_to_json(rows: &[ParameterRow]) -> String {
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&row.to_json());
        }
        out.push(']');
        out
    }

    /// Reads rows stored with [`ParameterRow::rows_to_json`] (or one object from
    /// [`ParameterRow::to_json`]). Integers come back as INTEGER, `3.0` as REAL.
    pub fn rows_from_json(json: &str) -> Result<Vec<ParameterRow>, ParameterRowError> {
        let parsed = json_path::parse(json).map_err(|e| ParameterRowError(e.to_string()))?;
        let objects = match parsed {
            JsonValue::Array(items) => items,
            object @ JsonValue::Object(_) => vec![object],
            other => {
                return Err(ParameterRowError(format!(
                    "found a JSON {}",
                    other.type_name()
                )))
            }
        };
        objects
            .into_iter()
            .map(|item| match item {
                JsonValue::Object(entries) => Ok(ParameterRow {
                    columns: entries
                        .into_iter()
                        .map(|(k, v)| {
                            let value = match &v {
                                JsonValue::Null => Value::Null,
                                other => json_path::to_sql_value(other, true),
                            };
                            (k, value)
                        })
                        .collect(),
                }),
                other => Err(ParameterRowError(format!(
                    "an element is a JSON {}",
                    other.type_name()
                ))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_treat_integral_reals_as_integers() {
        let a = ParameterLookup::new("by_org", "1", vec![Value::Integer(1), Value::from("x")]);
        let b = ParameterLookup::new("by_org", "1", vec![Value::Real(1.0), Value::from("x")]);
        assert_eq!(a.key(), r#"["by_org","1",1,"x"]"#);
        assert_eq!(a.key(), b.key());
        assert_eq!(
            ParameterLookup::new("global", "2", vec![]).key(),
            r#"["global","2"]"#
        );
        assert_eq!(
            ParameterLookup::new("d", "1", vec![Value::Null, Value::Real(1.5)]).key(),
            r#"["d","1",null,1.5]"#
        );
    }

    #[test]
    fn rows_round_trip_through_json() {
        let row = ParameterRow::new(vec![
            ("list_id".into(), Value::from("L1")),
            ("n".into(), Value::Integer(9_007_199_254_740_993)),
            ("r".into(), Value::Real(3.0)),
            ("b".into(), Value::Blob(vec![1])),
            ("z".into(), Value::Null),
        ]);
        let json = ParameterRow::rows_to_json(std::slice::from_ref(&row));
        assert_eq!(
            json,
            r#"[{"list_id":"L1","n":9007199254740993,"r":3.0,"z":null}]"#
        );
        assert_eq!(ParameterRow::rows_from_json(&json).unwrap(), vec![row]);
        assert!(ParameterRow::rows_from_json("[1]").is_err());
    }
}

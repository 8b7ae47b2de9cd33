//! A query's `WHERE` as a *match filter*: which parameter values make it true for a given row.
//!
//! Holds [`Filter`] and its evaluation [`Filter::matches`]. A data query's `WHERE` relates row
//! values to bucket parameters (`owner_id = bucket.owner_id`); a table parameter query's relates
//! row values to request values (`user_id = request.user_id()`). Both are compiled to a filter over
//! numbered *inputs* (bucket parameters, or request-side lookup values). Evaluating it on a row gives
//! every assignment of values to inputs under which the row matches: one per bucket (data queries)
//! or per lookup (parameter queries). `AND` combines assignments, `OR` unions them, a pure row
//! condition keeps or drops them. The static checks the compiler needs (which inputs every branch
//! covers, at most one row-side expansion per `AND`) are [`Filter::shape`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::eval_error::{excerpt, EvalError};
use crate::expr::{eval, EvalScope, Expr};
use crate::json_path::{self, JsonValue};
use crate::operators::truthy;
use crate::value::Value;

/// A compiled `WHERE` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Filter {
    /// A condition on the row alone: true keeps the assignments, false (or NULL) drops them.
    Condition(Expr),
    /// `value = <input>`: the input takes the row's value. NULL and BLOB values never match.
    Equals {
        /// The input.
        input: usize,
        /// The row-side expression.
        value: Expr,
    },
    /// `<input> IN array` (and `&&`): the input takes each element of the row's JSON array.
    Elements {
        /// The input.
        input: usize,
        /// The row-side expression, a JSON array text.
        array: Expr,
    },
    /// A condition on request values alone, used inside a table parameter query: the row side is
    /// the value 1 (the request side is true).
    IsTrue {
        /// The input.
        input: usize,
    },
    /// All must hold.
    And(Vec<Filter>),
    /// Any may hold.
    Or(Vec<Filter>),
}

/// One way a row matches: a value for every input the filter constrains.
pub(crate) type Assignment = Vec<Option<Value>>;

/// The static shape of a filter: the inputs every match assigns, and whether a row can produce an
/// unbounded number of matches (row-side array expansion).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Shape {
    /// Inputs assigned by every match.
    pub inputs: BTreeSet<usize>,
    /// True if a row-side JSON array is expanded.
    pub unbounded: bool,
}

/// Why a filter's shape is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShapeError {
    /// The sides of an `OR` constrain different inputs.
    OrWithDifferentParameters,
    /// Two row-side array expansions under one `AND`.
    SeveralExpansions,
}

/// Integral REALs as INTEGER, so that 1 and 1.0 are the same parameter value.
pub(crate) fn normalize(value: Value) -> Value {
    // 2^63 as f64: every integral REAL in [-2^63, 2^63) converts to i64 exactly.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Value::Real(r) if r.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&r) => {
            Value::Integer(r as i64)
        }
        other => other,
    }
}

impl Filter {
    /// The inputs every match assigns and whether matches are unbounded; an error for an `OR`
    /// whose sides constrain different inputs, or two array expansions under one `AND`.
    pub fn shape(&self) -> Result<Shape, ShapeError> {
        Ok(match self {
            Filter::Condition(_) => Shape::default(),
            Filter::Equals { input, .. } | Filter::IsTrue { input } => Shape {
                inputs: BTreeSet::from([*input]),
                unbounded: false,
            },
            Filter::Elements { input, .. } => Shape {
                inputs: BTreeSet::from([*input]),
                unbounded: true,
            },
            Filter::And(parts) => {
                let mut shape = Shape::default();
                for part in parts {
                    let s = part.shape()?;
                    if s.unbounded && shape.unbounded {
                        return Err(ShapeError::SeveralExpansions);
                    }
                    shape.unbounded |= s.unbounded;
                    shape.inputs.extend(s.inputs);
                }
                shape
            }
            Filter::Or(parts) => {
                let mut result: Option<Shape> = None;
                for part in parts {
                    let s = part.shape()?;
                    result = Some(match result {
                        None => s,
                        Some(r) if r.inputs == s.inputs => Shape {
                            inputs: r.inputs,
                            unbounded: r.unbounded || s.unbounded,
                        },
                        Some(_) => return Err(ShapeError::OrWithDifferentParameters),
                    });
                }
                result.unwrap_or_default()
            }
        })
    }

    /// Every assignment of input values under which the row in `scope` matches (possibly with
    /// repeats). `inputs` is the number of inputs.
    pub fn matches(
        &self,
        scope: &EvalScope<'_>,
        inputs: usize,
    ) -> Result<Vec<Assignment>, EvalError> {
        match self {
            Filter::Condition(condition) => Ok(if truthy(eval(condition, scope)?.as_ref()) {
                vec![vec![None; inputs]]
            } else {
                Vec::new()
            }),
            Filter::Equals { input, value } => {
                let value = eval(value, scope)?;
                Ok(match value.as_ref() {
                    Value::Null | Value::Blob(_) => Vec::new(),
                    v => vec![single(inputs, *input, normalize(v.clone()))],
                })
            }
            Filter::Elements { input, array } => {
                let array = eval(array, scope)?;
                let items = match array.as_ref() {
                    Value::Null => return Ok(Vec::new()),
                    Value::Text(text) => match json_path::parse(text) {
                        Ok(JsonValue::Array(items)) => items,
                        Ok(other) => {
                            return Err(EvalError::NotJsonArray {
                                operator: "IN",
                                side: "right",
                                got: format!("a JSON {}: '{}'", other.type_name(), excerpt(text)),
                            })
                        }
                        Err(e) => {
                            return Err(EvalError::NotJsonArray {
                                operator: "IN",
                                side: "right",
                                got: format!("malformed JSON ({e}): '{}'", excerpt(text)),
                            })
                        }
                    },
                    other => {
                        return Err(EvalError::NotJsonArray {
                            operator: "IN",
                            side: "right",
                            got: format!("a {} value", other.type_name().to_uppercase()),
                        })
                    }
                };
                Ok(items
                    .iter()
                    .map(|item| {
                        single(
                            inputs,
                            *input,
                            normalize(json_path::to_comparable_value(item)),
                        )
                    })
                    .collect())
            }
            Filter::IsTrue { input } => Ok(vec![single(inputs, *input, Value::Integer(1))]),
            Filter::And(parts) => {
                let mut result: Vec<Assignment> = vec![vec![None; inputs]];
                for part in parts {
                    let next = part.matches(scope, inputs)?;
                    if next.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut combined = Vec::with_capacity(result.len() * next.len());
                    for a in &result {
                        for b in &next {
                            if let Some(merged) = merge(a, b) {
                                combined.push(merged);
                            }
                        }
                    }
                    if combined.is_empty() {
                        return Ok(Vec::new());
                    }
                    result = combined;
                }
                Ok(result)
            }
            Filter::Or(parts) => {
                let mut result = Vec::new();
                for part in parts {
                    result.extend(part.matches(scope, inputs)?);
                }
                Ok(result)
            }
        }
    }
}

fn single(inputs: usize, input: usize, value: Value) -> Assignment {
    let mut assignment = vec![None; inputs.max(input + 1)];
    assignment[input] = Some(value);
    assignment
}

/// Combines two assignments; `None` when they give one input different values.
fn merge(a: &Assignment, b: &Assignment) -> Option<Assignment> {
    let mut out = a.clone();
    for (i, value) in b.iter().enumerate() {
        let Some(value) = value else { continue };
        match out.get(i) {
            Some(Some(existing)) if existing != value => return None,
            Some(Some(_)) => {}
            _ => {
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                out[i] = Some(value.clone());
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Row;

    fn col(name: &str) -> Expr {
        Expr::Column(name.to_owned())
    }

    fn run(filter: &Filter, row: &Row, inputs: usize) -> Vec<Assignment> {
        let scope = EvalScope {
            row: Some(row),
            ..EvalScope::default()
        };
        filter.matches(&scope, inputs).unwrap()
    }

    #[test]
    fn equality_never_matches_null() {
        let row: Row = [("owner", Value::Null)].into_iter().collect();
        let f = Filter::Equals {
            input: 0,
            value: col("owner"),
        };
        assert!(run(&f, &row, 1).is_empty());
    }

    #[test]
    fn or_is_a_union_and_and_is_a_product() {
        let row: Row = [
            ("a", Value::Integer(1)),
            ("tags", Value::from("[\"x\",\"y\"]")),
            ("region", Value::Real(2.0)),
        ]
        .into_iter()
        .collect();
        let f = Filter::And(vec![
            Filter::Elements {
                input: 0,
                array: col("tags"),
            },
            Filter::Equals {
                input: 1,
                value: col("region"),
            },
        ]);
        let got = run(&f, &row, 2);
        assert_eq!(
            got,
            vec![
                vec![Some(Value::from("x")), Some(Value::Integer(2))],
                vec![Some(Value::from("y")), Some(Value::Integer(2))],
            ]
        );
        let f = Filter::Or(vec![
            Filter::Equals {
                input: 0,
                value: col("a"),
            },
            Filter::Elements {
                input: 0,
                array: col("tags"),
            },
        ]);
        assert_eq!(run(&f, &row, 1).len(), 3);
    }

    #[test]
    fn shapes_require_the_same_inputs_on_both_sides_of_or() {
        let f = Filter::Or(vec![
            Filter::Equals {
                input: 0,
                value: col("a"),
            },
            Filter::Equals {
                input: 1,
                value: col("b"),
            },
        ]);
        assert_eq!(f.shape(), Err(ShapeError::OrWithDifferentParameters));
        let f = Filter::And(vec![
            Filter::Elements {
                input: 0,
                array: col("a"),
            },
            Filter::Elements {
                input: 1,
                array: col("b"),
            },
        ]);
        assert_eq!(f.shape(), Err(ShapeError::SeveralExpansions));
    }

    #[test]
    fn a_non_array_is_an_error_not_a_panic() {
        let row: Row = [("tags", Value::from("{}"))].into_iter().collect();
        let f = Filter::Elements {
            input: 0,
            array: col("tags"),
        };
        let scope = EvalScope {
            row: Some(&row),
            ..EvalScope::default()
        };
        assert!(f.matches(&scope, 1).is_err());
    }
}

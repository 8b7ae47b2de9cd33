//! ferry's compiled expression tree and its evaluation.
//!
//! Holds [`Expr`] (what a column expression or a condition of a query compiles to — functions and
//! operators already resolved, identifiers already normalised, never sqlparser's types),
//! [`RequestValue`] (the request data an expression may read) and [`eval`], which evaluates an
//! expression against an [`EvalScope`] (a source row, a `json_each` element, a request). How
//! conditions decide bucket membership is not here but in [`filter`](crate::filter).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::cast::{cast, CastType};
use crate::eval_error::EvalError;
use crate::functions::{Function, FunctionOptions};
use crate::operators::{json_arrow2, truthy, BinaryOp, UnaryOp};
use crate::request::RequestParameters;
use crate::row::Row;
use crate::value::Value;

static NULL: Value = Value::Null;

/// Request data an expression can read (PROTOCOL.md §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RequestValue {
    /// `request.user_id()`.
    UserId,
    /// `request.jwt()`.
    Jwt,
    /// `request.parameters()`.
    Parameters,
    /// `token_parameters.<name>`.
    TokenParameter(String),
    /// `user_parameters.<name>`.
    UserParameter(String),
}

impl RequestValue {
    /// True for values that come from the verified token rather than from the client.
    pub fn is_authenticated(&self) -> bool {
        matches!(
            self,
            RequestValue::UserId | RequestValue::Jwt | RequestValue::TokenParameter(_)
        )
    }
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Expr {
    /// A constant.
    Literal(Value),
    /// A column of the source row, by (normalised) name; NULL when the row lacks it.
    Column(String),
    /// `key` of the current `json_each` element.
    ElementKey,
    /// `value` of the current `json_each` element.
    ElementValue,
    /// A request value.
    Request(RequestValue),
    /// `request.parameter(<expr>)`: `->>` on the client parameters.
    RequestParameter(Box<Expr>),
    /// A unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `CAST(x AS type)`.
    Cast(Box<Expr>, CastType),
    /// A function call.
    Call(Function, Vec<Expr>),
    /// `a AND b AND …`: 1 if all are true, else 0 (never NULL, as PowerSync).
    All(Vec<Expr>),
    /// `a OR b OR …`: 1 if any is true, else 0 (never NULL, as PowerSync).
    Any(Vec<Expr>),
}

impl Expr {
    /// Shorthand for a binary expression.
    pub fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary(op, Box::new(left), Box::new(right))
    }
}

/// What an expression is evaluated against.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EvalScope<'a> {
    /// The source row (data queries and table parameter queries at replication time).
    pub row: Option<&'a Row>,
    /// The current `json_each` element as `(key, value)`.
    pub element: Option<(&'a Value, &'a Value)>,
    /// The request (parameter queries at request time).
    pub request: Option<&'a RequestParameters>,
    /// Function and operator compatibility switches.
    pub options: FunctionOptions,
}

/// Evaluates `expr`. Borrows where it can (literals, row columns, request values).
///
/// Reading something the scope does not have (a row column without a row) gives NULL; the compiler
/// makes sure that does not happen.
pub(crate) fn eval<'a>(expr: &'a Expr, scope: &EvalScope<'a>) -> Result<Cow<'a, Value>, EvalError> {
    Ok(match expr {
        Expr::Literal(v) => Cow::Borrowed(v),
        Expr::Column(name) => Cow::Borrowed(scope.row.and_then(|r| r.get(name)).unwrap_or(&NULL)),
        Expr::ElementKey => Cow::Borrowed(scope.element.map_or(&NULL, |(k, _)| k)),
        Expr::ElementValue => Cow::Borrowed(scope.element.map_or(&NULL, |(_, v)| v)),
        Expr::Request(r) => Cow::Borrowed(match scope.request {
            None => &NULL,
            Some(request) => match r {
                RequestValue::UserId => request.user_id(),
                RequestValue::Jwt => request.jwt(),
                RequestValue::Parameters => request.parameters(),
                RequestValue::TokenParameter(name) => request.token_parameter(name),
                RequestValue::UserParameter(name) => request.user_parameter(name),
            },
        }),
        Expr::RequestParameter(key) => {
            let key = eval(key, scope)?;
            let parameters = scope.request.map_or(&NULL, |r| r.parameters());
            // `*.parameter('k')` has `->>` semantics where a key only splits on `.` after `$`.
            Cow::Owned(json_arrow2(parameters, &key, true)?)
        }
        Expr::Unary(op, e) => Cow::Owned(op.eval(eval(e, scope)?.as_ref())),
        Expr::Binary(op, a, b) => {
            let a = eval(a, scope)?;
            let b = eval(b, scope)?;
            Cow::Owned(op.eval(&a, &b, scope.options.fixed_json_extract)?)
        }
        Expr::Cast(e, to) => Cow::Owned(cast(eval(e, scope)?.as_ref(), *to)),
        Expr::All(operands) | Expr::Any(operands) => {
            // Every operand is evaluated (an error in any is an error), as PowerSync does.
            let want = matches!(expr, Expr::Any(_));
            let mut found = false;
            for operand in operands {
                found |= truthy(eval(operand, scope)?.as_ref()) == want;
            }
            let result = if want { found } else { !found };
            Cow::Owned(Value::Integer(i64::from(result)))
        }
        Expr::Call(function, args) => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(arg, scope)?.into_owned());
            }
            Cow::Owned(function.call(&values, scope.options)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_read_by_name_and_missing_ones_are_null() {
        let row: Row = [("id", Value::from("a")), ("n", Value::Integer(2))]
            .into_iter()
            .collect();
        let scope = EvalScope {
            row: Some(&row),
            ..EvalScope::default()
        };
        let sum = Expr::binary(
            BinaryOp::Add,
            Expr::Column("n".into()),
            Expr::Literal(Value::Integer(1)),
        );
        assert_eq!(eval(&sum, &scope).unwrap().into_owned(), Value::Integer(3));
        assert_eq!(
            eval(&Expr::Column("gone".into()), &scope)
                .unwrap()
                .into_owned(),
            Value::Null
        );
    }

    #[test]
    fn request_parameter_extracts_one_key() {
        let request = RequestParameters::new(
            &serde_json::json!({}),
            &serde_json::json!({"a.b": 1, "a": {"b": 2}}),
        );
        let scope = EvalScope {
            request: Some(&request),
            ..EvalScope::default()
        };
        let e = Expr::RequestParameter(Box::new(Expr::Literal(Value::from("a.b"))));
        assert_eq!(eval(&e, &scope).unwrap().into_owned(), Value::Integer(1));
        let e = Expr::RequestParameter(Box::new(Expr::Literal(Value::from("$.a.b"))));
        assert_eq!(eval(&e, &scope).unwrap().into_owned(), Value::Integer(2));
    }
}

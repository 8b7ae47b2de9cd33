//! The operators of the sync rules expression language over [`Value`]s (PROTOCOL.md §1.5).
//!
//! Holds comparison ([`compare`], [`eq`] … [`ge`], [`is`], [`is_not`]), arithmetic ([`add`],
//! [`sub`], [`mul`], [`div`], [`negate`]), [`concat()`] (`||`), the logical operators ([`and`], [`or`],
//! [`not`], [`truthy`]), [`is_null`] / [`is_not_null`], `IN` ([`in_json_array`]), `&&`
//! ([`overlap`]), `->` / `->>` ([`json_arrow`], [`json_arrow2`]), and [`BinaryOp`] / [`UnaryOp`]
//! to dispatch on an operator chosen once at compile time. `CAST` is in `cast.rs`; named functions
//! are in `functions.rs`. Nothing here allocates unless it builds a new value.
//!
//! Semantics (SQLite's, with PowerSync's choices where §1.5 states them):
//! - Comparisons return NULL when an operand is NULL, else INTEGER 1/0. INTEGER and REAL compare
//!   exactly by numeric value (no rounding of large integers); TEXT compares bytewise (SQLite's
//!   BINARY collation); otherwise by type class `NULL < numeric < TEXT < BLOB`; BLOB against BLOB
//!   is an error. A REAL NaN (only from Postgres `'NaN'` floats) sorts below every other number and
//!   equals itself.
//! - Arithmetic casts operands to numeric (TEXT by its numeric prefix); INTEGER op INTEGER stays
//!   INTEGER, and on 64-bit overflow is redone in REAL (SQLite); any REAL makes it REAL; division
//!   by zero and NaN results give NULL; INTEGER division truncates toward zero.
//! - `AND`, `OR` and `NOT` follow PowerSync: they always return 1/0 and treat NULL as false, so
//!   `NULL AND 1` is 0 and **`NOT NULL` is 1** (SQLite would give NULL for all three). Truthiness
//!   is [`truthy`]: numbers non-zero, TEXT by its leading integer (`'12abc'` true, `'0.5'` false),
//!   BLOB false.
//! - `IN` and `&&` take JSON array texts and compare elements with `=` semantics (so 1 matches
//!   1.0); JSON `null` elements match nothing. They return 1/0, or NULL for a NULL operand.

use std::cmp::Ordering;

use crate::cast::{to_numeric, to_text};
use crate::eval_error::{excerpt, EvalError};
use crate::json_path::{self, JsonPath, JsonValue, PathMode};
use crate::value::Value;

/// SQLite's type classes in comparison order.
fn type_class(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 1,
        Value::Text(_) => 2,
        Value::Blob(_) => 3,
    }
}

/// Exact comparison of an INTEGER with a REAL (NaN below everything).
fn compare_int_real(i: i64, r: f64) -> Ordering {
    if r.is_nan() {
        return Ordering::Greater;
    }
    // 2^63 as f64; every f64 in [-2^63, 2^63) truncates to an exactly representable i64.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if r >= TWO_POW_63 {
        return Ordering::Less;
    }
    if r < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let truncated = r.trunc();
    match i.cmp(&(truncated as i64)) {
        Ordering::Equal => {
            let fraction = r - truncated;
            if fraction > 0.0 {
                Ordering::Less
            } else if fraction < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

fn compare_reals(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // Neither is NaN, so `partial_cmp` is total here (and -0.0 == 0.0).
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// SQLite-style ordering of two values, NULL included (NULL equals NULL and sorts first: what
/// `IS` uses). Errors only for BLOB against BLOB.
pub fn compare(a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    Ok(match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Integer(x), Value::Real(y)) => compare_int_real(*x, *y),
        (Value::Real(x), Value::Integer(y)) => compare_int_real(*y, *x).reverse(),
        (Value::Real(x), Value::Real(y)) => compare_reals(*x, *y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Blob(_), Value::Blob(_)) => return Err(EvalError::BlobComparison),
        _ => type_class(a).cmp(&type_class(b)),
    })
}

fn bool_value(b: bool) -> Value {
    Value::Integer(i64::from(b))
}

fn comparison(
    a: &Value,
    b: &Value,
    test: impl FnOnce(Ordering) -> bool,
) -> Result<Value, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    Ok(bool_value(test(compare(a, b)?)))
}

/// `a = b`: NULL if either is NULL, else 1/0.
pub fn eq(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_eq)
}

/// `a != b` (also `<>`).
pub fn ne(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_ne)
}

/// `a < b`.
pub fn lt(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_lt)
}

/// `a <= b`.
pub fn le(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_le)
}

/// `a > b`.
pub fn gt(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_gt)
}

/// `a >= b`.
pub fn ge(a: &Value, b: &Value) -> Result<Value, EvalError> {
    comparison(a, b, Ordering::is_ge)
}

/// `a IS b`: like `=` but NULL-safe (NULL IS NULL is 1); always 1/0.
pub fn is(a: &Value, b: &Value) -> Result<Value, EvalError> {
    Ok(bool_value(compare(a, b)?.is_eq()))
}

/// `a IS NOT b`: always 1/0.
pub fn is_not(a: &Value, b: &Value) -> Result<Value, EvalError> {
    Ok(bool_value(compare(a, b)?.is_ne()))
}

/// `x IS NULL`: 1/0.
pub fn is_null(x: &Value) -> Value {
    bool_value(x.is_null())
}

/// `x IS NOT NULL`: 1/0.
pub fn is_not_null(x: &Value) -> Value {
    bool_value(!x.is_null())
}

/// Whether `value` counts as true in `WHERE`, `AND`, `OR`, `NOT` and `iif` (PowerSync's
/// `sqliteBool`): NULL and BLOB false; INTEGER non-zero; REAL non-zero and not NaN; TEXT when its
/// leading integer is non-zero, parsed as JavaScript's `parseInt` does (leading whitespace, sign,
/// decimal digits or a `0x` hex prefix): `'12abc'`, `' -3'`, `'0x1f'` are true; `'0.5'`, `'abc'`,
/// `''` are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null | Value::Blob(_) => false,
        Value::Integer(v) => *v != 0,
        Value::Real(v) => *v != 0.0 && !v.is_nan(),
        Value::Text(s) => text_truthy(s),
    }
}

fn text_truthy(text: &str) -> bool {
    let trimmed = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}');
    let unsigned = trimmed
        .strip_prefix(['+', '-'])
        .unwrap_or(trimmed)
        .as_bytes();
    if unsigned.len() > 2 && unsigned[0] == b'0' && (unsigned[1] | 0x20) == b'x' {
        // "0x" without hex digits: parseInt reads the "0", which is false too.
        return unsigned[2..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .any(|&d| d != b'0');
    }
    unsigned
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .any(|&d| d != b'0')
}

/// `a AND b`: 1 if both are [`truthy`], else 0 (never NULL; PowerSync).
pub fn and(a: &Value, b: &Value) -> Value {
    bool_value(truthy(a) && truthy(b))
}

/// `a OR b`: 1 if either is [`truthy`], else 0 (never NULL; PowerSync).
pub fn or(a: &Value, b: &Value) -> Value {
    bool_value(truthy(a) || truthy(b))
}

/// `NOT x`: 0 if `x` is [`truthy`], else 1 — so `NOT NULL` is 1 (PowerSync; SQLite gives NULL).
pub fn not(x: &Value) -> Value {
    bool_value(!truthy(x))
}

/// The operands of a binary arithmetic operator after numeric conversion.
enum Numeric {
    Ints(i64, i64),
    Reals(f64, f64),
}

fn numeric_operands(a: &Value, b: &Value) -> Option<Numeric> {
    let as_number = |v: &Value| match v {
        Value::Integer(_) | Value::Real(_) => Some(v.clone()),
        Value::Null => None,
        other => Some(to_numeric(other)),
    };
    let (x, y) = (as_number(a)?, as_number(b)?);
    Some(match (x, y) {
        (Value::Integer(x), Value::Integer(y)) => Numeric::Ints(x, y),
        (x, y) => Numeric::Reals(real_of(&x), real_of(&y)),
    })
}

fn real_of(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Real(r) => *r,
        _ => 0.0,
    }
}

fn real_result(x: f64) -> Value {
    if x.is_nan() {
        Value::Null
    } else {
        Value::Real(x)
    }
}

fn arithmetic(
    a: &Value,
    b: &Value,
    int_op: fn(i64, i64) -> Option<i64>,
    real_op: fn(f64, f64) -> f64,
) -> Value {
    match numeric_operands(a, b) {
        None => Value::Null,
        Some(Numeric::Ints(x, y)) => match int_op(x, y) {
            Some(v) => Value::Integer(v),
            None => real_result(real_op(x as f64, y as f64)),
        },
        Some(Numeric::Reals(x, y)) => real_result(real_op(x, y)),
    }
}

/// `a + b`.
pub fn add(a: &Value, b: &Value) -> Value {
    arithmetic(a, b, i64::checked_add, |x, y| x + y)
}

/// `a - b`.
pub fn sub(a: &Value, b: &Value) -> Value {
    arithmetic(a, b, i64::checked_sub, |x, y| x - y)
}

/// `a * b`.
pub fn mul(a: &Value, b: &Value) -> Value {
    arithmetic(a, b, i64::checked_mul, |x, y| x * y)
}

/// `a / b`: NULL when `b` is zero; INTEGER division truncates toward zero.
pub fn div(a: &Value, b: &Value) -> Value {
    match numeric_operands(a, b) {
        None => Value::Null,
        Some(Numeric::Ints(_, 0)) => Value::Null,
        Some(Numeric::Ints(x, y)) => match x.checked_div(y) {
            Some(v) => Value::Integer(v),
            None => Value::Real(x as f64 / y as f64),
        },
        Some(Numeric::Reals(_, 0.0)) => Value::Null,
        Some(Numeric::Reals(x, y)) => real_result(x / y),
    }
}

/// Unary `-x`: numeric negation (`-'3'` is -3); `-i64::MIN` becomes REAL; NULL stays NULL.
pub fn negate(x: &Value) -> Value {
    match to_numeric(x) {
        Value::Integer(v) => v
            .checked_neg()
            .map_or(Value::Real(-(v as f64)), Value::Integer),
        Value::Real(v) => Value::Real(-v),
        _ => Value::Null,
    }
}

/// `a || b`: both sides as text, concatenated; NULL if either is NULL.
pub fn concat(a: &Value, b: &Value) -> Value {
    match (to_text(a), to_text(b)) {
        (Some(x), Some(y)) => {
            let mut out = String::with_capacity(x.len() + y.len());
            out.push_str(&x);
            out.push_str(&y);
            Value::Text(out)
        }
        _ => Value::Null,
    }
}

/// Parses an operand of `IN` / `&&` that must be a JSON array text.
fn json_array_operand(
    value: &Value,
    operator: &'static str,
    side: &'static str,
) -> Result<Vec<JsonValue>, EvalError> {
    let not_array = |got: String| EvalError::NotJsonArray {
        operator,
        side,
        got,
    };
    let Value::Text(text) = value else {
        let type_name = value.type_name().to_uppercase();
        let article = if type_name.starts_with('I') {
            "an"
        } else {
            "a"
        };
        return Err(not_array(format!("{article} {type_name} value")));
    };
    match json_path::parse(text) {
        Ok(JsonValue::Array(items)) => Ok(items),
        Ok(other) => Err(not_array(format!(
            "a JSON {}: '{}'",
            other.type_name(),
            excerpt(text)
        ))),
        Err(e) => Err(not_array(format!(
            "malformed JSON ({e}): '{}'",
            excerpt(text)
        ))),
    }
}

fn sql_equal(a: &Value, b: &Value) -> Result<bool, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(false);
    }
    Ok(compare(a, b)?.is_eq())
}

/// `x IN y`: whether `x` equals an element of the JSON array text `y` (1/0); NULL when either is
/// NULL; an error when `y` is not a JSON array text.
pub fn in_json_array(x: &Value, y: &Value) -> Result<Value, EvalError> {
    if x.is_null() || y.is_null() {
        return Ok(Value::Null);
    }
    let items = json_array_operand(y, "IN", "right")?;
    for item in &items {
        if sql_equal(x, &json_path::to_comparable_value(item))? {
            return Ok(Value::Integer(1));
        }
    }
    Ok(Value::Integer(0))
}

/// `a && b`: whether the JSON arrays `a` and `b` share an element (1/0); NULL when either is
/// NULL; an error when either is not a JSON array text.
pub fn overlap(a: &Value, b: &Value) -> Result<Value, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let left: Vec<Value> = json_array_operand(a, "&&", "left")?
        .iter()
        .map(json_path::to_comparable_value)
        .collect();
    let right: Vec<Value> = json_array_operand(b, "&&", "right")?
        .iter()
        .map(json_path::to_comparable_value)
        .collect();
    for x in &left {
        for y in &right {
            if sql_equal(x, y)? {
                return Ok(Value::Integer(1));
            }
        }
    }
    Ok(Value::Integer(0))
}

fn arrow_lookup<T>(
    json: &Value,
    path: &Value,
    operator: &'static str,
    fixed_json_extract: bool,
    found: impl FnOnce(Option<&JsonValue>) -> T,
) -> Result<Option<T>, EvalError> {
    let (Some(text), Some(path_text)) = (to_text(json), to_text(path)) else {
        return Ok(None);
    };
    let mode = if fixed_json_extract {
        PathMode::FixedArrow
    } else {
        PathMode::LegacyArrow
    };
    let path = JsonPath::parse(&path_text, mode).map_err(|message| EvalError::BadJsonPath {
        function: operator,
        message,
    })?;
    let document = json_path::parse(&text).map_err(|e| EvalError::MalformedJson {
        function: operator,
        message: e.to_string(),
    })?;
    Ok(Some(found(json_path::lookup(
        &document,
        &path,
        !fixed_json_extract,
    ))))
}

/// `json -> path`: the JSON text of the value at `path`, NULL when missing or when an operand is
/// NULL. A found JSON `null` gives the text `'null'` with `fixed_json_extract` and SQL NULL in
/// legacy mode (PowerSync). Path rules: see [`PathMode`]. Errors on malformed JSON.
pub fn json_arrow(
    json: &Value,
    path: &Value,
    fixed_json_extract: bool,
) -> Result<Value, EvalError> {
    let result = arrow_lookup(json, path, "->", fixed_json_extract, |found| match found {
        None => Value::Null,
        Some(JsonValue::Null) if !fixed_json_extract => Value::Null,
        Some(value) => Value::Text(value.to_json_string()),
    })?;
    Ok(result.unwrap_or(Value::Null))
}

/// `json ->> path`: the SQL value at `path` (see [`json_path::to_sql_value`]), NULL when missing
/// or when an operand is NULL. Errors on malformed JSON.
pub fn json_arrow2(
    json: &Value,
    path: &Value,
    fixed_json_extract: bool,
) -> Result<Value, EvalError> {
    let result = arrow_lookup(json, path, "->>", fixed_json_extract, |found| {
        found.map_or(Value::Null, |v| {
            json_path::to_sql_value(v, fixed_json_extract)
        })
    })?;
    Ok(result.unwrap_or(Value::Null))
}

/// A binary operator, resolved once at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `=` (also `==`).
    Eq,
    /// `!=` (also `<>`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `IS`.
    Is,
    /// `IS NOT`.
    IsNot,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `||`.
    Concat,
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `IN` with a JSON array on the right.
    In,
    /// `&&`.
    Overlap,
    /// `->`.
    JsonArrow,
    /// `->>`.
    JsonArrow2,
}

impl BinaryOp {
    /// The operator's SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Is => "IS",
            BinaryOp::IsNot => "IS NOT",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Concat => "||",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::In => "IN",
            BinaryOp::Overlap => "&&",
            BinaryOp::JsonArrow => "->",
            BinaryOp::JsonArrow2 => "->>",
        }
    }

    /// Applies the operator. `fixed_json_extract` matters only for `->` and `->>`.
    pub fn eval(self, a: &Value, b: &Value, fixed_json_extract: bool) -> Result<Value, EvalError> {
        match self {
            BinaryOp::Eq => eq(a, b),
            BinaryOp::Ne => ne(a, b),
            BinaryOp::Lt => lt(a, b),
            BinaryOp::Le => le(a, b),
            BinaryOp::Gt => gt(a, b),
            BinaryOp::Ge => ge(a, b),
            BinaryOp::Is => is(a, b),
            BinaryOp::IsNot => is_not(a, b),
            BinaryOp::Add => Ok(add(a, b)),
            BinaryOp::Sub => Ok(sub(a, b)),
            BinaryOp::Mul => Ok(mul(a, b)),
            BinaryOp::Div => Ok(div(a, b)),
            BinaryOp::Concat => Ok(concat(a, b)),
            BinaryOp::And => Ok(and(a, b)),
            BinaryOp::Or => Ok(or(a, b)),
            BinaryOp::In => in_json_array(a, b),
            BinaryOp::Overlap => overlap(a, b),
            BinaryOp::JsonArrow => json_arrow(a, b, fixed_json_extract),
            BinaryOp::JsonArrow2 => json_arrow2(a, b, fixed_json_extract),
        }
    }
}

/// A unary operator, resolved once at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnaryOp {
    /// `NOT x`.
    Not,
    /// `x IS NULL`.
    IsNull,
    /// `x IS NOT NULL`.
    IsNotNull,
    /// `-x`.
    Negate,
    /// `+x` (returns `x` unchanged, as SQLite does).
    Plus,
}

impl UnaryOp {
    /// Applies the operator (never fails).
    pub fn eval(self, x: &Value) -> Value {
        match self {
            UnaryOp::Not => not(x),
            UnaryOp::IsNull => is_null(x),
            UnaryOp::IsNotNull => is_not_null(x),
            UnaryOp::Negate => negate(x),
            UnaryOp::Plus => x.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn integers_and_reals_compare_exactly() {
        let big = Value::Integer(9_007_199_254_740_993);
        let rounded = Value::Real(9_007_199_254_740_992.0);
        assert_eq!(compare(&big, &rounded), Ok(Ordering::Greater));
        assert_eq!(
            compare(&Value::Integer(1), &Value::Real(1.0)),
            Ok(Ordering::Equal)
        );
        assert_eq!(
            compare(&Value::Integer(-1), &Value::Real(-1.5)),
            Ok(Ordering::Greater)
        );
        assert_eq!(
            compare(&Value::Integer(i64::MAX), &Value::Real(9.3e18)),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(&Value::Real(f64::NAN), &Value::Integer(i64::MIN)),
            Ok(Ordering::Less)
        );
        assert_eq!(
            compare(&Value::Real(f64::NAN), &Value::Real(f64::NAN)),
            Ok(Ordering::Equal)
        );
    }

    #[test]
    fn type_classes_order_and_blobs_do_not_compare() {
        assert_eq!(lt(&Value::Integer(99), &t("1")), Ok(Value::Integer(1)));
        assert_eq!(lt(&t("z"), &Value::Blob(vec![])), Ok(Value::Integer(1)));
        assert_eq!(eq(&Value::Null, &Value::Null), Ok(Value::Null));
        assert_eq!(is(&Value::Null, &Value::Null), Ok(Value::Integer(1)));
        assert_eq!(
            eq(&Value::Blob(vec![1]), &Value::Blob(vec![1])),
            Err(EvalError::BlobComparison)
        );
    }

    #[test]
    fn truthiness_follows_parse_int() {
        for (text, expected) in [
            ("1", true),
            ("12abc", true),
            ("  -3", true),
            ("0x1f", true),
            ("0x0", false),
            ("0x", false),
            ("0.5", false),
            ("abc", false),
            ("", false),
            ("00", false),
            ("1e5", true),
        ] {
            assert_eq!(truthy(&t(text)), expected, "{text:?}");
        }
        assert!(truthy(&Value::Real(0.1)));
        assert!(!truthy(&Value::Real(f64::NAN)));
        assert!(!truthy(&Value::Blob(vec![1])));
        assert_eq!(not(&Value::Null), Value::Integer(1));
        assert_eq!(and(&Value::Null, &Value::Integer(1)), Value::Integer(0));
        assert_eq!(or(&Value::Null, &Value::Integer(1)), Value::Integer(1));
    }

    #[test]
    fn arithmetic_overflows_into_real_and_divides_by_zero_to_null() {
        assert_eq!(
            add(&Value::Integer(i64::MAX), &Value::Integer(1)),
            Value::Real(9.223372036854776e18)
        );
        assert_eq!(
            div(&Value::Integer(7), &Value::Integer(-2)),
            Value::Integer(-3)
        );
        assert_eq!(
            div(&Value::Integer(i64::MIN), &Value::Integer(-1)),
            Value::Real(9.223372036854776e18)
        );
        assert_eq!(div(&Value::Integer(1), &Value::Integer(0)), Value::Null);
        assert_eq!(div(&Value::Real(1.0), &Value::Real(0.0)), Value::Null);
        assert_eq!(add(&t("1.5x"), &Value::Integer(1)), Value::Real(2.5));
        assert_eq!(mul(&t("abc"), &Value::Integer(3)), Value::Integer(0));
        assert_eq!(sub(&Value::Null, &Value::Integer(3)), Value::Null);
        assert_eq!(
            add(&Value::Real(f64::INFINITY), &Value::Real(f64::NEG_INFINITY)),
            Value::Null
        );
        assert_eq!(
            negate(&Value::Integer(i64::MIN)),
            Value::Real(9.223372036854776e18)
        );
        assert_eq!(negate(&t("3")), Value::Integer(-3));
    }

    #[test]
    fn in_and_overlap_use_json_arrays() {
        assert_eq!(
            in_json_array(&Value::Integer(1), &t("[1.0, 2]")),
            Ok(Value::Integer(1))
        );
        assert_eq!(
            in_json_array(&t("a"), &t("[\"b\", null]")),
            Ok(Value::Integer(0))
        );
        assert_eq!(in_json_array(&Value::Null, &t("[1]")), Ok(Value::Null));
        assert_eq!(
            in_json_array(&Value::Integer(1), &t("{\"a\":1}"))
                .unwrap_err()
                .to_string(),
            "IN: the right operand must be a JSON array text, got a JSON object: '{\"a\":1}'"
        );
        assert_eq!(
            in_json_array(&Value::Integer(1), &Value::Integer(1))
                .unwrap_err()
                .to_string(),
            "IN: the right operand must be a JSON array text, got an INTEGER value"
        );
        assert_eq!(overlap(&t("[1,2]"), &t("[3,2]")), Ok(Value::Integer(1)));
        assert_eq!(overlap(&t("[1,2]"), &t("[]")), Ok(Value::Integer(0)));
        assert!(overlap(&t("[1,2]"), &t("3")).is_err());
    }
}

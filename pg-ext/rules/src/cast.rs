//! Type conversions between SQLite values: `CAST(x AS …)` and the implicit conversions that
//! operators and functions apply (PROTOCOL.md §1.5 "CAST rules").
//!
//! Holds [`CastType`], [`cast`], and the conversions [`to_text`], [`to_blob`], [`to_numeric`],
//! [`to_integer`], [`to_real`] plus the text parsers behind them. It does not hold the operators
//! (`operators.rs`) nor the JSON/number formatting (`row_json.rs`).
//!
//! Choices, where PowerSync's JavaScript engine and SQLite differ:
//! - REAL → TEXT uses JavaScript's number formatting, as PowerSync does and as §1.5 notes: REAL
//!   1.0 becomes `'1'` (SQLite: `'1.0'`), 0.1+0.2 becomes `'0.30000000000000004'` (SQLite rounds
//!   to 15 digits), 3e60 becomes `'3e+60'`. This keeps object ids, `||` results and
//!   `CAST(x AS TEXT)` byte-identical to PowerSync's.
//! - TEXT → INTEGER / REAL / NUMERIC follow SQLite: leading whitespace, an optional sign, then the
//!   longest numeric prefix (`' -12.5abc'` → -12 / -12.5). PowerSync's engine ignores signs there
//!   (`'-5'` → 0), which §1.5 does not ask for. No prefix gives 0 / 0.0.
//! - TEXT → INTEGER beyond the 64-bit range clamps to the nearest bound (SQLite); REAL → INTEGER
//!   truncates toward zero (SQLite, §1.5; PowerSync floors) and clamps; NaN gives 0.
//! - TEXT → NUMERIC is decided by the text's shape (§1.5): no `.` and no exponent → INTEGER when
//!   it fits 64 bits, else REAL. So `CAST('1.0' AS NUMERIC)` is REAL 1.0 (SQLite's CAST gives
//!   INTEGER 1; SQLite's arithmetic treats `'1.0'` as REAL, like ferry).
//! - BLOB → TEXT decodes UTF-8, replacing invalid sequences with U+FFFD; X → BLOB is the UTF-8
//!   bytes of its text form (SQLite agrees for text; for numbers SQLite does the same).

use std::borrow::Cow;

use crate::row_json::js_number_string;
use crate::value::Value;

/// The target of `CAST(x AS <type>)`: the five names sync rules accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CastType {
    /// `text`.
    Text,
    /// `numeric`: INTEGER or REAL depending on the text's shape.
    Numeric,
    /// `integer`.
    Integer,
    /// `real`.
    Real,
    /// `blob`.
    Blob,
}

impl CastType {
    /// The cast type for a type name (case-insensitive); `None` for any other name (the compiler
    /// reports it).
    pub fn from_name(name: &str) -> Option<CastType> {
        const NAMES: [(&str, CastType); 5] = [
            ("text", CastType::Text),
            ("numeric", CastType::Numeric),
            ("integer", CastType::Integer),
            ("real", CastType::Real),
            ("blob", CastType::Blob),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| *t)
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            CastType::Text => "text",
            CastType::Numeric => "numeric",
            CastType::Integer => "integer",
            CastType::Real => "real",
            CastType::Blob => "blob",
        }
    }
}

/// `CAST(value AS to)`. NULL stays NULL; never fails.
pub fn cast(value: &Value, to: CastType) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match to {
        CastType::Text => match value {
            Value::Text(_) => value.clone(),
            _ => to_text(value).map_or(Value::Null, |t| Value::Text(t.into_owned())),
        },
        CastType::Numeric => to_numeric(value),
        CastType::Integer => to_integer(value).map_or(Value::Null, Value::Integer),
        CastType::Real => to_real(value).map_or(Value::Null, Value::Real),
        CastType::Blob => match value {
            Value::Blob(_) => value.clone(),
            _ => to_blob(value).map_or(Value::Null, |b| Value::Blob(b.into_owned())),
        },
    }
}

/// The text form of a REAL (JavaScript formatting; see the module documentation).
pub fn real_to_text(x: f64) -> String {
    js_number_string(x)
}

/// The text form of a value; `None` for NULL. Borrows for TEXT and valid UTF-8 BLOBs.
pub fn to_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::Integer(v) => Some(Cow::Owned(v.to_string())),
        Value::Real(v) => Some(Cow::Owned(real_to_text(*v))),
        Value::Text(s) => Some(Cow::Borrowed(s)),
        Value::Blob(b) => Some(String::from_utf8_lossy(b)),
    }
}

/// The bytes of a value (a BLOB's own, else the UTF-8 of its text form); `None` for NULL.
pub fn to_blob(value: &Value) -> Option<Cow<'_, [u8]>> {
    match value {
        Value::Null => None,
        Value::Blob(b) => Some(Cow::Borrowed(b)),
        Value::Text(s) => Some(Cow::Borrowed(s.as_bytes())),
        _ => to_text(value).map(|t| Cow::Owned(t.into_owned().into_bytes())),
    }
}

/// A value as a number: INTEGER and REAL unchanged, TEXT/BLOB parsed by [`text_to_numeric`],
/// NULL stays NULL. What arithmetic applies to its operands.
pub fn to_numeric(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Integer(_) | Value::Real(_) => value.clone(),
        Value::Text(s) => text_to_numeric(s),
        Value::Blob(b) => text_to_numeric(&String::from_utf8_lossy(b)),
    }
}

/// `CAST(value AS INTEGER)`; `None` for NULL.
pub fn to_integer(value: &Value) -> Option<i64> {
    Some(match value {
        Value::Null => return None,
        Value::Integer(v) => *v,
        Value::Real(v) => real_to_integer(*v),
        Value::Text(s) => text_to_integer(s),
        Value::Blob(b) => text_to_integer(&String::from_utf8_lossy(b)),
    })
}

/// `CAST(value AS REAL)`; `None` for NULL.
pub fn to_real(value: &Value) -> Option<f64> {
    Some(match value {
        Value::Null => return None,
        Value::Integer(v) => *v as f64,
        Value::Real(v) => *v,
        Value::Text(s) => text_to_real(s),
        Value::Blob(b) => text_to_real(&String::from_utf8_lossy(b)),
    })
}

/// A REAL truncated toward zero, clamped to the 64-bit range; NaN gives 0.
pub fn real_to_integer(x: f64) -> i64 {
    // `as` truncates toward zero, saturates at the bounds and maps NaN to 0.
    x as i64
}

/// SQLite's notion of leading whitespace.
fn is_sqlite_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The numeric prefix of a text: byte range (sign included, leading whitespace excluded) and
/// whether it is integer-shaped (no `.` and no exponent). `None` when there is no number.
fn numeric_prefix(text: &str) -> Option<(usize, usize, bool)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_sqlite_space(bytes[i]) {
        i += 1;
    }
    let start = i;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    let mut integer = true;
    if i < bytes.len() && bytes[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if digits > 0 || j > frac_start {
            digits += j - frac_start;
            integer = false;
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        let exp_digits = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_digits {
            integer = false;
            i = j;
        }
    }
    Some((start, i, integer))
}

/// Parses a numeric prefix for f64, which accepts neither a leading `+` before `.5` nor
/// forms like `5.` everywhere: normalizes what `str::parse` needs.
fn parse_prefix_f64(prefix: &str) -> f64 {
    if let Ok(v) = prefix.parse::<f64>() {
        return v;
    }
    // Rust rejects nothing SQLite's grammar here allows except odd sign/dot combinations;
    // fall back to a cleaned copy.
    let cleaned: String = prefix.trim_start_matches('+').to_owned();
    cleaned.parse().unwrap_or(0.0)
}

/// The number a whole text spells (surrounding whitespace allowed, nothing else): `' 2023.5 '` →
/// 2023.5, `'12abc'` → `None`. What SQLite's date functions accept as a numeric time value.
pub fn parse_whole_number(text: &str) -> Option<f64> {
    let (start, end, _) = numeric_prefix(text)?;
    if !text.as_bytes()[end..].iter().all(|&b| is_sqlite_space(b)) {
        return None;
    }
    Some(parse_prefix_f64(&text[start..end]))
}

/// TEXT → number by shape: `'12'` → 12, `' -3.5e2x'` → -350.0, `'1.0'` → 1.0, `'abc'` → 0,
/// `'99999999999999999999'` → 1e20 (REAL).
pub fn text_to_numeric(text: &str) -> Value {
    match numeric_prefix(text) {
        None => Value::Integer(0),
        Some((start, end, true)) => {
            let prefix = &text[start..end];
            match prefix.parse::<i64>() {
                Ok(v) => Value::Integer(v),
                Err(_) => Value::Real(parse_prefix_f64(prefix)),
            }
        }
        Some((start, end, false)) => Value::Real(parse_prefix_f64(&text[start..end])),
    }
}

/// TEXT → INTEGER: the leading integer (whitespace, sign, digits), clamped to the 64-bit range;
/// 0 when there is none. `'1e3'` → 1, `' -12.9'` → -12.
pub fn text_to_integer(text: &str) -> i64 {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_sqlite_space(bytes[i]) {
        i += 1;
    }
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        match magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if negative {
        if overflow || magnitude > i64::MIN.unsigned_abs() {
            i64::MIN
        } else {
            0i64.wrapping_sub_unsigned(magnitude)
        }
    } else if overflow || magnitude > i64::MAX as u64 {
        i64::MAX
    } else {
        magnitude as i64
    }
}

/// TEXT → REAL: the longest numeric prefix as a double; 0.0 when there is none.
pub fn text_to_real(text: &str) -> f64 {
    match numeric_prefix(text) {
        None => 0.0,
        Some((start, end, _)) => parse_prefix_f64(&text[start..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parsers_take_the_numeric_prefix() {
        assert_eq!(text_to_numeric("12"), Value::Integer(12));
        assert_eq!(text_to_numeric("  -12abc"), Value::Integer(-12));
        assert_eq!(text_to_numeric("1.2abc"), Value::Real(1.2));
        assert_eq!(text_to_numeric("1.2e60abc"), Value::Real(1.2e60));
        assert_eq!(text_to_numeric(" 1e60abc"), Value::Real(1e60));
        assert_eq!(text_to_numeric(".5"), Value::Real(0.5));
        assert_eq!(text_to_numeric("5."), Value::Real(5.0));
        assert_eq!(text_to_numeric("+7"), Value::Integer(7));
        assert_eq!(text_to_numeric("1e"), Value::Integer(1));
        assert_eq!(text_to_numeric("."), Value::Integer(0));
        assert_eq!(text_to_numeric("abc"), Value::Integer(0));
        assert_eq!(text_to_numeric("-"), Value::Integer(0));
        assert_eq!(
            text_to_numeric("9223372036854775808"),
            Value::Real(9223372036854775808.0)
        );
        assert_eq!(text_to_integer("1e3"), 1);
        assert_eq!(text_to_integer(" -12.9"), -12);
        assert_eq!(text_to_integer("99999999999999999999"), i64::MAX);
        assert_eq!(text_to_integer("-9223372036854775808"), i64::MIN);
        assert_eq!(text_to_integer("-99999999999999999999"), i64::MIN);
        assert_eq!(text_to_integer("x1"), 0);
        assert_eq!(text_to_real("1.5e3x"), 1500.0);
        assert_eq!(text_to_real("+.5"), 0.5);
        assert_eq!(text_to_real("Infinity"), 0.0);
        assert_eq!(text_to_real("1e999"), f64::INFINITY);
    }

    #[test]
    fn casts_follow_the_documented_rules() {
        let t = |s: &str| Value::Text(s.to_owned());
        assert_eq!(cast(&Value::Null, CastType::Text), Value::Null);
        assert_eq!(cast(&Value::Integer(1), CastType::Text), t("1"));
        assert_eq!(cast(&Value::Real(1.0), CastType::Text), t("1"));
        assert_eq!(cast(&Value::Real(1.2), CastType::Text), t("1.2"));
        assert_eq!(cast(&Value::Blob(b"ab".to_vec()), CastType::Text), t("ab"));
        assert_eq!(
            cast(&Value::Blob(vec![0xff]), CastType::Text),
            t("\u{FFFD}")
        );
        assert_eq!(
            cast(&Value::Real(1.2), CastType::Integer),
            Value::Integer(1)
        );
        assert_eq!(
            cast(&Value::Real(-1.7), CastType::Integer),
            Value::Integer(-1)
        );
        assert_eq!(
            cast(&Value::Real(1e30), CastType::Integer),
            Value::Integer(i64::MAX)
        );
        assert_eq!(
            cast(&Value::Real(f64::NAN), CastType::Integer),
            Value::Integer(0)
        );
        assert_eq!(cast(&t("1.2abc"), CastType::Integer), Value::Integer(1));
        assert_eq!(cast(&Value::Integer(1), CastType::Real), Value::Real(1.0));
        assert_eq!(cast(&t("abc"), CastType::Real), Value::Real(0.0));
        assert_eq!(cast(&t("1.0"), CastType::Numeric), Value::Real(1.0));
        assert_eq!(cast(&Value::Real(1.0), CastType::Numeric), Value::Real(1.0));
        assert_eq!(
            cast(&Value::Integer(1), CastType::Blob),
            Value::Blob(b"1".to_vec())
        );
        assert_eq!(
            cast(&t("abc"), CastType::Blob),
            Value::Blob(b"abc".to_vec())
        );
        assert_eq!(CastType::from_name("INTEGER"), Some(CastType::Integer));
        assert_eq!(CastType::from_name("int"), None);
    }
}

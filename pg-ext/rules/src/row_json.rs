//! The row JSON writer (PROTOCOL.md §1.7) and the bucket-parameter serializer (§1.6), with the
//! number and string formatting they share.
//!
//! Holds [`row_json`] / [`write_row_json`] (the `data` string of a PUT), [`bucket_parameters_json`]
//! (the `[...]` part of a bucket id), and the formatting primitives [`write_json_string`],
//! [`write_js_number`] and [`write_real_json`]. Bucket ids themselves are built in `bucket_id.rs`;
//! JSON parsing lives in `json_path.rs`.
//!
//! Byte-compatibility with PowerSync matters here (checksums hash these strings, bucket ids must be
//! identical across servers), so the formats are PowerSync's exactly:
//! - strings are escaped as `JSON.stringify` does: `"` and `\` with a backslash, `\b \f \n \r \t`
//!   short forms, other control characters as `\u00xx`; everything else, non-ASCII included, raw;
//! - INTEGER values are plain digits (full 64-bit precision);
//! - REAL values use JavaScript's `Number.prototype.toString` (shortest round-trip digits, exponent
//!   form below 1e-6 and from 1e21). In row JSON an integral result gets `.0` (`3.0`, but `1e+21`
//!   stays as is) so clients keep the type; in bucket ids it does not (`1` for both 1 and 1.0).
//!   NaN and ±Infinity are written as `null` in both (PowerSync would write the invalid JSON token
//!   `NaN` in row JSON; ferry never emits invalid JSON).

use std::fmt::Write as _;

use crate::value::Value;

/// Appends `s` as a JSON string literal, escaped exactly as JavaScript's `JSON.stringify` does.
pub fn write_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `b` is ASCII, so `i` and `i + 1` are char boundaries.
        out.push_str(&s[run_start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

/// A fixed-size buffer for formatting one number without allocating.
struct NumBuf {
    bytes: [u8; 40],
    len: usize,
}

impl NumBuf {
    fn new() -> Self {
        NumBuf {
            bytes: [0; 40],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII produced by `fmt` is ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for NumBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `x` formatted as JavaScript's `Number.prototype.toString()` does: `NaN`, `Infinity`,
/// `-Infinity`, `0` (also for -0), `1`, `1.5`, `0.000001`, `1e-7`, `123456789012345680000`,
/// `1e+21`, `1.2345e+100`.
///
/// Used for REAL → TEXT (CAST, `||`, functions taking text) and for every REAL written as JSON.
pub fn write_js_number(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if x == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e3", "5e-7".
    let mut buf = NumBuf::new();
    if write!(buf, "{:e}", x.abs()).is_err() {
        let _ = write!(out, "{x}");
        return;
    }
    let formatted = buf.as_str();
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((formatted, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits = [0u8; 20];
    let mut k = 0;
    for &b in mantissa.as_bytes() {
        if b.is_ascii_digit() && k < digits.len() {
            digits[k] = b;
            k += 1;
        }
    }
    let digits = std::str::from_utf8(&digits[..k]).unwrap_or("0");
    let k = k as i32;
    // The value is 0.d1d2…dk × 10^n.
    let n = exponent + 1;
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (int_part, frac_part) = digits.split_at(n as usize);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let _ = write!(
            out,
            "e{}{}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    }
}

/// `x` as JavaScript's `String(x)` (see [`write_js_number`]).
pub fn js_number_string(x: f64) -> String {
    let mut out = String::new();
    write_js_number(&mut out, x);
    out
}

/// Appends a REAL as row JSON writes it: [`write_js_number`], plus `.0` when that is all digits
/// (`3.0`, `-12.0`; `1e+21` unchanged); NaN and ±Infinity as `null`.
pub fn write_real_json(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    let start = out.len();
    write_js_number(out, x);
    let written = &out.as_bytes()[start..];
    if written.iter().all(|&b| b.is_ascii_digit() || b == b'-') {
        out.push_str(".0");
    }
}

fn write_integer(out: &mut String, v: i64) {
    let _ = write!(out, "{v}");
}

/// Appends one non-BLOB value as row JSON (BLOBs are written as `null`; [`write_row_json`] skips
/// them before calling this).
pub fn write_value_json(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Blob(_) => out.push_str("null"),
        Value::Integer(v) => write_integer(out, *v),
        Value::Real(v) => write_real_json(out, *v),
        Value::Text(s) => write_json_string(out, s),
    }
}

/// Appends the row JSON object of `columns` (in the given order) to `out`: `{"id":"a","n":1}`.
///
/// BLOB columns are left out entirely (PROTOCOL.md §1.4, `filterJsonRow`). Column names are
/// expected to be unique; a repeated name is written twice.
pub fn write_row_json<'a, I>(out: &mut String, columns: I)
where
    I: IntoIterator<Item = (&'a str, &'a Value)>,
{
    out.push('{');
    let mut first = true;
    for (name, value) in columns {
        if matches!(value, Value::Blob(_)) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_json_string(out, name);
        out.push(':');
        write_value_json(out, value);
    }
    out.push('}');
}

/// The row JSON object of `columns` (see [`write_row_json`]).
pub fn row_json<'a, I>(columns: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a Value)>,
    I::IntoIter: Clone,
{
    let iter = columns.into_iter();
    let estimate: usize = iter
        .clone()
        .map(|(name, value)| {
            name.len()
                + 4
                + match value {
                    Value::Text(s) => s.len() + 2,
                    Value::Blob(_) => 0,
                    _ => 20,
                }
        })
        .sum();
    let mut out = String::with_capacity(estimate + 2);
    write_row_json(&mut out, iter);
    out
}

/// The JSON array of bucket parameter values as it appears in a bucket id (PROTOCOL.md §1.6):
/// compact, INTEGER as digits, REAL in JavaScript form **without** a forced `.0` (INTEGER 1 and
/// REAL 1.0 both give `1`), TEXT as a JSON string, NULL as `null`, non-finite REAL as `null`.
/// `None` if a value is a BLOB (the bucket is skipped).
pub fn bucket_parameters_json(params: &[Value]) -> Option<String> {
    let mut out = String::with_capacity(2 + params.len() * 8);
    write_bucket_parameters_json(&mut out, params)?;
    Some(out)
}

/// Appends [`bucket_parameters_json`] to `out`; `None` (with `out` partly written) on a BLOB.
pub fn write_bucket_parameters_json(out: &mut String, params: &[Value]) -> Option<()> {
    out.push('[');
    for (i, value) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            Value::Null => out.push_str("null"),
            Value::Integer(v) => write_integer(out, *v),
            Value::Real(v) if v.is_finite() => write_js_number(out, *v),
            Value::Real(_) => out.push_str("null"),
            Value::Text(s) => write_json_string(out, s),
            Value::Blob(_) => return None,
        }
    }
    out.push(']');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_number_formatting_matches_javascript() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.4, "123.4"),
            (1e-6, "0.000001"),
            (1.5e-6, "0.0000015"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e21, "1e+21"),
            (3e60, "3e+60"),
            (1.2345e100, "1.2345e+100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (9007199254740993.0, "9007199254740992"),
            (39.7392, "39.7392"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(x, expected) in cases {
            assert_eq!(js_number_string(x), expected, "formatting {x:?}");
        }
    }

    #[test]
    fn row_json_marks_integral_reals_and_drops_blobs() {
        let values = [
            ("id", Value::Text("a\"b\\c\n\u{1}é😀\u{2028}".into())),
            ("n", Value::Integer(i64::MIN)),
            ("r", Value::Real(3.0)),
            ("neg", Value::Real(-2.0)),
            ("f", Value::Real(0.5)),
            ("big", Value::Real(1e21)),
            ("nan", Value::Real(f64::NAN)),
            ("bin", Value::Blob(vec![1, 2])),
            ("z", Value::Null),
        ];
        let json = row_json(values.iter().map(|(k, v)| (*k, v)));
        assert_eq!(
            json,
            "{\"id\":\"a\\\"b\\\\c\\n\\u0001é😀\u{2028}\",\"n\":-9223372036854775808,\"r\":3.0,\"neg\":-2.0,\"f\":0.5,\"big\":1e+21,\"nan\":null,\"z\":null}"
        );
        let empty: [(&str, &Value); 0] = [];
        assert_eq!(row_json(empty), "{}");
    }

    #[test]
    fn bucket_parameters_do_not_mark_reals() {
        assert_eq!(bucket_parameters_json(&[]).as_deref(), Some("[]"));
        assert_eq!(
            bucket_parameters_json(&[
                Value::Integer(1),
                Value::Real(1.0),
                Value::Real(2.5),
                Value::Text("u_123".into()),
                Value::Null,
                Value::Real(f64::INFINITY),
            ])
            .as_deref(),
            Some("[1,1,2.5,\"u_123\",null,null]")
        );
        assert_eq!(bucket_parameters_json(&[Value::Blob(vec![])]), None);
    }
}

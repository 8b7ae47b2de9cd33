//! Postgres → SQLite value conversion (PROTOCOL.md §1.7), from Postgres' text output.
//!
//! Holds [`PgType`] (the conversions ferry distinguishes, with [`PgType::from_builtin_oid`]),
//! [`ValueOptions`] / [`Precision`] (the `timestamps_iso8601` and `timestamp_max_precision`
//! settings), and [`convert`]. The input is the type output function's text as produced under the
//! settings the decoding session pins: `DateStyle ISO`, `TimeZone UTC`, `extra_float_digits 3`,
//! `bytea_output hex`. Reading tuples, TOAST and type lookups are the extension's business; the
//! date functions are in `datetime.rs`.
//!
//! [`convert`] never fails and never panics: text it cannot read as its type is returned as TEXT
//! unchanged. Results per type:
//! - `bool` `t`/`f` → INTEGER 1/0; `int2/int4/int8/oid` → INTEGER; `float4/float8` → REAL, with
//!   `NaN`, `Infinity`, `-Infinity` kept as REAL NaN/±inf (row JSON writes them as `null`).
//! - `numeric`, `money`, `interval`, `timetz`, `text`, `uuid`, `json(b)`, enums and every other
//!   type → TEXT as given.
//! - `bytea` `\x…` → BLOB.
//! - `date` → as given (BC dates too), `infinity` → `9999-12-31`, `-infinity` → `0000-01-01`.
//! - `timestamp` → legacy: as given; ISO: `YYYY-MM-DDTHH:MM:SS.ffffff` (fraction padded to 6
//!   digits, then cut to the precision; `seconds` drops it with its dot).
//! - `timestamptz` → normalized to UTC (offsets other than `+00` are applied); legacy:
//!   `YYYY-MM-DD HH:MM:SS[.fraction as given]Z`; ISO: `YYYY-MM-DDTHH:MM:SS.ffffffZ` as above.
//! - `infinity` / `-infinity` timestamps → `9999-12-31 23:59:59` / `0000-01-01 00:00:00` (with `T`
//!   in ISO mode, `Z` appended for timestamptz, never a fraction — PowerSync's values).
//! - BC timestamps are returned as given (PowerSync gives NULL); years past 9999 are normalized
//!   like any other (PowerSync gives NULL).
//! - `time` → legacy as given; ISO pads/cuts the fraction like timestamps.
//! - `pg_lsn` → both halves zero-padded to 8 hex digits, `00000016/B374D848`.
//! - arrays → TEXT holding a JSON array: elements converted by their own type, then written as
//!   JSON (INTEGER digits, REAL in row JSON form, TEXT strings, `json`/`jsonb` elements embedded
//!   as they are, BLOB and NULL elements `null`), nested arrays nested; `[1:2]=` bounds ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::datetime::{civil_from_days, days_from_civil};
use crate::functions::hex_decode;
use crate::row_json::{write_json_string, write_real_json};
use crate::value::Value;

/// How a Postgres column's text is converted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PgType {
    /// `bool`.
    Bool,
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8`.
    Int8,
    /// `oid`.
    Oid,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `numeric` (kept as text: precision preserved).
    Numeric,
    /// `money` (kept as text).
    Money,
    /// `text`, `varchar`, `bpchar`, `name`, `"char"`.
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timetz` (kept as text).
    TimeTz,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    Timestamptz,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `uuid`.
    Uuid,
    /// `pg_lsn`.
    PgLsn,
    /// `interval` (kept as text).
    Interval,
    /// An array of the element type.
    Array(Box<PgType>),
    /// Anything else (enums, domains, composites, ranges, geometric and network types …): text.
    Other,
}

/// Built-in scalar types ferry converts specially.
const SCALARS: &[(u32, PgType)] = &[
    (16, PgType::Bool),
    (17, PgType::Bytea),
    (18, PgType::Text),
    (19, PgType::Text),
    (20, PgType::Int8),
    (21, PgType::Int2),
    (23, PgType::Int4),
    (25, PgType::Text),
    (26, PgType::Oid),
    (114, PgType::Json),
    (700, PgType::Float4),
    (701, PgType::Float8),
    (790, PgType::Money),
    (1042, PgType::Text),
    (1043, PgType::Text),
    (1082, PgType::Date),
    (1083, PgType::Time),
    (1114, PgType::Timestamp),
    (1184, PgType::Timestamptz),
    (1186, PgType::Interval),
    (1266, PgType::TimeTz),
    (1700, PgType::Numeric),
    (2950, PgType::Uuid),
    (3220, PgType::PgLsn),
    (3802, PgType::Jsonb),
];

/// Other built-in scalar types (converted as text).
const OTHER_SCALARS: &[u32] = &[
    22, 24, 27, 28, 29, 30, 142, 600, 601, 602, 603, 604, 628, 650, 705, 718, 774, 829, 869, 1033,
    1560, 1562, 1790, 2202, 2203, 2204, 2205, 2206, 2970, 3614, 3615, 3642, 3734, 3769, 4072, 4089,
    4096, 4191, 5038, 5069,
];

/// Built-in array types: (array OID, element OID), from `pg_type.typarray`.
const ARRAYS: &[(u32, u32)] = &[
    (1000, 16),
    (1001, 17),
    (1002, 18),
    (1003, 19),
    (1016, 20),
    (1005, 21),
    (1006, 22),
    (1007, 23),
    (1008, 24),
    (1009, 25),
    (1028, 26),
    (1010, 27),
    (1011, 28),
    (1012, 29),
    (1013, 30),
    (199, 114),
    (143, 142),
    (271, 5069),
    (1017, 600),
    (1018, 601),
    (1019, 602),
    (1027, 604),
    (629, 628),
    (1021, 700),
    (1022, 701),
    (719, 718),
    (791, 790),
    (1040, 829),
    (1041, 869),
    (651, 650),
    (775, 774),
    (1034, 1033),
    (1014, 1042),
    (1015, 1043),
    (1182, 1082),
    (1183, 1083),
    (1115, 1114),
    (1185, 1184),
    (1187, 1186),
    (1270, 1266),
    (1561, 1560),
    (1563, 1562),
    (1231, 1700),
    (2201, 1790),
    (2207, 2202),
    (2208, 2203),
    (2209, 2204),
    (2210, 2205),
    (2211, 2206),
    (4192, 4191),
    (4090, 4089),
    (4097, 4096),
    (2949, 2970),
    (2951, 2950),
    (3221, 3220),
    (3643, 3614),
    (3644, 3642),
    (3645, 3615),
    (3735, 3734),
    (3770, 3769),
    (3807, 3802),
    (4073, 4072),
    (5039, 5038),
];

/// `box[]`: its elements are separated by `;`, so it is kept as text.
const BOX_ARRAY_OID: u32 = 1020;

impl PgType {
    /// The conversion for a built-in type OID: the scalars above, `Other` for built-in types
    /// without a special conversion, arrays of any of those. `None` for OIDs that are not built in
    /// (enums, domains, composites, extension types): treat those as [`PgType::Other`]
    /// (PowerSync's behaviour without `custom_postgres_types`) or resolve them first.
    pub fn from_builtin_oid(oid: u32) -> Option<PgType> {
        if let Some((_, ty)) = SCALARS.iter().find(|(o, _)| *o == oid) {
            return Some(ty.clone());
        }
        if OTHER_SCALARS.contains(&oid) || oid == BOX_ARRAY_OID {
            return Some(PgType::Other);
        }
        let (_, element) = ARRAYS.iter().find(|(array, _)| *array == oid)?;
        let element = PgType::from_builtin_oid(*element)?;
        Some(PgType::Array(Box::new(element)))
    }
}

/// Precision kept for fractional seconds in ISO timestamps (`config.timestamp_max_precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// No fraction.
    Seconds,
    /// 3 digits.
    Milliseconds,
    /// 6 digits (Postgres' own precision; the default).
    #[default]
    Microseconds,
    /// Up to 9 digits; Postgres has 6, so the same as microseconds.
    Nanoseconds,
}

impl Precision {
    /// The precision named as in sync rules config (`seconds`, `milliseconds`, …).
    pub fn from_name(name: &str) -> Option<Precision> {
        match name {
            "seconds" => Some(Precision::Seconds),
            "milliseconds" => Some(Precision::Milliseconds),
            "microseconds" => Some(Precision::Microseconds),
            "nanoseconds" => Some(Precision::Nanoseconds),
            _ => None,
        }
    }

    fn digits(self) -> usize {
        match self {
            Precision::Seconds => 0,
            Precision::Milliseconds => 3,
            Precision::Microseconds | Precision::Nanoseconds => 6,
        }
    }
}

/// The sync rules settings that change converted values. `Default` is the legacy behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ValueOptions {
    /// `timestamps_iso8601`: timestamps with `T` and a fixed-width fraction.
    pub timestamps_iso8601: bool,
    /// `timestamp_max_precision`, used only with `timestamps_iso8601`.
    pub timestamp_max_precision: Precision,
}

/// Converts Postgres' text output `text` of a value of type `ty` (see the module documentation).
pub fn convert(ty: &PgType, text: &str, options: &ValueOptions) -> Value {
    let raw = || Value::Text(text.to_owned());
    match ty {
        PgType::Bool => match text {
            "t" | "true" => Value::Integer(1),
            "f" | "false" => Value::Integer(0),
            _ => raw(),
        },
        PgType::Int2 | PgType::Int4 | PgType::Int8 | PgType::Oid => {
            text.parse().map_or_else(|_| raw(), Value::Integer)
        }
        PgType::Float4 | PgType::Float8 => text.parse().map_or_else(|_| raw(), Value::Real),
        PgType::Bytea => text
            .strip_prefix("\\x")
            .and_then(hex_decode)
            .map_or_else(raw, Value::Blob),
        PgType::Date => Value::Text(
            match text {
                "infinity" => "9999-12-31",
                "-infinity" => "0000-01-01",
                other => other,
            }
            .to_owned(),
        ),
        PgType::Timestamp => timestamp(text, false, options).map_or_else(raw, Value::Text),
        PgType::Timestamptz => timestamp(text, true, options).map_or_else(raw, Value::Text),
        PgType::Time => time(text, options).map_or_else(raw, Value::Text),
        PgType::PgLsn => lsn(text).map_or_else(raw, Value::Text),
        PgType::Array(element) => array(element, text, options).map_or_else(raw, Value::Text),
        PgType::Numeric
        | PgType::Money
        | PgType::Text
        | PgType::TimeTz
        | PgType::Json
        | PgType::Jsonb
        | PgType::Uuid
        | PgType::Interval
        | PgType::Other => raw(),
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `HH:MM:SS` with 2-digit fields.
fn valid_hms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
}

/// The fraction digits for ISO output: padded to 6, cut to the precision; `""` or `.ddd`.
fn iso_fraction(fraction: &str, precision: Precision) -> String {
    let n = precision.digits();
    if n == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(n + 1);
    out.push('.');
    out.extend(fraction.chars().chain(std::iter::repeat('0')).take(n));
    out
}

/// Splits `HH:MM:SS[.ffffff]` into the seconds part and the fraction digits.
fn split_fraction(time: &str) -> Option<(&str, &str)> {
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) if all_digits(f) => (hms, f),
        Some(_) => return None,
        None => (time, ""),
    };
    valid_hms(hms).then_some((hms, fraction))
}

fn time(text: &str, options: &ValueOptions) -> Option<String> {
    let (hms, fraction) = split_fraction(text)?;
    if !options.timestamps_iso8601 {
        return Some(text.to_owned());
    }
    Some(format!(
        "{hms}{}",
        iso_fraction(fraction, options.timestamp_max_precision)
    ))
}

/// Parses a UTC offset `±HH[:MM[:SS]]` into seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let mut seconds = 0i64;
    let mut parts = 0;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 || part.len() != 2 || !all_digits(part) {
            return None;
        }
        let v: i64 = part.parse().ok()?;
        seconds += v * [3600, 60, 1][i];
        parts += 1;
    }
    (parts > 0).then_some(sign * seconds)
}

/// Converts a `timestamp` / `timestamptz` text; `None` when it is not in the expected form.
fn timestamp(text: &str, with_zone: bool, options: &ValueOptions) -> Option<String> {
    let iso = options.timestamps_iso8601;
    let separator = if iso { 'T' } else { ' ' };
    let zone = if with_zone { "Z" } else { "" };
    match text {
        "infinity" => return Some(format!("9999-12-31{separator}23:59:59{zone}")),
        "-infinity" => return Some(format!("0000-01-01{separator}00:00:00{zone}")),
        _ => {}
    }
    let (date, rest) = text.split_once(' ')?;
    let (year, month, day) = parse_date(date)?;
    let (time_part, offset) = if with_zone {
        let at = rest.find(['+', '-'])?;
        (&rest[..at], parse_offset(&rest[at..])?)
    } else {
        (rest, 0)
    };
    let (hms, fraction) = split_fraction(time_part)?;
    let fraction_text = if iso {
        Cow::Owned(iso_fraction(fraction, options.timestamp_max_precision))
    } else if fraction.is_empty() {
        Cow::Borrowed("")
    } else {
        Cow::Owned(format!(".{fraction}"))
    };
    if !with_zone && !iso {
        return Some(text.to_owned());
    }
    let (date_text, hms_text) = if offset == 0 {
        (Cow::Borrowed(date), Cow::Borrowed(hms))
    } else {
        let h: i64 = hms[0..2].parse().ok()?;
        let m: i64 = hms[3..5].parse().ok()?;
        let s: i64 = hms[6..8].parse().ok()?;
        let total = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset;
        let (y, mo, d) = civil_from_days(total.div_euclid(86_400));
        let secs = total.rem_euclid(86_400);
        if y < 1 {
            return None;
        }
        (
            Cow::Owned(format!("{y:04}-{mo:02}-{d:02}")),
            Cow::Owned(format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )),
        )
    };
    Some(format!(
        "{date_text}{separator}{hms_text}{fraction_text}{zone}"
    ))
}

/// `YYYY-MM-DD` (4 or more year digits, no BC) into its parts.
fn parse_date(date: &str) -> Option<(i64, u32, u32)> {
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() < 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    // Postgres' largest year is 294276; anything far beyond is not its output.
    let plausible = y <= 1_000_000 && (1..=12).contains(&m) && (1..=31).contains(&d);
    plausible.then_some((y, m, d))
}

fn lsn(text: &str) -> Option<String> {
    let (high, low) = text.split_once('/')?;
    let ok = |s: &str| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    (ok(high) && ok(low)).then(|| format!("{high:0>8}/{low:0>8}"))
}

/// A parsed Postgres array literal.
enum ArrayNode<'a> {
    Null,
    Element(Cow<'a, str>),
    List(Vec<ArrayNode<'a>>),
}

/// Deepest accepted array nesting (Postgres allows 6 dimensions).
const MAX_ARRAY_DEPTH: usize = 16;

struct ArrayParser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> ArrayParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn list(&mut self, depth: usize) -> Option<ArrayNode<'a>> {
        if depth > MAX_ARRAY_DEPTH || self.peek() != Some(b'{') {
            return None;
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Some(ArrayNode::List(items));
        }
        loop {
            self.skip_ws();
            let item = match self.peek()? {
                b'{' => self.list(depth + 1)?,
                b'"' => ArrayNode::Element(self.quoted()?),
                _ => self.unquoted()?,
            };
            items.push(item);
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(ArrayNode::List(items));
                }
                _ => return None,
            }
        }
    }

    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut chars = self.text[start..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    let value = match owned {
                        Some(s) => Cow::Owned(s),
                        None => Cow::Borrowed(&self.text[start..start + i]),
                    };
                    self.pos = start + i + 1;
                    return Some(value);
                }
                '\\' => {
                    let buffer =
                        owned.get_or_insert_with(|| self.text[start..start + i].to_owned());
                    let (_, escaped) = chars.next()?;
                    buffer.push(escaped);
                }
                c => {
                    if let Some(buffer) = owned.as_mut() {
                        buffer.push(c);
                    }
                }
            }
        }
        None
    }

    fn unquoted(&mut self) -> Option<ArrayNode<'a>> {
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut chars = self.text[start..].char_indices();
        let mut end = self.text.len() - start;
        while let Some((i, c)) = chars.next() {
            match c {
                ',' | '}' => {
                    end = i;
                    break;
                }
                '{' | '"' => return None,
                '\\' => {
                    let buffer =
                        owned.get_or_insert_with(|| self.text[start..start + i].to_owned());
                    let (_, escaped) = chars.next()?;
                    buffer.push(escaped);
                }
                c => {
                    if let Some(buffer) = owned.as_mut() {
                        buffer.push(c);
                    }
                }
            }
        }
        self.pos = start + end;
        let value = match owned {
            Some(s) => Cow::Owned(s.trim_end().to_owned()),
            None => {
                let s = self.text[start..start + end].trim_end();
                if s.eq_ignore_ascii_case("NULL") {
                    return Some(ArrayNode::Null);
                }
                Cow::Borrowed(s)
            }
        };
        if value.is_empty() {
            return None;
        }
        Some(ArrayNode::Element(value))
    }
}

fn array(element: &PgType, text: &str, options: &ValueOptions) -> Option<String> {
    let mut body = text.trim_start();
    if body.starts_with('[') {
        body = body.split_once('=')?.1.trim_start();
    }
    let mut parser = ArrayParser { text: body, pos: 0 };
    let node = parser.list(0)?;
    parser.skip_ws();
    if parser.pos != body.len() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 2);
    write_array_json(&mut out, &node, element, options);
    Some(out)
}

fn write_array_json(
    out: &mut String,
    node: &ArrayNode<'_>,
    element: &PgType,
    options: &ValueOptions,
) {
    match node {
        ArrayNode::Null => out.push_str("null"),
        ArrayNode::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_array_json(out, item, element, options);
            }
            out.push(']');
        }
        ArrayNode::Element(text) => match element {
            PgType::Json | PgType::Jsonb => out.push_str(text),
            _ => match convert(element, text, options) {
                Value::Null | Value::Blob(_) => out.push_str("null"),
                Value::Integer(v) => {
                    use std::fmt::Write as _;
                    let _ = write!(out, "{v}");
                }
                Value::Real(v) => write_real_json(out, v),
                Value::Text(s) => {
                    // An array element's own conversion may already be a JSON array (arrays of
                    // arrays are not built in, but keep nested output valid if one is built).
                    if matches!(element, PgType::Array(_)) && s.starts_with('[') {
                        out.push_str(&s);
                    } else {
                        write_json_string(out, &s);
                    }
                }
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(ty: PgType, text: &str) -> Value {
        convert(&ty, text, &ValueOptions::default())
    }

    fn iso(ty: PgType, text: &str, precision: Precision) -> Value {
        let options = ValueOptions {
            timestamps_iso8601: true,
            timestamp_max_precision: precision,
        };
        convert(&ty, text, &options)
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn timestamps_follow_both_formats() {
        use PgType::*;
        assert_eq!(
            legacy(Timestamp, "2023-03-06 15:47:12.4"),
            t("2023-03-06 15:47:12.4")
        );
        assert_eq!(
            iso(Timestamp, "2023-03-06 15:47:12.4", Precision::Microseconds),
            t("2023-03-06T15:47:12.400000")
        );
        assert_eq!(
            iso(
                Timestamp,
                "2023-03-06 15:47:12.456789",
                Precision::Milliseconds
            ),
            t("2023-03-06T15:47:12.456")
        );
        assert_eq!(
            iso(Timestamp, "2023-03-06 15:47:12.456789", Precision::Seconds),
            t("2023-03-06T15:47:12")
        );
        assert_eq!(
            legacy(Timestamptz, "2023-03-06 13:47:00+00"),
            t("2023-03-06 13:47:00Z")
        );
        assert_eq!(
            legacy(Timestamptz, "2023-03-06 13:47:00.12345+00"),
            t("2023-03-06 13:47:00.12345Z")
        );
        assert_eq!(
            iso(
                Timestamptz,
                "2023-03-06 13:47:00+00",
                Precision::Microseconds
            ),
            t("2023-03-06T13:47:00.000000Z")
        );
        assert_eq!(
            legacy(Timestamptz, "2023-03-06 15:47:00+02"),
            t("2023-03-06 13:47:00Z")
        );
        assert_eq!(
            legacy(Timestamptz, "2000-01-01 01:00:00.5-05:30"),
            t("2000-01-01 06:30:00.5Z")
        );
        assert_eq!(
            legacy(Timestamptz, "0022-02-03 12:13:14+03"),
            t("0022-02-03 09:13:14Z")
        );
        assert_eq!(
            legacy(Timestamptz, "10022-02-03 12:13:14+00"),
            t("10022-02-03 12:13:14Z")
        );
        assert_eq!(legacy(Timestamptz, "infinity"), t("9999-12-31 23:59:59Z"));
        assert_eq!(
            iso(Timestamptz, "-infinity", Precision::Microseconds),
            t("0000-01-01T00:00:00Z")
        );
        assert_eq!(legacy(Timestamp, "infinity"), t("9999-12-31 23:59:59"));
        assert_eq!(
            legacy(Timestamp, "0044-03-15 12:00:00 BC"),
            t("0044-03-15 12:00:00 BC")
        );
        let huge = "9223372036854775807-01-01 00:00:00+01";
        assert_eq!(legacy(Timestamptz, huge), t(huge));
        assert_eq!(
            iso(
                Timestamptz,
                "0044-03-15 12:00:00+00 BC",
                Precision::Microseconds
            ),
            t("0044-03-15 12:00:00+00 BC")
        );
    }
}

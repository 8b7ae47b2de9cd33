//! The named scalar functions of sync rules (PROTOCOL.md §1.5): `upper`, `substring`, `json_extract`,
//! `datetime`, `st_astext`, ….
//!
//! Holds [`Function`] (resolved once from a name at compile time: [`Function::from_name`], then
//! [`Function::arity`] and [`Function::call`]), the convenience [`call`] by name, and
//! [`FunctionOptions`] (the compatibility switches that change results). The date arithmetic lives
//! in `datetime.rs`, JSON parsing and paths in `json_path.rs`, conversions in `cast.rs`; the
//! PostGIS (E)WKB reader is the private `geometry` module below. Table-valued `json_each` is
//! [`crate::json_path::json_each`].
//!
//! Every function returns a [`Value`] or an [`EvalError`]; none panics, whatever the input.
//! Behaviour follows PowerSync where it documents or tests it, else SQLite:
//! - `upper`/`lower` map all of Unicode (as JavaScript does; SQLite only maps ASCII).
//! - `length`, `substring`, `instr` count characters (Unicode scalar values) for text — SQLite's
//!   unit; JavaScript counts UTF-16 code units, which differs only outside the BMP — and bytes for
//!   BLOBs (`substring`/`instr` on BLOBs follow SQLite and stay binary).
//! - `hex(NULL)` and `base64(NULL)` are `''` (PowerSync); `hex` is upper-case.
//! - `json_valid(NULL)` is 0 (PowerSync; SQLite gives NULL); JSON with conflicting duplicate keys
//!   is invalid.
//! - `json_extract` on a JSON `null` gives the text `'null'` unless `fixed_json_extract`.
//! - `json_array_length(json, NULL)` is NULL (SQLite; PowerSync ignores a NULL path).
//! - `json_keys` (PowerSync's own, not SQLite's) errors on arrays, scalars and malformed JSON.
//! - `datetime`/`unixepoch`: see `datetime.rs`; any number of modifiers (PowerSync takes two).
//! - `iif(c, a, b)` uses the same truthiness as `WHERE` ([`crate::operators::truthy`]).

use std::fmt::Write as _;

use crate::cast::{to_blob, to_integer, to_text};
use crate::datetime;
use crate::eval_error::{excerpt, EvalError};
use crate::json_path::{self, JsonPath, JsonValue, PathMode};
use crate::operators::truthy;
use crate::value::Value;

/// Compatibility switches that change what functions return (sync rules `config`, §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FunctionOptions {
    /// `fixed_json_extract`: JSON `null` extracts as SQL NULL; `->`/`->>` keys without `$` are one
    /// key. Default (legacy): false.
    pub fixed_json_extract: bool,
}

/// A named scalar function, resolved once at compile time.
///
/// Serialized as its canonical name (`"substring"`, `"st_asgeojson"`), so stored plans stay
/// readable and survive reordering of the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `upper(x)`.
    Upper,
    /// `lower(x)`.
    Lower,
    /// `substring(x, start[, length])`, alias `substr`.
    Substring,
    /// `hex(x)`.
    Hex,
    /// `length(x)`.
    Length,
    /// `base64(x)`.
    Base64,
    /// `uuid_blob(text)`.
    UuidBlob,
    /// `typeof(x)`.
    Typeof,
    /// `ifnull(x, y)`.
    Ifnull,
    /// `iif(condition, then, else)`.
    Iif,
    /// `instr(haystack, needle)`.
    Instr,
    /// `json_extract(json, path)`.
    JsonExtract,
    /// `json_array_length(json[, path])`.
    JsonArrayLength,
    /// `json_valid(json)`.
    JsonValid,
    /// `json_keys(json)`.
    JsonKeys,
    /// `unixepoch(time[, modifier…])`.
    Unixepoch,
    /// `datetime(time[, modifier…])`.
    Datetime,
    /// `st_asgeojson(geometry)`.
    StAsGeoJson,
    /// `st_astext(geometry)`.
    StAsText,
    /// `st_x(point)`.
    StX,
    /// `st_y(point)`.
    StY,
}

/// Every function with its canonical name, then aliases.
const NAMES: [(&str, Function); 22] = [
    ("upper", Function::Upper),
    ("lower", Function::Lower),
    ("substring", Function::Substring),
    ("hex", Function::Hex),
    ("length", Function::Length),
    ("base64", Function::Base64),
    ("uuid_blob", Function::UuidBlob),
    ("typeof", Function::Typeof),
    ("ifnull", Function::Ifnull),
    ("iif", Function::Iif),
    ("instr", Function::Instr),
    ("json_extract", Function::JsonExtract),
    ("json_array_length", Function::JsonArrayLength),
    ("json_valid", Function::JsonValid),
    ("json_keys", Function::JsonKeys),
    ("unixepoch", Function::Unixepoch),
    ("datetime", Function::Datetime),
    ("st_asgeojson", Function::StAsGeoJson),
    ("st_astext", Function::StAsText),
    ("st_x", Function::StX),
    ("st_y", Function::StY),
    ("substr", Function::Substring),
];

impl Function {
    /// Every function, in declaration order.
    pub const ALL: [Function; 21] = [
        Function::Upper,
        Function::Lower,
        Function::Substring,
        Function::Hex,
        Function::Length,
        Function::Base64,
        Function::UuidBlob,
        Function::Typeof,
        Function::Ifnull,
        Function::Iif,
        Function::Instr,
        Function::JsonExtract,
        Function::JsonArrayLength,
        Function::JsonValid,
        Function::JsonKeys,
        Function::Unixepoch,
        Function::Datetime,
        Function::StAsGeoJson,
        Function::StAsText,
        Function::StX,
        Function::StY,
    ];

    /// The function called `name` (case-insensitive; `substr` is `substring`), or `None`.
    pub fn from_name(name: &str) -> Option<Function> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// The canonical lowercase name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// Accepted argument counts: `(min, max)`, `max` `None` for any number.
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Upper
            | Function::Lower
            | Function::Hex
            | Function::Length
            | Function::Base64
            | Function::UuidBlob
            | Function::Typeof
            | Function::JsonValid
            | Function::JsonKeys
            | Function::StAsGeoJson
            | Function::StAsText
            | Function::StX
            | Function::StY => (1, Some(1)),
            Function::Ifnull | Function::Instr | Function::JsonExtract => (2, Some(2)),
            Function::Substring => (2, Some(3)),
            Function::Iif => (3, Some(3)),
            Function::JsonArrayLength => (1, Some(2)),
            Function::Unixepoch | Function::Datetime => (1, None),
        }
    }

    /// Whether `count` arguments are accepted.
    pub fn accepts(self, count: usize) -> bool {
        let (min, max) = self.arity();
        count >= min && max.is_none_or(|max| count <= max)
    }

    fn arity_text(self) -> String {
        let noun = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match self.arity() {
            (min, Some(max)) if min == max => format!("{min} {}", noun(min)),
            (min, Some(max)) if max == min + 1 => format!("{min} or {max} arguments"),
            (min, Some(max)) => format!("{min} to {max} arguments"),
            (min, None) => format!("at least {min} {}", noun(min)),
        }
    }

    /// Calls the function. A wrong number of arguments is an error, not a panic.
    pub fn call(self, args: &[Value], options: FunctionOptions) -> Result<Value, EvalError> {
        if !self.accepts(args.len()) {
            return Err(EvalError::WrongArgumentCount {
                function: self.name(),
                expected: self.arity_text(),
                got: args.len(),
            });
        }
        let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
        Ok(match self {
            Function::Upper => map_text(arg(0), |s| s.to_uppercase()),
            Function::Lower => map_text(arg(0), |s| s.to_lowercase()),
            Function::Substring => substring(arg(0), arg(1), args.get(2)),
            Function::Hex => {
                Value::Text(to_blob(arg(0)).map_or_else(String::new, |b| hex_upper(&b)))
            }
            Function::Length => length(arg(0)),
            Function::Base64 => {
                Value::Text(to_blob(arg(0)).map_or_else(String::new, |b| base64_encode(&b)))
            }
            Function::UuidBlob => uuid_blob(arg(0))?,
            Function::Typeof => Value::Text(arg(0).type_name().to_owned()),
            Function::Ifnull => {
                if arg(0).is_null() {
                    arg(1).clone()
                } else {
                    arg(0).clone()
                }
            }
            Function::Iif => {
                if truthy(arg(0)) {
                    arg(1).clone()
                } else {
                    arg(2).clone()
                }
            }
            Function::Instr => instr(arg(0), arg(1)),
            Function::JsonExtract => json_extract(arg(0), arg(1), options)?,
            Function::JsonArrayLength => json_array_length(arg(0), args.get(1))?,
            Function::JsonValid => json_valid(arg(0)),
            Function::JsonKeys => json_keys(arg(0))?,
            Function::Unixepoch => datetime::unixepoch(args),
            Function::Datetime => datetime::datetime(args),
            Function::StAsGeoJson => geometry::call(self, arg(0), geometry::Output::GeoJson)?,
            Function::StAsText => geometry::call(self, arg(0), geometry::Output::Wkt)?,
            Function::StX => geometry::call(self, arg(0), geometry::Output::X)?,
            Function::StY => geometry::call(self, arg(0), geometry::Output::Y)?,
        })
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Function {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Function {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Function::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown function '{name}'")))
    }
}

/// Calls the function named `name` (see [`Function::from_name`]); an unknown name is
/// [`EvalError::UnknownFunction`]. Resolve names once with [`Function::from_name`] in hot paths.
pub fn call(name: &str, args: &[Value], options: FunctionOptions) -> Result<Value, EvalError> {
    Function::from_name(name)
        .ok_or_else(|| EvalError::UnknownFunction(name.to_owned()))?
        .call(args, options)
}

fn map_text(value: &Value, f: impl FnOnce(&str) -> String) -> Value {
    to_text(value).map_or(Value::Null, |t| Value::Text(f(&t)))
}

fn length(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Blob(b) => Value::Integer(b.len() as i64),
        Value::Text(s) => Value::Integer(s.chars().count() as i64),
        other => Value::Integer(to_text(other).map_or(0, |t| t.chars().count() as i64)),
    }
}

/// SQLite's `substr` arithmetic on a length-`len` sequence: the `(start, count)` to take.
fn substring_range(len: i64, start: i64, count: Option<i64>) -> (usize, usize) {
    let mut p1 = start;
    let (mut p2, negative) = match count {
        Some(c) if c < 0 => (c.saturating_neg(), true),
        Some(c) => (c, false),
        None => (i64::MAX, false),
    };
    if p1 < 0 {
        p1 = p1.saturating_add(len);
        if p1 < 0 {
            if !negative {
                p2 = p2.saturating_add(p1);
                if p2 < 0 {
                    p2 = 0;
                }
            }
            p1 = 0;
        }
    } else if p1 > 0 {
        p1 -= 1;
    } else if p2 > 0 {
        p2 -= 1;
    }
    if negative {
        p1 = p1.saturating_sub(p2);
        if p1 < 0 {
            p2 = p2.saturating_add(p1);
            p1 = 0;
        }
    }
    let begin = p1.clamp(0, len);
    let end = begin.saturating_add(p2.max(0)).clamp(0, len);
    (begin as usize, (end - begin) as usize)
}

fn substring(value: &Value, start: &Value, count: Option<&Value>) -> Value {
    let Some(start) = to_integer(start) else {
        return Value::Null;
    };
    let count = match count {
        None => None,
        Some(c) => match to_integer(c) {
            None => return Value::Null,
            Some(c) => Some(c),
        },
    };
    match value {
        Value::Null => Value::Null,
        Value::Blob(bytes) => {
            let (begin, n) = substring_range(bytes.len() as i64, start, count);
            Value::Blob(bytes[begin..begin + n].to_vec())
        }
        other => {
            let Some(text) = to_text(other) else {
                return Value::Null;
            };
            let chars = text.chars().count() as i64;
            let (begin, n) = substring_range(chars, start, count);
            Value::Text(text.chars().skip(begin).take(n).collect())
        }
    }
}

fn instr(haystack: &Value, needle: &Value) -> Value {
    match (haystack, needle) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Blob(h), Value::Blob(n)) => {
            let position = if n.is_empty() {
                Some(0)
            } else {
                h.windows(n.len()).position(|w| w == n.as_slice())
            };
            Value::Integer(position.map_or(0, |p| p as i64 + 1))
        }
        _ => {
            let (Some(h), Some(n)) = (to_text(haystack), to_text(needle)) else {
                return Value::Null;
            };
            Value::Integer(
                h.find(n.as_ref())
                    .map_or(0, |byte| h[..byte].chars().count() as i64 + 1),
            )
        }
    }
}

/// Upper-case hex of `bytes`.
pub fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// Standard base64 (RFC 4648 alphabet, `=` padding) of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes hex digits (either case); `None` on an odd length or a non-hex character.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// `uuid_blob`: the 16 bytes of a UUID text (`550e8400-e29b-41d4-a716-446655440000`, any case,
/// with or without the dashes, optionally in braces); a 16-byte BLOB is returned as is.
fn uuid_blob(value: &Value) -> Result<Value, EvalError> {
    if let Value::Blob(b) = value {
        if b.len() == 16 {
            return Ok(value.clone());
        }
    }
    let Some(text) = to_text(value) else {
        return Ok(Value::Null);
    };
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(&text);
    let dashed = inner.len() == 36
        && [8, 13, 18, 23]
            .iter()
            .all(|&i| inner.as_bytes().get(i) == Some(&b'-'));
    let digits: String = if dashed {
        inner.chars().filter(|&c| c != '-').collect()
    } else {
        inner.to_owned()
    };
    match hex_decode(&digits) {
        Some(bytes) if bytes.len() == 16 => Ok(Value::Blob(bytes)),
        _ => Err(EvalError::NotUuid(excerpt(&text))),
    }
}

fn parse_json_arg(text: &str, function: &'static str) -> Result<JsonValue, EvalError> {
    json_path::parse(text).map_err(|e| EvalError::MalformedJson {
        function,
        message: e.to_string(),
    })
}

fn json_extract(json: &Value, path: &Value, options: FunctionOptions) -> Result<Value, EvalError> {
    let (Some(text), Some(path)) = (to_text(json), to_text(path)) else {
        return Ok(Value::Null);
    };
    let path =
        JsonPath::parse(&path, PathMode::Strict).map_err(|message| EvalError::BadJsonPath {
            function: "json_extract",
            message,
        })?;
    let document = parse_json_arg(&text, "json_extract")?;
    let fixed = options.fixed_json_extract;
    Ok(json_path::lookup(&document, &path, !fixed)
        .map_or(Value::Null, |v| json_path::to_sql_value(v, fixed)))
}

fn json_array_length(json: &Value, path: Option<&Value>) -> Result<Value, EvalError> {
    let Some(text) = to_text(json) else {
        return Ok(Value::Null);
    };
    let path = match path {
        None => JsonPath::default(),
        Some(p) => {
            let Some(p) = to_text(p) else {
                return Ok(Value::Null);
            };
            JsonPath::parse(&p, PathMode::Strict).map_err(|message| EvalError::BadJsonPath {
                function: "json_array_length",
                message,
            })?
        }
    };
    let document = parse_json_arg(&text, "json_array_length")?;
    Ok(match json_path::lookup(&document, &path, false) {
        None => Value::Null,
        Some(JsonValue::Array(items)) => Value::Integer(items.len() as i64),
        Some(_) => Value::Integer(0),
    })
}

fn json_valid(json: &Value) -> Value {
    let valid = to_text(json).is_some_and(|text| json_path::parse(&text).is_ok());
    Value::Integer(i64::from(valid))
}

fn json_keys(json: &Value) -> Result<Value, EvalError> {
    let Some(text) = to_text(json) else {
        return Ok(Value::Null);
    };
    match parse_json_arg(&text, "json_keys")? {
        JsonValue::Object(entries) => {
            let mut out = String::with_capacity(2 + entries.len() * 8);
            out.push('[');
            for (i, (key, _)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::row_json::write_json_string(&mut out, key);
            }
            out.push(']');
            Ok(Value::Text(out))
        }
        other => Err(EvalError::JsonKeysNotObject(other.type_name())),
    }
}

/// The PostGIS (E)WKB reader behind `st_asgeojson`, `st_astext`, `st_x` and `st_y`.
mod geometry {
    use super::*;
    use crate::row_json::{write_js_number, write_real_json};

    /// What to produce from a geometry.
    #[derive(Clone, Copy)]
    pub(super) enum Output {
        GeoJson,
        Wkt,
        X,
        Y,
    }

    /// A parsed geometry: its dimensions and its shape.
    struct Geometry {
        dims: Dims,
        shape: Shape,
    }

    /// Coordinates are `[x, y(, z)(, m)]` as read.
    enum Shape {
        Point(Option<Vec<f64>>),
        LineString(Vec<Vec<f64>>),
        Polygon(Vec<Vec<Vec<f64>>>),
        MultiPoint(Vec<Option<Vec<f64>>>),
        MultiLineString(Vec<Vec<Vec<f64>>>),
        MultiPolygon(Vec<Vec<Vec<Vec<f64>>>>),
        Collection(Vec<Geometry>),
    }

    #[derive(Clone, Copy)]
    struct Dims {
        z: bool,
        m: bool,
    }

    impl Dims {
        fn count(self) -> usize {
            2 + usize::from(self.z) + usize::from(self.m)
        }
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        pos: usize,
        function: &'static str,
    }

    const MAX_NESTING: usize = 32;

    impl Reader<'_> {
        fn invalid(&self, message: impl Into<String>) -> EvalError {
            EvalError::InvalidGeometry {
                function: self.function,
                message: message.into(),
            }
        }

        fn take(&mut self, n: usize) -> Result<&[u8], EvalError> {
            let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
            let Some(end) = end else {
                return Err(self.invalid(format!(
                    "truncated at byte {} of {}",
                    self.pos,
                    self.bytes.len()
                )));
            };
            let slice = &self.bytes[self.pos..end];
            self.pos = end;
            Ok(slice)
        }

        fn u32(&mut self, little: bool) -> Result<u32, EvalError> {
            let b = self.take(4)?;
            let arr = [b[0], b[1], b[2], b[3]];
            Ok(if little {
                u32::from_le_bytes(arr)
            } else {
                u32::from_be_bytes(arr)
            })
        }

        fn f64(&mut self, little: bool) -> Result<f64, EvalError> {
            let b = self.take(8)?;
            let mut arr = [0u8; 8];
            arr.copy_from_slice(b);
            Ok(if little {
                f64::from_le_bytes(arr)
            } else {
                f64::from_be_bytes(arr)
            })
        }

        /// A count of items of at least `min_item_bytes` each, checked against the bytes left.
        fn count(&mut self, little: bool, min_item_bytes: usize) -> Result<usize, EvalError> {
            let n = self.u32(little)? as usize;
            let left = self.bytes.len() - self.pos;
            if n.saturating_mul(min_item_bytes) > left {
                return Err(self.invalid(format!("count {n} exceeds the remaining {left} bytes")));
            }
            Ok(n)
        }

        fn point(&mut self, little: bool, dims: Dims) -> Result<Vec<f64>, EvalError> {
            (0..dims.count()).map(|_| self.f64(little)).collect()
        }

        fn points(&mut self, little: bool, dims: Dims) -> Result<Vec<Vec<f64>>, EvalError> {
            let n = self.count(little, 8 * dims.count())?;
            (0..n).map(|_| self.point(little, dims)).collect()
        }

        fn rings(&mut self, little: bool, dims: Dims) -> Result<Vec<Vec<Vec<f64>>>, EvalError> {
            let n = self.count(little, 4)?;
            (0..n).map(|_| self.points(little, dims)).collect()
        }

        fn geometry(&mut self, depth: usize) -> Result<Geometry, EvalError> {
            if depth > MAX_NESTING {
                return Err(self.invalid("geometry collections nested too deeply"));
            }
            let little = match self.take(1)?[0] {
                0 => false,
                1 => true,
                other => return Err(self.invalid(format!("unknown byte order {other}"))),
            };
            let raw = self.u32(little)?;
            // EWKB flags (PostGIS) and ISO WKB type offsets (1000 Z, 2000 M, 3000 ZM).
            let mut dims = Dims {
                z: raw & 0x8000_0000 != 0,
                m: raw & 0x4000_0000 != 0,
            };
            if raw & 0x2000_0000 != 0 {
                self.u32(little)?; // SRID: not part of WKT or GeoJSON output.
            }
            let mut code = raw & 0x0FFF_FFFF;
            match code / 1000 {
                1 => dims.z = true,
                2 => dims.m = true,
                3 => {
                    dims.z = true;
                    dims.m = true;
                }
                _ => {}
            }
            code %= 1000;
            let shape = match code {
                1 => {
                    let p = self.point(little, dims)?;
                    Shape::Point((!p.iter().all(|c| c.is_nan())).then_some(p))
                }
                2 => Shape::LineString(self.points(little, dims)?),
                3 => Shape::Polygon(self.rings(little, dims)?),
                4..=7 => {
                    let n = self.count(little, 5)?;
                    let mut parts = Vec::with_capacity(n);
                    for _ in 0..n {
                        parts.push(self.geometry(depth + 1)?);
                    }
                    self.collect(code, parts)?
                }
                other => {
                    return Err(EvalError::UnsupportedGeometry {
                        function: self.function,
                        type_code: other,
                    })
                }
            };
            Ok(Geometry { dims, shape })
        }

        fn collect(&self, code: u32, parts: Vec<Geometry>) -> Result<Shape, EvalError> {
            let wrong = || self.invalid("a multi-geometry contains a member of the wrong type");
            Ok(match code {
                4 => Shape::MultiPoint(
                    parts
                        .into_iter()
                        .map(|g| match g.shape {
                            Shape::Point(p) => Ok(p),
                            _ => Err(wrong()),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                5 => Shape::MultiLineString(
                    parts
                        .into_iter()
                        .map(|g| match g.shape {
                            Shape::LineString(l) => Ok(l),
                            _ => Err(wrong()),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                6 => Shape::MultiPolygon(
                    parts
                        .into_iter()
                        .map(|g| match g.shape {
                            Shape::Polygon(p) => Ok(p),
                            _ => Err(wrong()),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => Shape::Collection(parts),
            })
        }
    }

    pub(super) fn call(
        function: Function,
        value: &Value,
        output: Output,
    ) -> Result<Value, EvalError> {
        let name = function.name();
        let bytes = match value {
            Value::Blob(b) => std::borrow::Cow::Borrowed(b.as_slice()),
            Value::Text(s) => match hex_decode(s) {
                Some(b) => std::borrow::Cow::Owned(b),
                None => {
                    return Err(EvalError::InvalidGeometry {
                        function: name,
                        message: format!("not hex-encoded WKB: '{}'", excerpt(s)),
                    })
                }
            },
            _ => return Ok(Value::Null),
        };
        let mut reader = Reader {
            bytes: &bytes,
            pos: 0,
            function: name,
        };
        let geometry = reader.geometry(0)?;
        if reader.pos != bytes.len() {
            return Err(reader.invalid(format!(
                "{} unexpected bytes after the geometry",
                bytes.len() - reader.pos
            )));
        }
        Ok(match output {
            Output::GeoJson => {
                let mut out = String::new();
                write_geojson(&mut out, &geometry);
                Value::Text(out)
            }
            Output::Wkt => {
                let mut out = String::new();
                write_wkt(&mut out, &geometry);
                Value::Text(out)
            }
            Output::X | Output::Y => match geometry.shape {
                Shape::Point(Some(p)) => Value::Real(p[usize::from(matches!(output, Output::Y))]),
                _ => Value::Null,
            },
        })
    }

    /// A GeoJSON position: x, y and z when present (GeoJSON has no M), REALs as JSON numbers.
    fn write_position_json(out: &mut String, p: &[f64], dims: Dims) {
        let n = if dims.z { 3 } else { 2 };
        write_list(out, &p[..n.min(p.len())], |o, c| write_real_json(o, *c));
    }

    fn write_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            each(out, item);
        }
        out.push(']');
    }

    fn write_geojson(out: &mut String, g: &Geometry) {
        let kind = match &g.shape {
            Shape::Point(_) => "Point",
            Shape::LineString(_) => "LineString",
            Shape::Polygon(_) => "Polygon",
            Shape::MultiPoint(_) => "MultiPoint",
            Shape::MultiLineString(_) => "MultiLineString",
            Shape::MultiPolygon(_) => "MultiPolygon",
            Shape::Collection(_) => "GeometryCollection",
        };
        let _ = write!(out, "{{\"type\":\"{kind}\",");
        let d = g.dims;
        let position = |o: &mut String, p: &Vec<f64>| write_position_json(o, p, d);
        let line = |o: &mut String, l: &Vec<Vec<f64>>| write_list(o, l, position);
        let rings = |o: &mut String, r: &Vec<Vec<Vec<f64>>>| write_list(o, r, line);
        match &g.shape {
            Shape::Collection(parts) => {
                out.push_str("\"geometries\":");
                write_list(out, parts, write_geojson);
            }
            shape => {
                out.push_str("\"coordinates\":");
                match shape {
                    Shape::Point(Some(p)) => position(out, p),
                    Shape::Point(None) => out.push_str("[]"),
                    Shape::LineString(l) => line(out, l),
                    Shape::Polygon(r) => rings(out, r),
                    Shape::MultiPoint(points) => write_list(out, points, |o, p| match p {
                        Some(p) => position(o, p),
                        None => o.push_str("[]"),
                    }),
                    Shape::MultiLineString(lines) => write_list(out, lines, line),
                    Shape::MultiPolygon(polygons) => write_list(out, polygons, rings),
                    Shape::Collection(_) => {}
                }
            }
        }
        out.push('}');
    }

    /// A WKT position: every coordinate read (x y z m), numbers in JavaScript form.
    fn write_position_wkt(out: &mut String, p: &[f64]) {
        for (i, c) in p.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            write_js_number(out, *c);
        }
    }

    /// `(a,b,c)` with `each` writing the items.
    fn write_wkt_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
        out.push('(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            each(out, item);
        }
        out.push(')');
    }

    fn write_points_wkt(out: &mut String, points: &[Vec<f64>]) {
        write_wkt_list(out, points, |o, p| write_position_wkt(o, p));
    }

    fn write_rings_wkt(out: &mut String, rings: &[Vec<Vec<f64>>]) {
        write_wkt_list(out, rings, |o, r| write_points_wkt(o, r));
    }

    /// WKT as the `wkx` library writes it: `POINT(1 2)`, `POINT Z (1 2 3)`, `LINESTRING EMPTY`,
    /// `MULTIPOINT(1 2,3 4)`, `GEOMETRYCOLLECTION(POINT(1 2),…)`.
    fn write_wkt(out: &mut String, g: &Geometry) {
        let (kind, empty) = match &g.shape {
            Shape::Point(p) => ("POINT", p.is_none()),
            Shape::LineString(l) => ("LINESTRING", l.is_empty()),
            Shape::Polygon(r) => ("POLYGON", r.is_empty()),
            Shape::MultiPoint(p) => ("MULTIPOINT", p.is_empty()),
            Shape::MultiLineString(l) => ("MULTILINESTRING", l.is_empty()),
            Shape::MultiPolygon(p) => ("MULTIPOLYGON", p.is_empty()),
            Shape::Collection(p) => ("GEOMETRYCOLLECTION", p.is_empty()),
        };
        out.push_str(kind);
        match (g.dims.z, g.dims.m) {
            (true, true) => out.push_str(" ZM "),
            (true, false) => out.push_str(" Z "),
            (false, true) => out.push_str(" M "),
            (false, false) => {}
        }
        if empty {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str("EMPTY");
            return;
        }
        match &g.shape {
            Shape::Point(Some(p)) => write_wkt_list(out, &[p], |o, p| write_position_wkt(o, p)),
            Shape::LineString(l) => write_points_wkt(out, l),
            Shape::Polygon(r) => write_rings_wkt(out, r),
            Shape::MultiPoint(points) => {
                let present: Vec<&Vec<f64>> = points.iter().flatten().collect();
                write_wkt_list(out, &present, |o, p| write_position_wkt(o, p));
            }
            Shape::MultiLineString(lines) => {
                write_wkt_list(out, lines, |o, l| write_points_wkt(o, l))
            }
            Shape::MultiPolygon(polygons) => {
                write_wkt_list(out, polygons, |o, p| write_rings_wkt(o, p))
            }
            Shape::Collection(parts) => write_wkt_list(out, parts, write_wkt),
            Shape::Point(None) => {}
        }
    }
}

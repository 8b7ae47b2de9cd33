//! JSON as the sync rules operators and functions see it: a parser, a writer, paths and extraction.
//!
//! Holds [`JsonValue`] (a parsed document), [`parse`], [`write_json`], [`JsonPath`] with its three
//! parsing modes ([`PathMode`]), [`lookup`] and the conversions to SQLite values used by `->`,
//! `->>`, `json_extract` and `json_each` ([`to_sql_value`], [`json_each`]). It does not hold the
//! operators themselves (`operators.rs`) nor the JSON functions (`functions.rs`), and it is not the
//! row JSON writer (`row_json.rs`), although it shares its string and number formatting.
//!
//! Behaviour follows PowerSync's JavaScript engine (PROTOCOL.md §1.5), which parses JSON with a
//! lossless parser and stringifies it again:
//! - integer literals keep full 64-bit precision (larger ones keep their digits when re-written and
//!   become REAL as SQL values, as in SQLite); other numbers are doubles, written back in the
//!   shortest form with a `.0` when integral (`{"a": 5.0}` re-writes as `{"a":5.0}`);
//! - duplicate object keys with different values are an error (equal duplicates are merged);
//! - object keys that are array indexes (`"0"`, `"17"`) come first in ascending order, the others
//!   keep document order — JavaScript's property order, so `->` re-writes objects as PowerSync does;
//! - nesting deeper than [`MAX_DEPTH`] is an error (no stack overflow on hostile input).
//!
//! Paths: `$`, `$.key`, `$."quoted key"`, `$[0]`, `$[#-1]`, chained (`$.a.b[2].c`). Without a
//! leading `$`, `->`/`->>` use the whole text as one key (`fixed_json_extract`) or split it on `.`
//! (legacy). A key step on an array selects the element when the key is an array index (`"0"`), as
//! in JavaScript. Array index steps are a ferry extension for legacy mode, where PowerSync treats
//! `[0]` as part of a key.

use std::fmt::Write as _;

use crate::row_json::{write_json_string, write_real_json};
use crate::value::Value;

/// Deepest accepted nesting of arrays and objects (SQLite's `JSON_MAX_DEPTH`).
pub const MAX_DEPTH: usize = 1000;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer literal that fits 64 bits.
    Integer(i64),
    /// An integer literal outside the 64-bit range, kept as written (e.g. `18014398509481982123`).
    BigInteger(String),
    /// Any other number (has a fraction or an exponent). May be infinite for huge exponents.
    Real(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, in JavaScript property order (see the module documentation).
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// The JSON type name: `null`, `boolean`, `number`, `string`, `array` or `object`.
    pub fn type_name(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "boolean",
            JsonValue::Integer(_) | JsonValue::BigInteger(_) | JsonValue::Real(_) => "number",
            JsonValue::String(_) => "string",
            JsonValue::Array(_) => "array",
            JsonValue::Object(_) => "object",
        }
    }

    /// Compact JSON text of this value (see [`write_json`]).
    pub fn to_json_string(&self) -> String {
        let mut out = String::new();
        write_json(&mut out, self);
        out
    }
}

/// Why a JSON text did not parse: a message and the byte offset where it was noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonParseError {
    /// Byte offset into the text.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for JsonParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// Parses a complete JSON text (surrounding whitespace allowed). See the module documentation for
/// numbers, duplicate keys and key order.
pub fn parse(text: &str) -> Result<JsonValue, JsonParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> JsonParseError {
        let message = if self.pos >= self.bytes.len() {
            "unexpected end of JSON"
        } else {
            message
        };
        JsonParseError {
            offset: self.pos,
            message: message.to_owned(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: JsonValue) -> Result<JsonValue, JsonParseError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue, JsonParseError> {
        match self.bytes.get(self.pos) {
            None => Err(self.error("unexpected end of JSON")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(JsonValue::String(self.string()?)),
            Some(b't') => self.literal("true", JsonValue::Bool(true)),
            Some(b'f') => self.literal("false", JsonValue::Bool(false)),
            Some(b'n') => self.literal("null", JsonValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsonValue, JsonParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(JsonValue::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsonValue::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsonValue, JsonParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("JSON nested too deeply"));
        }
        let start = self.pos;
        self.pos += 1; // '{'
        let mut entries: Vec<(String, JsonValue)> = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(JsonValue::Object(entries));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.error("expected a string key in object"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.error("expected ':' after object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}' in object")),
            }
        }
        let entries = dedup_keys(entries).map_err(|key| JsonParseError {
            offset: start,
            message: format!(
                "duplicate key '{}' in object",
                crate::eval_error::excerpt(&key)
            ),
        })?;
        Ok(JsonValue::Object(js_property_order(entries)))
    }

    fn string(&mut self) -> Result<String, JsonParseError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Runs end on ASCII bytes, so both ends are char boundaries.
            out.push_str(&self.text[run_start..self.pos]);
            match self.bytes.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in string")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonParseError> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if (0xD800..0xDC00).contains(&first) {
                    // A high surrogate: combine with a following low surrogate if there is one.
                    if self.bytes[self.pos..].starts_with(b"\\u") {
                        let save = self.pos;
                        self.pos += 2;
                        let second = self.hex4()?;
                        if (0xDC00..0xE000).contains(&second) {
                            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        } else {
                            self.pos = save;
                            '\u{FFFD}'
                        }
                    } else {
                        '\u{FFFD}'
                    }
                } else {
                    // Lone low surrogates cannot be held in a Rust string.
                    char::from_u32(first).unwrap_or('\u{FFFD}')
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape in string"));
            }
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonParseError> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            return Err(self.error("truncated \\u escape"));
        };
        let mut code = 0u32;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + v;
        }
        self.pos += 4;
        Ok(code)
    }

    fn number(&mut self) -> Result<JsonValue, JsonParseError> {
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            integer = false;
            self.pos += 1;
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number: digits expected after '.'"));
            }
            self.skip_digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number: digits expected in exponent"));
            }
            self.skip_digits();
        }
        let text = &self.text[start..self.pos];
        if integer {
            Ok(match text.parse::<i64>() {
                Ok(v) => JsonValue::Integer(v),
                Err(_) => JsonValue::BigInteger(text.to_owned()),
            })
        } else {
            text.parse::<f64>()
                .map(JsonValue::Real)
                .map_err(|_| self.error("invalid number"))
        }
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }
}

/// Merges duplicate keys that have equal values (first position kept); returns the key of a
/// duplicate with a different value as the error.
fn dedup_keys(entries: Vec<(String, JsonValue)>) -> Result<Vec<(String, JsonValue)>, String> {
    if entries.len() < 2 {
        return Ok(entries);
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0).then(a.cmp(&b)));
    let mut drop = vec![false; entries.len()];
    let mut any = false;
    // Sorted by (key, position): each run of equal keys starts with its first occurrence.
    let mut run_first = order[0];
    for &i in &order[1..] {
        if entries[i].0 == entries[run_first].0 {
            if entries[i].1 != entries[run_first].1 {
                return Err(entries[i].0.clone());
            }
            drop[i] = true;
            any = true;
        } else {
            run_first = i;
        }
    }
    if !any {
        return Ok(entries);
    }
    Ok(entries
        .into_iter()
        .zip(drop)
        .filter_map(|(entry, dropped)| (!dropped).then_some(entry))
        .collect())
}

/// The value of `key` as a JavaScript array index (`"0"`, `"17"`; not `"01"`, `"-1"`, `"4294967295"`).
pub fn array_index_key(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    (value < u64::from(u32::MAX)).then_some(value as u32)
}

/// Reorders object entries as JavaScript does: array-index keys first, ascending; the rest in order.
fn js_property_order(entries: Vec<(String, JsonValue)>) -> Vec<(String, JsonValue)> {
    if !entries.iter().any(|(k, _)| array_index_key(k).is_some()) {
        return entries;
    }
    let (mut indexed, rest): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(k, _)| array_index_key(k).is_some());
    indexed.sort_by_key(|(k, _)| array_index_key(k));
    indexed.extend(rest);
    indexed
}

/// Writes `value` as compact JSON: strings escaped as `JSON.stringify` does, integers as digits,
/// other numbers in the shortest round-trip form with `.0` when integral, non-finite numbers as
/// `null`.
pub fn write_json(out: &mut String, value: &JsonValue) {
    match value {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Integer(v) => {
            let _ = write!(out, "{v}");
        }
        JsonValue::BigInteger(digits) => out.push_str(digits),
        JsonValue::Real(v) => write_real_json(out, *v),
        JsonValue::String(s) => write_json_string(out, s),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        JsonValue::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object key (or, on an array, an array-index key such as `"0"`).
    Key(String),
    /// `[n]`: the n-th array element, 0-based.
    Index(u64),
    /// `[#-n]`: the n-th element from the end (`[#-1]` is the last).
    FromEnd(u64),
}

/// A parsed JSON path: the steps from the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonPath {
    /// The steps, outermost first; empty for the root (`$`).
    pub steps: Vec<PathStep>,
}

/// How a path text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    /// `json_extract()`: the path must start with `$`.
    Strict,
    /// `->`/`->>` with `fixed_json_extract`: a path not starting with `$` is one key.
    FixedArrow,
    /// `->`/`->>` legacy: a path not starting with `$` is split on `.`.
    LegacyArrow,
}

impl JsonPath {
    /// Parses `path` in `mode`; the error is a message that quotes the path.
    pub fn parse(path: &str, mode: PathMode) -> Result<JsonPath, String> {
        if let Some(rest) = path.strip_prefix('$') {
            return parse_dollar_path(rest).ok_or_else(|| {
                format!(
                    "bad JSON path '{}': expected $, $.key, $.\"key\", $[n] or $[#-n] steps",
                    crate::eval_error::excerpt(path)
                )
            });
        }
        match mode {
            PathMode::Strict => Err(format!(
                "path must start with '$', got '{}'",
                crate::eval_error::excerpt(path)
            )),
            PathMode::FixedArrow => Ok(JsonPath {
                steps: vec![PathStep::Key(path.to_owned())],
            }),
            PathMode::LegacyArrow => Ok(JsonPath {
                steps: path
                    .split('.')
                    .map(|k| PathStep::Key(k.to_owned()))
                    .collect(),
            }),
        }
    }
}

fn parse_dollar_path(mut rest: &str) -> Option<JsonPath> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                steps.push(PathStep::Key(quoted[..end].to_owned()));
                rest = &quoted[end + 1..];
            } else {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                steps.push(PathStep::Key(after[..end].to_owned()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = after[..end].trim();
            let step = if let Some(from_end) = inner.strip_prefix('#') {
                let n = from_end.trim_start().strip_prefix('-')?.trim();
                PathStep::FromEnd(parse_digits(n)?)
            } else {
                PathStep::Index(parse_digits(inner)?)
            };
            steps.push(step);
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(JsonPath { steps })
}

fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Follows `path` from `root`. `None` when the path leads nowhere.
///
/// `legacy_null_stop`: PowerSync's legacy engine stops at a JSON `null` on the way and returns it
/// (`{"a":null}` with `$.a.b` finds `null`); with `fixed_json_extract` that is "not found".
pub fn lookup<'a>(
    root: &'a JsonValue,
    path: &JsonPath,
    legacy_null_stop: bool,
) -> Option<&'a JsonValue> {
    let mut current = root;
    for step in &path.steps {
        if legacy_null_stop && matches!(current, JsonValue::Null) {
            return Some(current);
        }
        current = match (current, step) {
            (JsonValue::Object(entries), PathStep::Key(key)) => {
                &entries.iter().find(|(k, _)| k == key)?.1
            }
            (JsonValue::Array(items), PathStep::Key(key)) => {
                items.get(usize::try_from(array_index_key(key)?).ok()?)?
            }
            (JsonValue::Array(items), PathStep::Index(i)) => {
                items.get(usize::try_from(*i).ok()?)?
            }
            (JsonValue::Array(items), PathStep::FromEnd(n)) => {
                let n = usize::try_from(*n).ok()?;
                if n == 0 || n > items.len() {
                    return None;
                }
                &items[items.len() - n]
            }
            _ => return None,
        };
    }
    Some(current)
}

/// A found JSON value as a SQL value (`->>`, `json_extract`): strings unquoted, integers as
/// INTEGER, other numbers as REAL, booleans 1/0, arrays and objects as JSON text. JSON `null` is
/// SQL NULL with `fixed_json_extract`, and the text `'null'` in legacy mode (PowerSync's quirk).
pub fn to_sql_value(value: &JsonValue, fixed_json_extract: bool) -> Value {
    match value {
        JsonValue::Null => {
            if fixed_json_extract {
                Value::Null
            } else {
                Value::Text("null".to_owned())
            }
        }
        JsonValue::Bool(b) => Value::Integer(i64::from(*b)),
        JsonValue::Integer(v) => Value::Integer(*v),
        JsonValue::BigInteger(digits) => Value::Real(digits.parse().unwrap_or(f64::NAN)),
        JsonValue::Real(v) => Value::Real(*v),
        JsonValue::String(s) => Value::Text(s.clone()),
        JsonValue::Array(_) | JsonValue::Object(_) => Value::Text(value.to_json_string()),
    }
}

/// A JSON array element or object value as a SQL value for comparisons (`IN`, `&&`): like
/// [`to_sql_value`] with JSON `null` as SQL NULL (which never compares equal).
pub fn to_comparable_value(value: &JsonValue) -> Value {
    to_sql_value(value, true)
}

/// A `serde_json` value (a JWT claim, client parameters) as a [`JsonValue`]: integers beyond the
/// 64-bit signed range keep their digits, object keys take JavaScript's order.
pub fn from_serde(value: &serde_json::Value) -> JsonValue {
    match value {
        serde_json::Value::Null => JsonValue::Null,
        serde_json::Value::Bool(b) => JsonValue::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(v), _) => JsonValue::Integer(v),
            (None, Some(_)) => JsonValue::BigInteger(n.to_string()),
            (None, None) => JsonValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => JsonValue::String(s.clone()),
        serde_json::Value::Array(items) => JsonValue::Array(items.iter().map(from_serde).collect()),
        serde_json::Value::Object(entries) => JsonValue::Object(js_property_order(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), from_serde(v)))
                .collect(),
        )),
    }
}

/// A `serde_json` value as a sync rules value (PROTOCOL.md §1.3, `toSyncRulesParameters`):
/// integers → INTEGER (beyond 64 bits → REAL), other numbers → REAL, booleans → 1/0, strings →
/// TEXT, null → NULL, arrays and objects → their JSON text as [`write_json`] writes it.
pub fn serde_to_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Value::Text(from_serde(value).to_json_string())
        }
        other => to_sql_value(&from_serde(other), true),
    }
}

/// The rows of `json_each(json)`: `(key, value)` pairs. Arrays give `(index, element)`, objects
/// `(key, value)`, a scalar one `(NULL, value)`, SQL NULL no rows. Values convert as
/// [`to_sql_value`].
pub fn json_each(
    json: &Value,
    fixed_json_extract: bool,
) -> Result<Vec<(Value, Value)>, crate::EvalError> {
    let Some(text) = crate::cast::to_text(json) else {
        return Ok(Vec::new());
    };
    let parsed = parse(&text).map_err(|e| crate::EvalError::MalformedJson {
        function: "json_each",
        message: e.to_string(),
    })?;
    Ok(match &parsed {
        JsonValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                (
                    Value::Integer(i as i64),
                    to_sql_value(item, fixed_json_extract),
                )
            })
            .collect(),
        JsonValue::Object(entries) => entries
            .iter()
            .map(|(k, item)| {
                (
                    Value::Text(k.clone()),
                    to_sql_value(item, fixed_json_extract),
                )
            })
            .collect(),
        other => vec![(Value::Null, to_sql_value(other, fixed_json_extract))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        parse(text)
            .map(|v| v.to_json_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn numbers_keep_their_kind_and_precision() {
        assert_eq!(roundtrip(r#"{"foo": 42.0}"#), r#"{"foo":42.0}"#);
        assert_eq!(
            roundtrip("[1, 1.5, 1e2, -0, 9223372036854775807]"),
            "[1,1.5,100.0,0,9223372036854775807]"
        );
        assert_eq!(roundtrip("18014398509481982123"), "18014398509481982123");
        assert_eq!(roundtrip("1e400"), "null");
        assert_eq!(roundtrip("1e21"), "1e+21");
    }

    #[test]
    fn strings_unescape_and_rewrite_like_json_stringify() {
        assert_eq!(
            roundtrip(r#""a\u00e9\/\n\"\ud83d\ude00""#),
            "\"aé/\\n\\\"😀\""
        );
        assert_eq!(roundtrip(r#""\ud800x""#), "\"\u{FFFD}x\"");
        assert!(parse("\"a\nb\"").is_err());
        assert!(parse(r#""\x""#).is_err());
    }

    #[test]
    fn object_keys_follow_javascript_order_and_reject_conflicting_duplicates() {
        assert_eq!(
            roundtrip(r#"{"b":1,"10":2,"a":3,"2":4,"01":5}"#),
            r#"{"2":4,"10":2,"b":1,"a":3,"01":5}"#
        );
        assert_eq!(roundtrip(r#"{"a":1,"a":1}"#), r#"{"a":1}"#);
        let err = parse(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert_eq!(err.message, "duplicate key 'a' in object");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in [
            "",
            "[",
            "{",
            "{\"a\"",
            "{\"a\":}",
            "[1,]",
            "tru",
            "01",
            "-",
            "1.",
            "1e",
            "[1] x",
            "\"\\u12\"",
        ] {
            assert!(parse(text).is_err(), "{text:?} should not parse");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep).unwrap_err().message, "JSON nested too deeply");
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn paths_parse_in_each_mode() {
        let p = |s, m| JsonPath::parse(s, m).map(|p| p.steps);
        assert_eq!(p("$", PathMode::Strict), Ok(vec![]));
        assert_eq!(
            p("$.a.\"b.c\"[2][#-1]", PathMode::Strict),
            Ok(vec![
                PathStep::Key("a".into()),
                PathStep::Key("b.c".into()),
                PathStep::Index(2),
                PathStep::FromEnd(1)
            ])
        );
        assert_eq!(
            p("a.b", PathMode::Strict),
            Err("path must start with '$', got 'a.b'".to_owned())
        );
        assert_eq!(
            p("a.b", PathMode::FixedArrow),
            Ok(vec![PathStep::Key("a.b".into())])
        );
        assert_eq!(
            p("a.b", PathMode::LegacyArrow),
            Ok(vec![PathStep::Key("a".into()), PathStep::Key("b".into())])
        );
        assert!(p("$[x]", PathMode::Strict).is_err());
        assert!(p("$a", PathMode::Strict).is_err());
    }

    #[test]
    fn serde_values_convert_like_request_parameters() {
        let claims: serde_json::Value = serde_json::from_str(
            r#"{"sub":"u1","n":7,"big":18446744073709551615,"r":2.0,"ok":true,"none":null,"o":{"b":1,"1":[1.5]}}"#,
        )
        .unwrap();
        let get = |k: &str| serde_to_value(&claims[k]);
        assert_eq!(get("sub"), Value::Text("u1".into()));
        assert_eq!(get("n"), Value::Integer(7));
        assert_eq!(get("big"), Value::Real(18446744073709551615.0));
        assert_eq!(get("r"), Value::Real(2.0));
        assert_eq!(get("ok"), Value::Integer(1));
        assert_eq!(get("none"), Value::Null);
        assert_eq!(get("o"), Value::Text(r#"{"1":[1.5],"b":1}"#.into()));
        assert_eq!(
            from_serde(&claims).to_json_string(),
            r#"{"sub":"u1","n":7,"big":18446744073709551615,"r":2.0,"ok":true,"none":null,"o":{"1":[1.5],"b":1}}"#
        );
    }

    #[test]
    fn lookup_follows_keys_indexes_and_legacy_null() {
        let doc = parse(r#"{"a":{"b":[10,20,30]},"n":null}"#).unwrap();
        let find = |path: &str, legacy| {
            lookup(
                &doc,
                &JsonPath::parse(path, PathMode::LegacyArrow).unwrap(),
                legacy,
            )
            .cloned()
        };
        assert_eq!(find("$.a.b[1]", false), Some(JsonValue::Integer(20)));
        assert_eq!(find("a.b.2", false), Some(JsonValue::Integer(30)));
        assert_eq!(find("$.a.b[#-1]", false), Some(JsonValue::Integer(30)));
        assert_eq!(find("$.a.b[3]", false), None);
        assert_eq!(find("$.n.x", true), Some(JsonValue::Null));
        assert_eq!(find("$.n.x", false), None);
        assert_eq!(find("$.a.b.x", true), None);
    }
}

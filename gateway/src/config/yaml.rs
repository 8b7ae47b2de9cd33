//! YAML text → `serde_json::Value`, remembering where every value was written.
//!
//! The gateway's config is small, so it is read into a JSON value (on which environment overrides
//! are applied by path) and then deserialized into [`crate::config::Config`]. Built on
//! `saphyr-parser`'s events (the parser ferry-rules already uses), with YAML 1.2 core-schema
//! resolution of plain scalars. Aliases and tags are refused: a config file needs neither. This
//! module does not know what the keys mean.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// Maximum nesting of mappings and sequences in a config file.
const MAX_DEPTH: usize = 32;

/// A parsed document: the value and the 1-based (line, column) of each path in it.
#[derive(Debug, Default)]
pub(crate) struct Located {
    /// The document as JSON.
    pub value: Value,
    /// `path → (line, column)`, paths written as serde_path_to_error prints them
    /// (`auth.audiences[0]`); the root is `"."`.
    pub positions: HashMap<String, (usize, usize)>,
}

/// A YAML syntax error or a construct the config does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

fn position(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

fn error(span: &Span, message: impl Into<String>) -> YamlError {
    let (line, column) = position(span);
    YamlError {
        line,
        column,
        message: message.into(),
    }
}

/// Parses the first document of `text`. An empty document is an empty mapping.
pub(crate) fn parse(text: &str) -> Result<Located, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut located = Located::default();
    let mut reader = Reader {
        parser: &mut parser,
        positions: &mut located.positions,
    };
    loop {
        let (event, span) = reader.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::StreamEnd | Event::DocumentEnd => {
                located.value = Value::Object(Map::new());
                return Ok(located);
            }
            other => {
                located.value = reader.node(other, span, String::from("."), 0)?;
                return Ok(located);
            }
        }
    }
}

struct Reader<'a, 'input> {
    parser: &'a mut Parser<'input, saphyr_parser::StrInput<'input>>,
    positions: &'a mut HashMap<String, (usize, usize)>,
}

fn child_path(parent: &str, key: &str) -> String {
    if parent == "." {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'input> Reader<'_, 'input> {
    fn next(&mut self) -> Result<(Event<'input>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(YamlError {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info().to_owned(),
            }),
            None => Err(YamlError {
                line: 0,
                column: 0,
                message: "unexpected end of the document".into(),
            }),
        }
    }

    fn node(
        &mut self,
        event: Event<'input>,
        span: Span,
        path: String,
        depth: usize,
    ) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(error(&span, "the document is nested too deeply"));
        }
        self.positions.insert(path.clone(), position(&span));
        match event {
            Event::Scalar(text, style, _anchor, tag) => {
                if tag.is_some() {
                    return Err(error(&span, "YAML tags are not allowed in the config file"));
                }
                Ok(resolve_scalar(&text, style))
            }
            Event::Alias(_) => Err(error(
                &span,
                "YAML aliases (*name) are not allowed in the config file",
            )),
            Event::SequenceStart(_, tag) => {
                if tag.is_some() {
                    return Err(error(&span, "YAML tags are not allowed in the config file"));
                }
                let mut items = Vec::new();
                loop {
                    let (event, item_span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        return Ok(Value::Array(items));
                    }
                    let item_path = if path == "." {
                        format!("[{}]", items.len())
                    } else {
                        format!("{path}[{}]", items.len())
                    };
                    items.push(self.node(event, item_span, item_path, depth + 1)?);
                }
            }
            Event::MappingStart(_, tag) => {
                if tag.is_some() {
                    return Err(error(&span, "YAML tags are not allowed in the config file"));
                }
                let mut map = Map::new();
                loop {
                    let (event, key_span) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => return Ok(Value::Object(map)),
                        Event::Scalar(text, _, _, None) => text.into_owned(),
                        _ => return Err(error(&key_span, "mapping keys must be plain strings")),
                    };
                    if map.contains_key(&key) {
                        return Err(error(&key_span, format!("duplicate key `{key}`")));
                    }
                    let (event, value_span) = self.next()?;
                    let value_path = child_path(&path, &key);
                    let value = self.node(event, value_span, value_path, depth + 1)?;
                    map.insert(key, value);
                }
            }
            _ => Err(error(&span, "unexpected YAML construct")),
        }
    }
}

/// YAML 1.2 core schema for plain scalars; quoted and block scalars are always strings.
fn resolve_scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n.into());
    }
    let looks_numeric = text
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if looks_numeric {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_owned())
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_scalars_resolve_with_the_core_schema() {
        let doc = parse("a: 1\nb: true\nc: ~\nd: 1.5\ne: '1'\nf: hello\ng: 0x10\nh: -3\n").unwrap();
        assert_eq!(
            doc.value,
            json!({"a": 1, "b": true, "c": null, "d": 1.5, "e": "1", "f": "hello", "g": 16, "h": -3})
        );
    }

    #[test]
    fn positions_are_recorded_per_path() {
        let doc = parse("auth:\n  audiences:\n    - x\n    - y\n").unwrap();
        assert_eq!(doc.positions["auth.audiences[1]"], (4, 7));
        assert_eq!(doc.positions["auth"].0, 2);
    }

    #[test]
    fn empty_document_is_an_empty_mapping() {
        assert_eq!(parse("").unwrap().value, json!({}));
        assert_eq!(parse("# only a comment\n").unwrap().value, json!({}));
    }

    #[test]
    fn aliases_and_duplicate_keys_are_refused_with_positions() {
        let err = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("aliases"), "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.line >= 1, "{err:?}");
    }
}

//! YAML text → a small tree of mappings, sequences and scalars, each with its position.
//!
//! Built from `saphyr-parser`'s events so that nesting depth is checked *while* parsing (a hostile
//! document is refused before it costs memory or stack), aliases are refused (no "billion laughs"),
//! and every scalar keeps where it came from: its start line and column, its byte range in the
//! document and its style, which [`source_map`](crate::source_map) needs to map a position inside a
//! query back to the YAML file. What the keys mean is decided in [`document`](crate::document).

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::{Diagnostic, Position};
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_YAML_DEPTH};

/// How a scalar was written; decides how positions inside it map back to the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted, possibly folded over several lines.
    Plain,
    /// `'...'`, with `''` for a quote.
    SingleQuoted,
    /// `"..."`, with backslash escapes.
    DoubleQuoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

/// Where a scalar's text is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScalarLoc {
    /// Position of the scalar's first character (the opening quote for quoted scalars).
    pub position: Position,
    /// Byte offset of that character in the document.
    pub byte_start: usize,
    /// Byte offset just past the scalar.
    pub byte_end: usize,
    /// How it was written.
    pub style: Style,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A scalar: its text, where it is, and whether it was quoted or a block (then never a
    /// null/bool/number).
    Scalar { value: String, loc: ScalarLoc },
    /// A sequence.
    Sequence {
        items: Vec<Node>,
        position: Position,
    },
    /// A mapping, entries in document order (duplicates kept; the caller reports them).
    Mapping {
        entries: Vec<(Node, Node)>,
        position: Position,
    },
}

impl Node {
    /// Where the node starts.
    pub fn position(&self) -> Position {
        match self {
            Node::Scalar { loc, .. } => loc.position,
            Node::Sequence { position, .. } | Node::Mapping { position, .. } => *position,
        }
    }

    /// The scalar's text if this is a scalar.
    pub fn as_scalar(&self) -> Option<(&str, &ScalarLoc)> {
        match self {
            Node::Scalar { value, loc } => Some((value, loc)),
            _ => None,
        }
    }

    /// A word for error messages: "a mapping", "a list", "a string", "a number", ….
    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Scalar { .. } if self.is_null() => "nothing",
            Node::Scalar { .. } if self.as_bool().is_some() => "a boolean",
            Node::Scalar { .. } if self.as_integer().is_some() => "a number",
            Node::Scalar { .. } => "a string",
            Node::Sequence { .. } => "a list",
            Node::Mapping { .. } => "a mapping",
        }
    }

    /// True for a plain scalar the YAML core schema reads as null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        match self {
            Node::Scalar { value, loc } => {
                loc.style == Style::Plain
                    && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            _ => false,
        }
    }

    /// The scalar as a YAML core-schema boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Scalar { value, loc } if loc.style == Style::Plain => match value.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The scalar as a YAML core-schema integer (decimal, `0o` octal or `0x` hex).
    pub fn as_integer(&self) -> Option<i64> {
        let Node::Scalar { value, loc } = self else {
            return None;
        };
        if loc.style != Style::Plain {
            return None;
        }
        let v = value.as_str();
        if let Some(hex) = v.strip_prefix("0x") {
            return i64::from_str_radix(hex, 16).ok();
        }
        if let Some(oct) = v.strip_prefix("0o") {
            return i64::from_str_radix(oct, 8).ok();
        }
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    }

    /// The scalar's text, unless it is a plain scalar the core schema reads as null, a boolean or a
    /// number.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, loc } => {
                if loc.style == Style::Plain
                    && (self.is_null() || self.as_bool().is_some() || self.as_integer().is_some())
                {
                    None
                } else {
                    Some(value)
                }
            }
            _ => None,
        }
    }
}

/// Converts saphyr's character indexes to byte offsets, moving forward through the text.
struct ByteCursor<'a> {
    text: &'a str,
    char_index: usize,
    byte_index: usize,
}

impl ByteCursor<'_> {
    fn byte_offset(&mut self, char_index: usize) -> usize {
        if char_index < self.char_index {
            self.char_index = 0;
            self.byte_index = 0;
        }
        let text = self.text;
        let mut chars = text[self.byte_index..].chars();
        while self.char_index < char_index {
            match chars.next() {
                Some(c) => {
                    self.byte_index += c.len_utf8();
                    self.char_index += 1;
                }
                None => break,
            }
        }
        self.byte_index
    }
}

fn position_of(span: &Span) -> Position {
    Position {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    }
}

fn style_of(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        ScalarStyle::Literal => Style::Literal,
        ScalarStyle::Folded => Style::Folded,
    }
}

fn depth_error(position: Position) -> Diagnostic {
    Diagnostic::new(format!(
        "YAML nesting is deeper than the limit of {MAX_YAML_DEPTH} levels"
    ))
    .at(Some(position))
    .with_hint("sync rules need only a few levels: bucket_definitions → definition → data → query")
}

/// A container being filled while events arrive.
enum Open {
    Sequence(Vec<Node>, Position),
    Mapping(Vec<(Node, Node)>, Option<Node>, Position),
}

/// Parses one YAML document into a [`Node`] tree. An empty document yields `None`.
///
/// Refuses documents over [`MAX_DOCUMENT_BYTES`], nesting deeper than [`MAX_YAML_DEPTH`], aliases,
/// and more than one document. YAML syntax errors are reported with their position.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, Diagnostic> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Diagnostic::new(format!(
            "sync rules document is {} bytes, more than the limit of {} bytes",
            text.len(),
            MAX_DOCUMENT_BYTES
        ))
        .with_hint("split very large rules, or shorten repeated queries"));
    }
    let mut parser = Parser::new_from_str(text);
    let mut cursor = ByteCursor {
        text,
        char_index: 0,
        byte_index: 0,
    };
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;

    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let marker = e.marker();
            if e.info().contains("recursion limit") {
                return depth_error(Position {
                    line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
                    column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
                });
            }
            Diagnostic::new(format!("invalid YAML: {}", e.info()))
                .at(Some(Position {
                    line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
                    column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
                }))
                .with_hint("check indentation and quoting; queries containing ': ' or '#' need quotes or a '|' block")
        })?;
        let complete: Node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(
                        Diagnostic::new("more than one YAML document in the sync rules")
                            .at(Some(position_of(&span)))
                            .with_hint("remove the second '---' and merge the documents"),
                    );
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(Diagnostic::new(
                    "YAML aliases (*name) are not supported in sync rules",
                )
                .at(Some(position_of(&span)))
                .with_hint("write the value out in full"));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_YAML_DEPTH {
                    return Err(depth_error(position_of(&span)));
                }
                let position = position_of(&span);
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Sequence(Vec::new(), position)
                } else {
                    Open::Mapping(Vec::new(), None, position)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::Sequence(items, position)) => Node::Sequence { items, position },
                _ => {
                    return Err(Diagnostic::new("invalid YAML: unbalanced sequence")
                        .at(Some(position_of(&span))))
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Mapping(entries, None, position)) => Node::Mapping { entries, position },
                _ => {
                    return Err(Diagnostic::new("invalid YAML: unbalanced mapping")
                        .at(Some(position_of(&span))))
                }
            },
            Event::Scalar(value, style, _anchor, _tag) => {
                let byte_start = cursor.byte_offset(span.start.index());
                let byte_end = cursor.byte_offset(span.end.index()).max(byte_start);
                Node::Scalar {
                    value: value.into_owned(),
                    loc: ScalarLoc {
                        position: position_of(&span),
                        byte_start,
                        byte_end,
                        style: style_of(style),
                    },
                }
            }
        };
        match stack.last_mut() {
            None => {
                if root.is_some() {
                    return Err(
                        Diagnostic::new("more than one YAML document in the sync rules")
                            .at(Some(complete.position())),
                    );
                }
                root = Some(complete);
            }
            Some(Open::Sequence(items, _)) => items.push(complete),
            Some(Open::Mapping(entries, pending, _)) => match pending.take() {
                None => *pending = Some(complete),
                Some(key) => entries.push((key, complete)),
            },
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_positions_and_byte_ranges() {
        let text = "a:\n  - é: 'x'\n  - SELECT 1\n";
        let root = parse(text).unwrap().unwrap();
        let Node::Mapping { entries, .. } = root else {
            panic!()
        };
        let Node::Sequence { items, .. } = &entries[0].1 else {
            panic!()
        };
        let (value, loc) = items[1].as_scalar().unwrap();
        assert_eq!(value, "SELECT 1");
        assert_eq!(loc.position, Position { line: 3, column: 5 });
        assert_eq!(&text[loc.byte_start..loc.byte_end], "SELECT 1");
        let Node::Mapping { entries: inner, .. } = &items[0] else {
            panic!()
        };
        let (_, loc) = inner[0].1.as_scalar().unwrap();
        assert_eq!(&text[loc.byte_start..loc.byte_end], "'x'");
    }

    #[test]
    fn deep_nesting_is_refused_before_it_is_built() {
        let text = "[".repeat(100_000);
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{err}");
    }

    #[test]
    fn aliases_are_refused() {
        let err = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert!(err.message.contains("aliases"), "{err}");
    }

    #[test]
    fn core_schema_scalars_are_recognised() {
        let root = parse("a: 0x10\nb: TRUE\nc: '3'\nd: ~\n").unwrap().unwrap();
        let Node::Mapping { entries, .. } = root else {
            panic!()
        };
        assert_eq!(entries[0].1.as_integer(), Some(16));
        assert_eq!(entries[1].1.as_bool(), Some(true));
        assert_eq!(entries[2].1.as_integer(), None);
        assert_eq!(entries[2].1.as_str(), Some("3"));
        assert!(entries[3].1.is_null());
    }
}

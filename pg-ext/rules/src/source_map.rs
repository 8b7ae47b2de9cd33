//! Maps a position inside a query string back to a line and column of the YAML document.
//!
//! A query's text is the *parsed* value of a YAML scalar: quotes, escapes, block indentation and
//! line folding are gone. To point an SQL error at the right place in the file, the value is walked
//! character by character alongside the scalar's source text, skipping what YAML removed. When the
//! two cannot be aligned (an unusual escape), the scalar's own start is used. Only used when an
//! error is reported, never on the evaluation path.

use crate::error::Position;
use crate::yaml::{ScalarLoc, Style};

/// A query string together with where its scalar is in the document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryText<'a> {
    /// The whole YAML document.
    pub document: &'a str,
    /// The query (the scalar's parsed value).
    pub value: &'a str,
    /// Where the scalar is.
    pub loc: ScalarLoc,
}

impl QueryText<'_> {
    /// Document position of the character at `line`/`column` (1-based, as sqlparser counts) of the
    /// query text.
    pub fn position_of_sql_location(&self, line: u64, column: u64) -> Position {
        if line == 0 || column == 0 {
            return self.loc.position;
        }
        let mut current_line = 1u64;
        let mut current_column = 1u64;
        for (offset, c) in self.value.chars().enumerate() {
            if current_line == line && current_column == column {
                return self.position_of_char(offset);
            }
            if c == '\n' {
                current_line += 1;
                current_column = 1;
            } else {
                current_column += 1;
            }
        }
        self.position_of_char(self.value.chars().count())
    }

    /// Document position of the `offset`-th character of the query text.
    pub fn position_of_char(&self, offset: usize) -> Position {
        let source = self
            .document
            .get(self.loc.byte_start..self.loc.byte_end)
            .unwrap_or("");
        let mut chars: Vec<(char, Position)> = Vec::with_capacity(source.len());
        let mut line = self.loc.position.line;
        let mut column = self.loc.position.column;
        for c in source.chars() {
            chars.push((c, Position { line, column }));
            if c == '\n' {
                line = line.saturating_add(1);
                column = 1;
            } else {
                column = column.saturating_add(1);
            }
        }
        let end = Position { line, column };
        let style = self.loc.style;
        let mut p = usize::from(matches!(style, Style::SingleQuoted | Style::DoubleQuoted));
        for (i, c) in self.value.chars().enumerate() {
            let Some(matched) = match_char(&chars, &mut p, c, style) else {
                return self.loc.position;
            };
            if i == offset {
                return chars.get(matched).map_or(end, |(_, pos)| *pos);
            }
        }
        // Past the last character: the position after the last matched source character.
        chars.get(p).map_or(end, |(_, pos)| *pos)
    }
}

/// Finds the source index of value character `c`, starting at `*p`; moves `*p` past it.
fn match_char(source: &[(char, Position)], p: &mut usize, c: char, style: Style) -> Option<usize> {
    loop {
        let (s, _) = *source.get(*p)?;
        if style == Style::DoubleQuoted && s == '\\' {
            let next = source.get(*p + 1).map(|(n, _)| *n);
            let len = match next {
                Some('\n') | Some('\r') => {
                    // Escaped line break: no character in the value; skip it and the indentation.
                    *p += 2;
                    while source
                        .get(*p)
                        .is_some_and(|(w, _)| *w == ' ' || *w == '\t' || *w == '\n')
                    {
                        *p += 1;
                    }
                    continue;
                }
                Some('x') => 4,
                Some('u') => 6,
                Some('U') => 10,
                Some(_) => 2,
                None => 1,
            };
            let at = *p;
            *p += len;
            return Some(at);
        }
        if s == c {
            let at = *p;
            *p += 1;
            if style == Style::SingleQuoted
                && c == '\''
                && source.get(*p).is_some_and(|(n, _)| *n == '\'')
            {
                *p += 1;
            }
            return Some(at);
        }
        if s.is_whitespace() {
            if c.is_whitespace() {
                let at = *p;
                *p += 1;
                return Some(at);
            }
            *p += 1;
            continue;
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Node};

    fn first_query(document: &str) -> (String, ScalarLoc) {
        let Some(Node::Mapping { entries, .. }) = parse(document).unwrap() else {
            panic!()
        };
        let (value, loc) = entries[0].1.as_scalar().unwrap();
        (value.to_owned(), *loc)
    }

    fn locate(document: &str, needle: &str) -> Position {
        let (value, loc) = first_query(document);
        let offset = value[..value.find(needle).unwrap()].chars().count();
        QueryText {
            document,
            value: &value,
            loc,
        }
        .position_of_char(offset)
    }

    #[test]
    fn plain_scalar_positions_follow_the_text() {
        assert_eq!(
            locate("q: SELECT x FROM t\n", "FROM"),
            Position {
                line: 1,
                column: 13
            }
        );
    }

    #[test]
    fn folded_plain_scalar_positions_follow_line_breaks() {
        let doc = "q: SELECT x\n     FROM t\n     JOIN u\n";
        assert_eq!(locate(doc, "JOIN"), Position { line: 3, column: 6 });
    }

    #[test]
    fn quoted_scalar_positions_skip_quotes_and_escapes() {
        assert_eq!(
            locate("q: 'SELECT ''a'' FROM t'\n", "FROM"),
            Position {
                line: 1,
                column: 18
            }
        );
        assert_eq!(
            locate("q: \"SELECT \\\"a\\\" FROM t\"\n", "FROM"),
            Position {
                line: 1,
                column: 18
            }
        );
    }

    #[test]
    fn block_scalar_positions_skip_indentation() {
        let doc = "q: |\n    SELECT x\n      FROM t\n";
        assert_eq!(locate(doc, "FROM"), Position { line: 3, column: 7 });
    }

    #[test]
    fn sql_locations_are_converted() {
        let doc = "q: |\n    SELECT x\n      FROM t\n";
        let (value, loc) = first_query(doc);
        let text = QueryText {
            document: doc,
            value: &value,
            loc,
        };
        assert_eq!(
            text.position_of_sql_location(2, 3),
            Position { line: 3, column: 7 }
        );
    }
}

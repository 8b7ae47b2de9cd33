//! One query string → sqlparser's syntax tree, within the size, token and recursion limits.
//!
//! Only syntax is checked here; what the query *means* is validated, by allow-list, in
//! [`compile_data`](crate::compile_data) and [`compile_parameter`](crate::compile_parameter).
//! sqlparser's error texts are turned into a message plus a location inside the query, never into
//! the debug output of its types.

use sqlparser::ast::{Query, Statement};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::dialect::SyncRulesDialect;
use crate::limits::{MAX_QUERY_BYTES, MAX_QUERY_TOKENS, MAX_SQL_RECURSION};

/// A syntax problem in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlSyntaxError {
    /// What is wrong.
    pub message: String,
    /// 1-based line and column inside the query, when known.
    pub location: Option<(u64, u64)>,
    /// What to do instead.
    pub hint: Option<String>,
}

impl SqlSyntaxError {
    fn new(message: impl Into<String>) -> Self {
        SqlSyntaxError {
            message: message.into(),
            location: None,
            hint: None,
        }
    }
}

/// Splits sqlparser's "… at Line: 3, Column: 7" suffix off a message.
fn split_location(message: &str) -> (String, Option<(u64, u64)>) {
    if let Some(at) = message.rfind(" at Line: ") {
        let tail = &message[at + " at Line: ".len()..];
        if let Some((line, column)) = tail.split_once(", Column: ") {
            if let (Ok(line), Ok(column)) = (line.trim().parse(), column.trim().parse()) {
                return (message[..at].to_owned(), Some((line, column)));
            }
        }
    }
    (message.to_owned(), None)
}

/// Makes sqlparser's "Expected: X, found: Y" read as a sentence.
fn humanize(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("Expected: ") {
        if let Some((expected, found)) = rest.split_once(", found: ") {
            if found.trim() == "EOF" {
                return format!("syntax error: expected {expected}, found the end of the query");
            }
            return format!("syntax error: expected {expected}, found '{found}'");
        }
        return format!("syntax error: expected {rest}");
    }
    format!("syntax error: {message}")
}

/// Line and column of the last character of `sql` (where "unexpected end" errors point).
fn end_location(sql: &str) -> (u64, u64) {
    let trimmed = sql.trim_end();
    let line = trimmed.matches('\n').count() as u64 + 1;
    let last_line = trimmed.rsplit('\n').next().unwrap_or("");
    (line, (last_line.chars().count() as u64).max(1))
}

/// Parses `sql` as exactly one query statement.
pub(crate) fn parse_query(sql: &str) -> Result<Box<Query>, SqlSyntaxError> {
    if sql.len() > MAX_QUERY_BYTES {
        return Err(SqlSyntaxError::new(format!(
            "query is {} bytes, more than the limit of {} bytes",
            sql.len(),
            MAX_QUERY_BYTES
        )));
    }
    if sql.trim().is_empty() {
        return Err(SqlSyntaxError {
            hint: Some("write a SELECT query".to_owned()),
            ..SqlSyntaxError::new("query is empty")
        });
    }
    let dialect = SyncRulesDialect::default();
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            let (message, _) = split_location(&e.message);
            SqlSyntaxError {
                message: format!("syntax error: {message}"),
                location: (e.location.line > 0).then_some((e.location.line, e.location.column)),
                hint: None,
            }
        })?;
    let significant = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count();
    if significant > MAX_QUERY_TOKENS {
        return Err(SqlSyntaxError {
            hint: Some("split the query into several simpler queries".to_owned()),
            ..SqlSyntaxError::new(format!(
                "query has {significant} tokens, more than the limit of {MAX_QUERY_TOKENS}"
            ))
        });
    }
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(MAX_SQL_RECURSION)
        .with_tokens_with_locations(tokens);
    let mut statements = parser.parse_statements().map_err(|e| match e {
        ParserError::RecursionLimitExceeded => SqlSyntaxError {
            hint: Some("use fewer nested parentheses and function calls".to_owned()),
            ..SqlSyntaxError::new("query is nested too deeply")
        },
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => {
            let (message, location) = split_location(&m);
            SqlSyntaxError {
                message: humanize(&message),
                location: location.or_else(|| Some(end_location(sql))),
                hint: None,
            }
        }
    })?;
    if statements.len() != 1 {
        return Err(SqlSyntaxError {
            hint: Some("put each query in its own list entry".to_owned()),
            ..SqlSyntaxError::new(format!(
                "expected exactly one SQL statement, found {}",
                statements.len()
            ))
        });
    }
    match statements.pop() {
        Some(Statement::Query(query)) => Ok(query),
        _ => Err(SqlSyntaxError {
            hint: Some("sync rules queries are SELECT statements".to_owned()),
            ..SqlSyntaxError::new("only SELECT queries are allowed")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_carry_a_location_and_no_debug_output() {
        let err = parse_query("SELECT * FROM t WHERE").unwrap_err();
        assert!(
            err.message.starts_with("syntax error: expected"),
            "{}",
            err.message
        );
        assert!(err.location.is_some());
        assert!(!err.message.contains("Token"), "{}", err.message);
    }

    #[test]
    fn two_statements_are_refused() {
        let err = parse_query("SELECT 1; SELECT 2").unwrap_err();
        assert!(err.message.contains("exactly one"), "{}", err.message);
    }

    #[test]
    fn non_select_statements_are_refused() {
        let err = parse_query("DELETE FROM t").unwrap_err();
        assert_eq!(err.message, "only SELECT queries are allowed");
    }

    #[test]
    fn deep_parentheses_are_refused() {
        let sql = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        let err = parse_query(&sql).unwrap_err();
        assert_eq!(err.message, "query is nested too deeply");
    }

    #[test]
    fn oversized_queries_are_refused() {
        let sql = format!("SELECT '{}'", "x".repeat(MAX_QUERY_BYTES));
        assert!(parse_query(&sql).unwrap_err().message.contains("bytes"));
    }
}

//! The size and nesting limits applied to sync rules input, in one place.
//!
//! Every limit is checked before the input reaches a parser that could be slowed down or run out of
//! stack on it; going over a limit is an ordinary [`RuleError`](crate::RuleError) with a hint.
//! Evaluation-time limits (row JSON size, bucket counts) belong to the extension and the gateway.

/// Largest accepted sync rules document: 1 MiB.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Largest accepted single SQL query: 64 KiB.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Deepest accepted YAML nesting (mappings and sequences inside each other). A sync rules document
/// needs 4 (`bucket_definitions` → definition → `data` → query).
pub const MAX_YAML_DEPTH: usize = 16;

/// Recursion limit handed to sqlparser (`Parser::with_recursion_limit`).
pub const MAX_SQL_RECURSION: usize = 256;

/// Deepest accepted expression tree (operators and function calls inside each other), also for
/// chains of binary operators that sqlparser builds without recursing (`a + b + c + …`). Chains
/// of `AND` or of `OR` count as one level, however long. Keeps a stored plan within JSON readers'
/// nesting limits (128 in serde_json).
pub const MAX_EXPRESSION_DEPTH: usize = 32;

/// Most SQL tokens accepted in one query; keeps the parsed syntax tree small.
pub const MAX_QUERY_TOKENS: usize = 4096;

/// Most errors reported for one document; the rest are summarised in one last error.
pub const MAX_REPORTED_ERRORS: usize = 100;

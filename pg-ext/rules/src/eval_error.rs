//! Value-level evaluation errors: what an operator, a cast or a function can fail with.
//!
//! Holds [`EvalError`] only. These errors know nothing about queries, rows or positions: the
//! evaluator wraps them with that context. Compile-time problems (unknown functions, wrong argument
//! counts in a rule) are reported by the compiler as positioned rule errors, not here.

/// Longest excerpt of a user value quoted in an error message, in characters.
const EXCERPT_CHARS: usize = 60;

/// An error raised while evaluating an operator, a cast or a function over [`Value`](crate::Value)s.
///
/// Every message names the operator or function, says what was wrong and quotes (a short excerpt
/// of) the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// `=`, `<`, … between two BLOBs (PROTOCOL.md §1.5: not supported).
    #[error("cannot compare two BLOB values; convert them first, e.g. with hex() or base64()")]
    BlobComparison,
    /// The right side of `IN`, or a side of `&&`, is not a JSON array.
    #[error("{operator}: the {side} operand must be a JSON array text, got {got}")]
    NotJsonArray {
        /// `IN` or `&&`.
        operator: &'static str,
        /// Which operand: `left` or `right`.
        side: &'static str,
        /// What was found instead (type and excerpt).
        got: String,
    },
    /// A JSON argument does not parse.
    #[error("{function}: malformed JSON: {message}")]
    MalformedJson {
        /// The operator or function (`->`, `json_extract`, …).
        function: &'static str,
        /// What the parser found, with the byte offset.
        message: String,
    },
    /// A JSON path argument is not valid.
    #[error("{function}: {message}")]
    BadJsonPath {
        /// The operator or function.
        function: &'static str,
        /// What is wrong with the path (quotes it).
        message: String,
    },
    /// `json_keys` on something that is not a JSON object.
    #[error("json_keys: expected a JSON object, got a JSON {0}")]
    JsonKeysNotObject(&'static str),
    /// `uuid_blob` on a text that is not a UUID.
    #[error("uuid_blob: not a UUID: '{0}'")]
    NotUuid(String),
    /// A geometry function got bytes that are not PostGIS (E)WKB.
    #[error("{function}: invalid geometry: {message}")]
    InvalidGeometry {
        /// The function (`st_astext`, …).
        function: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A geometry type that the geometry functions do not handle.
    #[error("{function}: unsupported geometry type {type_code}; supported are Point, LineString, Polygon, MultiPoint, MultiLineString, MultiPolygon and GeometryCollection")]
    UnsupportedGeometry {
        /// The function (`st_astext`, …).
        function: &'static str,
        /// The WKB type code found.
        type_code: u32,
    },
    /// A function called with a number of arguments it does not take.
    #[error("{function}() takes {expected}, got {got}")]
    WrongArgumentCount {
        /// The function name.
        function: &'static str,
        /// The accepted counts, e.g. `1 argument`, `1 or 2 arguments`, `at least 1 argument`.
        expected: String,
        /// How many were passed.
        got: usize,
    },
    /// [`functions::call`](crate::functions::call) with a name that is not a function.
    #[error("unknown function '{0}'")]
    UnknownFunction(String),
}

/// A short, single-line excerpt of `text` for an error message: at most [`EXCERPT_CHARS`]
/// characters, with `…` when cut.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_CHARS * 4) + 3);
    for (count, c) in text.chars().enumerate() {
        if count == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

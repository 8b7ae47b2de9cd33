//! The crate's one error type, [`ProtocolError`].
//!
//! It covers invalid values (op ids, checksums, priorities, ops), NDJSON framing problems (oversize
//! lines, invalid UTF-8, a stream that ends mid-line) and lines that are not valid JSON sync lines.
//! HTTP error *bodies* sent to clients are a different thing: see [`crate::error_envelope`].

use crate::op::OpType;
use crate::op_id::OpId;

/// Everything that can go wrong while parsing, validating, framing or encoding ferry's wire format.
///
/// Every message says what was wrong and where (line number, byte offset, op id), so it can be
/// logged or shown as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A 64-bit id (op id, write checkpoint, checkpoint request id) that is not a non-negative
    /// decimal integer.
    #[error(
        "invalid {what} {value:?}: expected a non-negative decimal integer no larger than \
         18446744073709551615, as a JSON string or number"
    )]
    InvalidId {
        /// Which kind of id it was meant to be (`"op id"`, `"write_checkpoint"`, ...).
        what: &'static str,
        /// The offending input, as text.
        value: String,
    },

    /// An op id that does not fit into a signed 64-bit integer (Postgres `bigint`, SQLite `INTEGER`).
    #[error(
        "op id {value} does not fit in a signed 64-bit integer (Postgres bigint / SQLite INTEGER)"
    )]
    OpIdTooLarge {
        /// The op id.
        value: u64,
    },

    /// A checksum outside the accepted range `[-2^31, 2^32-1]`.
    #[error(
        "checksum {value} is out of range: expected an integer in [-2147483648, 4294967295] \
         (a signed or unsigned 32-bit value)"
    )]
    ChecksumOutOfRange {
        /// The offending value.
        value: i128,
    },

    /// A bucket priority outside `0..=3`.
    #[error("bucket priority {value} is out of range: expected 0, 1, 2 or 3")]
    InvalidPriority {
        /// The offending value.
        value: i128,
    },

    /// A PUT or REMOVE op lacking a field it must carry.
    #[error("{op} op {op_id} has no `{field}`")]
    MissingOpField {
        /// The op's type.
        op: OpType,
        /// The op's id.
        op_id: OpId,
        /// The missing field.
        field: &'static str,
    },

    /// A line longer than the configured maximum. The rest of that line is skipped and decoding
    /// continues with the next line (see [`crate::ndjson::LineSplitter`]).
    #[error(
        "line {line} (starting at byte {offset} of the stream) is longer than the maximum of {max} \
         bytes; the rest of that line is skipped"
    )]
    LineTooLong {
        /// 1-based line number in the stream (empty lines count).
        line: u64,
        /// Byte offset of the line's first byte in the stream.
        offset: u64,
        /// The configured maximum line length in bytes.
        max: usize,
    },

    /// A line that is not valid UTF-8.
    #[error(
        "line {line} is not valid UTF-8: invalid byte sequence at byte {offset} of the stream"
    )]
    InvalidUtf8 {
        /// 1-based line number in the stream.
        line: u64,
        /// Byte offset of the first invalid byte in the stream.
        offset: u64,
    },

    /// The stream ended in the middle of a line (data after the last `\n`).
    #[error(
        "the stream ended in the middle of line {line}: {len} bytes from byte {offset} on have no \
         terminating newline"
    )]
    IncompleteLine {
        /// 1-based line number of the unterminated line.
        line: u64,
        /// Byte offset of its first byte in the stream.
        offset: u64,
        /// How many bytes of it were received.
        len: u64,
    },

    /// A complete line that is not a valid sync line (bad JSON, or a known line type with invalid
    /// content).
    #[error("line {line} is not a valid sync line: {source} (the line starts with {snippet:?})")]
    InvalidLine {
        /// 1-based line number in the stream.
        line: u64,
        /// The first characters of the line, for the log.
        snippet: String,
        /// What serde_json reported (with the column inside the line).
        #[source]
        source: serde_json::Error,
    },

    /// A text that is not one of the known `PSYNC_*` error codes (see [`crate::ErrorCode`]).
    #[error("unknown error code {code:?}: not one of the PSYNC codes of PROTOCOL.md §3.8")]
    UnknownErrorCode {
        /// The text.
        code: String,
    },

    /// A value could not be encoded as JSON.
    #[error("could not encode a message as JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

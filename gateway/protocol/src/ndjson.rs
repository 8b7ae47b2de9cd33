//! NDJSON framing of the sync stream (PROTOCOL.md §3.1): one JSON object per `\n`-terminated line.
//!
//! - [`LineSplitter`] turns arbitrary byte chunks (a line may span many chunks, a chunk may hold
//!   many lines) into complete UTF-8 lines, with a maximum line length.
//! - [`SyncLineDecoder`] does the same and parses each line into a [`SyncLine`].
//! - [`encode_line`] appends one value as a `\n`-terminated line to a reusable buffer (the
//!   gateway's hot path).
//!
//! Both readers are sans-IO: the caller reads bytes however it likes and pushes them in. What the
//! lines mean is [`crate::line`]'s business; BSON streams are not supported.
//!
//! # Errors are per line, never terminal
//!
//! Every error is about one line, and after it the next line is returned as usual:
//! - a line longer than the maximum yields [`ProtocolError::LineTooLong`] as soon as its received
//!   part exceeds the maximum (its bytes are never buffered beyond that); the rest of that line is
//!   then skipped up to its `\n`;
//! - a line that is not valid UTF-8 yields [`ProtocolError::InvalidUtf8`];
//! - a line that is not a valid sync line yields [`ProtocolError::InvalidLine`] (decoder only).
//!
//! Whether to go on is the caller's decision. A sync client should drop the connection on any
//! error, since a skipped line means missed data; a log tool can carry on.
//!
//! Lines that are empty or only whitespace are skipped; a `\r` before the `\n` is removed. Line
//! numbers are 1-based and count every line of the stream, skipped ones included; byte offsets
//! count from the first byte pushed.

use std::collections::VecDeque;

use serde::Serialize;

use crate::error::ProtocolError;
use crate::line::SyncLine;

/// The default maximum line length: 64 MiB. A row may hold 15 MB of JSON (PROTOCOL.md §3.10),
/// which can double in size when escaped into a `data` string, plus the rest of its chunk.
pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024 * 1024;

/// How many characters of a bad line an [`ProtocolError::InvalidLine`] quotes.
const SNIPPET_CHARS: usize = 80;

/// One complete line returned by [`LineSplitter::next_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// 1-based line number in the stream.
    pub number: u64,
    /// Byte offset of the line's first byte in the stream.
    pub offset: u64,
    /// The line without its `\n` (and without a `\r` before it).
    pub text: &'a str,
}

/// A complete line or an error, queued in stream order.
#[derive(Debug)]
enum Pending {
    /// `buf[start..end]` is the line.
    Line {
        start: usize,
        end: usize,
        number: u64,
        offset: u64,
    },
    /// An oversize line (reported once, when it passed the maximum).
    TooLong { number: u64, offset: u64 },
}

/// Splits a byte stream into lines, incrementally. See the [module docs](self) for the rules.
///
/// ```
/// use ferry_protocol::LineSplitter;
///
/// let mut lines = LineSplitter::new();
/// lines.push(b"{\"a\":1}\n{\"b\"");
/// lines.push(b":2}\r\n\n{\"c\":3");
/// let mut got = Vec::new();
/// while let Some(line) = lines.next_line() {
///     got.push(line.unwrap().text.to_owned());
/// }
/// assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#]);
/// assert!(lines.finish().is_err(), "the stream ended inside {{\"c\":3");
/// ```
#[derive(Debug)]
pub struct LineSplitter {
    max_line_len: usize,
    /// Complete lines not yet returned (ranges in `pending`), then the partial current line.
    buf: Vec<u8>,
    pending: VecDeque<Pending>,
    /// Where the current (partial) line starts in `buf`.
    tail_start: usize,
    /// Number of the line currently being received.
    line_number: u64,
    /// Stream offset of the current line's first byte.
    line_offset: u64,
    /// Bytes pushed so far.
    stream_offset: u64,
    /// The current line was too long: drop bytes up to its `\n`.
    discarding: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new()
    }
}

impl LineSplitter {
    /// A splitter with the [`DEFAULT_MAX_LINE_LEN`].
    pub fn new() -> LineSplitter {
        LineSplitter::with_max_line_len(DEFAULT_MAX_LINE_LEN)
    }

    /// A splitter accepting lines of at most `max_line_len` bytes (not counting the `\n`, but
    /// counting a `\r` before it).
    pub fn with_max_line_len(max_line_len: usize) -> LineSplitter {
        LineSplitter {
            max_line_len,
            buf: Vec::new(),
            pending: VecDeque::new(),
            tail_start: 0,
            line_number: 1,
            line_offset: 0,
            stream_offset: 0,
            discarding: false,
        }
    }

    /// The maximum line length in bytes.
    pub fn max_line_len(&self) -> usize {
        self.max_line_len
    }

    /// Feeds the next chunk of the stream. Complete lines (and errors) become available through
    /// [`LineSplitter::next_line`]; drain them before pushing more to keep memory bounded by one
    /// chunk plus one line.
    pub fn push(&mut self, chunk: &[u8]) {
        self.compact();
        let mut rest = chunk;
        while !rest.is_empty() {
            let newline = rest.iter().position(|&b| b == b'\n');
            if self.discarding {
                let Some(i) = newline else {
                    self.stream_offset += rest.len() as u64;
                    return;
                };
                self.stream_offset += i as u64 + 1;
                rest = &rest[i + 1..];
                self.discarding = false;
                self.start_next_line();
                continue;
            }
            let piece = &rest[..newline.unwrap_or(rest.len())];
            let line_len = self.buf.len() - self.tail_start + piece.len();
            if line_len > self.max_line_len {
                self.buf.truncate(self.tail_start);
                self.pending.push_back(Pending::TooLong {
                    number: self.line_number,
                    offset: self.line_offset,
                });
                self.discarding = true;
                // The discarding branch consumes `rest` up to and including the newline.
                continue;
            }
            self.buf.extend_from_slice(piece);
            self.stream_offset += piece.len() as u64;
            if newline.is_none() {
                return;
            }
            self.stream_offset += 1;
            self.end_line();
            rest = &rest[piece.len() + 1..];
        }
    }

    /// The next complete line, or an error about one; `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<RawLine<'_>, ProtocolError>> {
        match self.pending.pop_front()? {
            Pending::TooLong { number, offset } => Some(Err(ProtocolError::LineTooLong {
                line: number,
                offset,
                max: self.max_line_len,
            })),
            Pending::Line {
                start,
                end,
                number,
                offset,
            } => Some(match std::str::from_utf8(&self.buf[start..end]) {
                Ok(text) => Ok(RawLine {
                    number,
                    offset,
                    text,
                }),
                Err(e) => Err(ProtocolError::InvalidUtf8 {
                    line: number,
                    offset: offset + e.valid_up_to() as u64,
                }),
            }),
        }
    }

    /// Declares the end of the stream. Fails with [`ProtocolError::IncompleteLine`] if data
    /// after the last `\n` was received (other than whitespace), and discards that data. Lines
    /// already complete stay available from [`LineSplitter::next_line`].
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let tail = &self.buf[self.tail_start..];
        let incomplete = self.discarding || !tail.iter().all(u8::is_ascii_whitespace);
        let result = if incomplete {
            Err(ProtocolError::IncompleteLine {
                line: self.line_number,
                offset: self.line_offset,
                len: self.stream_offset - self.line_offset,
            })
        } else {
            Ok(())
        };
        self.buf.truncate(self.tail_start);
        self.discarding = false;
        self.line_offset = self.stream_offset;
        result
    }

    /// The current line ended at a `\n` (already counted in `stream_offset`).
    fn end_line(&mut self) {
        let start = self.tail_start;
        let mut end = self.buf.len();
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        if self.buf[start..end].iter().all(u8::is_ascii_whitespace) {
            self.buf.truncate(start);
        } else {
            self.pending.push_back(Pending::Line {
                start,
                end,
                number: self.line_number,
                offset: self.line_offset,
            });
        }
        self.tail_start = self.buf.len();
        self.start_next_line();
    }

    fn start_next_line(&mut self) {
        self.line_number += 1;
        self.line_offset = self.stream_offset;
    }

    /// Drops the bytes of lines already returned from the front of `buf`.
    fn compact(&mut self) {
        let keep_from = self
            .pending
            .iter()
            .find_map(|p| match p {
                Pending::Line { start, .. } => Some(*start),
                Pending::TooLong { .. } => None,
            })
            .unwrap_or(self.tail_start);
        if keep_from == 0 {
            return;
        }
        self.buf.drain(..keep_from);
        self.tail_start -= keep_from;
        for p in &mut self.pending {
            if let Pending::Line { start, end, .. } = p {
                *start -= keep_from;
                *end -= keep_from;
            }
        }
    }
}

/// Splits a byte stream into lines and parses each into a [`SyncLine`]. See the
/// [module docs](self) for the rules; unknown line types decode to [`SyncLine::Unknown`].
///
/// ```
/// use ferry_protocol::{SyncLine, SyncLineDecoder};
///
/// let mut decoder = SyncLineDecoder::new();
/// decoder.push(b"{\"token_expires_in\":30}\n{\"checkpoint_com");
/// decoder.push(b"plete\":{\"last_op_id\":\"7\"}}\n");
/// let mut types = Vec::new();
/// while let Some(line) = decoder.next_line() {
///     types.push(line.unwrap().type_name().to_owned());
/// }
/// assert_eq!(types, ["token_expires_in", "checkpoint_complete"]);
/// decoder.finish().unwrap();
/// ```
#[derive(Debug, Default)]
pub struct SyncLineDecoder {
    lines: LineSplitter,
}

impl SyncLineDecoder {
    /// A decoder with the [`DEFAULT_MAX_LINE_LEN`].
    pub fn new() -> SyncLineDecoder {
        SyncLineDecoder::default()
    }

    /// A decoder accepting lines of at most `max_line_len` bytes.
    pub fn with_max_line_len(max_line_len: usize) -> SyncLineDecoder {
        SyncLineDecoder {
            lines: LineSplitter::with_max_line_len(max_line_len),
        }
    }

    /// Feeds the next chunk of the stream (see [`LineSplitter::push`]).
    pub fn push(&mut self, chunk: &[u8]) {
        self.lines.push(chunk);
    }

    /// The next decoded line, or an error about one; `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<SyncLine, ProtocolError>> {
        Some(self.lines.next_line()?.and_then(|line| {
            serde_json::from_str(line.text).map_err(|source| ProtocolError::InvalidLine {
                line: line.number,
                snippet: snippet(line.text),
                source,
            })
        }))
    }

    /// Declares the end of the stream (see [`LineSplitter::finish`]).
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        self.lines.finish()
    }

    /// Decodes a whole stream held in memory; the first error ends it.
    pub fn decode_all(stream: &[u8]) -> Result<Vec<SyncLine>, ProtocolError> {
        let mut decoder = SyncLineDecoder::new();
        decoder.push(stream);
        let mut lines = Vec::new();
        while let Some(line) = decoder.next_line() {
            lines.push(line?);
        }
        decoder.finish()?;
        Ok(lines)
    }
}

/// Appends `value` as one line of compact JSON plus `\n` to `out`.
///
/// Serializes straight into `out`, so a caller that reuses one buffer (clearing it after each
/// write to the socket) allocates nothing per line. Compact JSON never contains a raw newline, so
/// the result is always exactly one line. On error `out` is left as it was.
///
/// ```
/// use ferry_protocol::{encode_line, CheckpointComplete, OpId, SyncLine};
///
/// let mut buf = Vec::new();
/// let line = SyncLine::CheckpointComplete(CheckpointComplete { last_op_id: OpId(12) });
/// encode_line(&line, &mut buf).unwrap();
/// assert_eq!(buf, b"{\"checkpoint_complete\":{\"last_op_id\":\"12\"}}\n");
/// ```
pub fn encode_line<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, value) {
        out.truncate(start);
        return Err(ProtocolError::Encode(e));
    }
    out.push(b'\n');
    Ok(())
}

/// The first [`SNIPPET_CHARS`] characters of a line, marked when cut.
fn snippet(text: &str) -> String {
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkpoint::CheckpointComplete;
    use crate::keepalive::TokenExpiresIn;
    use crate::op_id::OpId;

    /// Drains all lines, as owned text, or the error's message.
    fn drain(lines: &mut LineSplitter) -> Vec<Result<(u64, String), String>> {
        let mut out = Vec::new();
        while let Some(line) = lines.next_line() {
            out.push(
                line.map(|l| (l.number, l.text.to_owned()))
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<SyncLine> {
        let mut decoder = SyncLineDecoder::new();
        let mut lines = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(line) = decoder.next_line() {
                lines.push(line.unwrap());
            }
        }
        decoder.finish().unwrap();
        lines
    }

    const STREAM: &str = concat!(
        r#"{"checkpoint":{"last_op_id":"2","buckets":[{"bucket":"b[]","checksum":-1,"count":2,"priority":3,"subscriptions":[]}],"streams":[]}}"#,
        "\n",
        r#"{"data":{"bucket":"b[]","after":"0","next_after":"2","has_more":false,"data":[{"op_id":"1","op":"PUT","object_type":"t","object_id":"ü1","subkey":"s","checksum":4294967295,"data":"{\"name\":\"Grüße 🚀\"}"},{"op_id":"2","op":"MOVE","checksum":0}]}}"#,
        "\n",
        r#"{"checkpoint_complete":{"last_op_id":"2"}}"#,
        "\n",
    );

    #[test]
    fn line_split_across_chunks_at_every_byte_position_decodes_the_same() {
        let whole = decode_chunks(&[STREAM.as_bytes()]);
        assert_eq!(whole.len(), 3);
        let bytes = STREAM.as_bytes();
        // Including positions inside multi-byte UTF-8 characters.
        for i in 0..=bytes.len() {
            assert_eq!(
                decode_chunks(&[&bytes[..i], &bytes[i..]]),
                whole,
                "split at {i}"
            );
        }
    }

    #[test]
    fn stream_fed_one_byte_at_a_time_decodes_the_same() {
        let whole = decode_chunks(&[STREAM.as_bytes()]);
        let chunks: Vec<&[u8]> = STREAM.as_bytes().chunks(1).collect();
        assert_eq!(decode_chunks(&chunks), whole);
    }

    #[test]
    fn several_lines_in_one_chunk_are_all_returned_in_order() {
        let mut lines = LineSplitter::new();
        lines.push(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\"");
        assert_eq!(
            drain(&mut lines),
            [
                Ok((1, r#"{"a":1}"#.to_owned())),
                Ok((2, r#"{"b":2}"#.to_owned())),
                Ok((3, r#"{"c":3}"#.to_owned())),
            ]
        );
        lines.push(b":4}\n");
        assert_eq!(drain(&mut lines), [Ok((4, r#"{"d":4}"#.to_owned()))]);
        lines.finish().unwrap();
    }

    #[test]
    fn empty_and_whitespace_lines_are_skipped_but_counted() {
        let mut lines = LineSplitter::new();
        lines.push(b"\n\n{\"a\":1}\n  \n\r\n{\"b\":2}\n\n");
        assert_eq!(
            drain(&mut lines),
            [
                Ok((3, r#"{"a":1}"#.to_owned())),
                Ok((6, r#"{"b":2}"#.to_owned())),
            ]
        );
        lines.finish().unwrap();
    }

    #[test]
    fn crlf_line_endings_are_tolerated() {
        let lines = SyncLineDecoder::decode_all(
            b"{\"token_expires_in\":5}\r\n{\"checkpoint_complete\":{\"last_op_id\":\"1\"}}\r\n",
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                SyncLine::TokenExpiresIn(TokenExpiresIn(5)),
                SyncLine::CheckpointComplete(CheckpointComplete {
                    last_op_id: OpId(1)
                }),
            ]
        );
        // A `\r` split from its `\n` across chunks is removed too.
        let mut splitter = LineSplitter::new();
        splitter.push(b"{\"a\":1}\r");
        splitter.push(b"\n");
        assert_eq!(drain(&mut splitter), [Ok((1, r#"{"a":1}"#.to_owned()))]);
    }

    #[test]
    fn line_of_exactly_the_maximum_length_is_accepted() {
        let mut lines = LineSplitter::with_max_line_len(7);
        lines.push(b"{\"a\":1}\n");
        assert_eq!(drain(&mut lines), [Ok((1, r#"{"a":1}"#.to_owned()))]);
    }

    #[test]
    fn oversize_line_is_reported_as_soon_as_it_exceeds_the_maximum() {
        let mut lines = LineSplitter::with_max_line_len(16);
        lines.push(b"{\"a\":1}\n{\"long\":\"");
        assert_eq!(drain(&mut lines), [Ok((1, r#"{"a":1}"#.to_owned()))]);
        // No newline yet, but the line already has more than 16 bytes: error now.
        lines.push(b"0123456789");
        let errors = drain(&mut lines);
        assert_eq!(errors.len(), 1);
        let message = errors[0].as_ref().unwrap_err();
        assert_eq!(
            message,
            "line 2 (starting at byte 8 of the stream) is longer than the maximum of 16 bytes; \
             the rest of that line is skipped"
        );
        // The oversize line is not buffered while the rest of it arrives.
        for _ in 0..1000 {
            lines.push(&[b'x'; 1024]);
            assert!(lines.buf.len() <= 16, "buffered {} bytes", lines.buf.len());
            assert!(drain(&mut lines).is_empty(), "reported only once");
        }
        // Decoding continues with the next line; line numbers stay right.
        lines.push(b"\"}\n{\"b\":2}\n");
        assert_eq!(drain(&mut lines), [Ok((3, r#"{"b":2}"#.to_owned()))]);
        lines.finish().unwrap();
    }

    #[test]
    fn oversize_line_within_one_chunk_is_skipped_and_the_next_line_decodes() {
        let mut decoder = SyncLineDecoder::with_max_line_len(30);
        decoder.push(b"{\"token_expires_in\":1}\n{\"token_expires_in\":100000000000000000000000}\n{\"token_expires_in\":3}\n");
        let results: Vec<_> = std::iter::from_fn(|| decoder.next_line()).collect();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[0].as_ref().unwrap(),
            &SyncLine::TokenExpiresIn(TokenExpiresIn(1))
        );
        assert!(matches!(
            results[1],
            Err(ProtocolError::LineTooLong {
                line: 2,
                max: 30,
                ..
            })
        ));
        assert_eq!(
            results[2].as_ref().unwrap(),
            &SyncLine::TokenExpiresIn(TokenExpiresIn(3))
        );
    }

    #[test]
    fn invalid_utf8_is_reported_with_line_and_byte_offset() {
        let mut lines = LineSplitter::new();
        lines.push(b"{\"a\":1}\n{\"b\":\"\xff\"}\n{\"c\":3}\n");
        let got = drain(&mut lines);
        assert_eq!(got[0], Ok((1, r#"{"a":1}"#.to_owned())));
        assert_eq!(
            got[1],
            Err("line 2 is not valid UTF-8: invalid byte sequence at byte 14 of the stream".into())
        );
        assert_eq!(got[2], Ok((3, r#"{"c":3}"#.to_owned())));
    }

    #[test]
    fn invalid_json_line_error_names_line_and_quotes_it() {
        let mut decoder = SyncLineDecoder::new();
        decoder.push(b"{\"token_expires_in\":1}\n{\"data\":{\"bucket\":\"b\"}}\nnot json\n");
        assert!(decoder.next_line().unwrap().is_ok());
        let err = decoder.next_line().unwrap().unwrap_err().to_string();
        assert!(
            err.starts_with("line 2 is not a valid sync line: missing field"),
            "{err}"
        );
        assert!(
            err.contains(r#"(the line starts with "{\"data\":{\"bucket\":\"b\"}}")"#),
            "{err}"
        );
        let err = decoder.next_line().unwrap().unwrap_err().to_string();
        assert!(
            err.starts_with("line 3 is not a valid sync line: expected"),
            "{err}"
        );
        assert!(decoder.next_line().is_none());
    }

    #[test]
    fn long_bad_line_is_quoted_only_in_part() {
        let long = format!("[{}]", "1,".repeat(200) + "1");
        let snippet = snippet(&long);
        assert_eq!(snippet.chars().count(), SNIPPET_CHARS + 1);
        assert!(snippet.ends_with('…'));
    }

    #[test]
    fn unknown_line_type_decodes_to_unknown() {
        let lines =
            SyncLineDecoder::decode_all(b"{\"new_kind\":{\"x\":1}}\n{\"token_expires_in\":9}\n")
                .unwrap();
        assert_eq!(lines[0], SyncLine::Unknown(json!({"new_kind": {"x": 1}})));
        assert_eq!(lines[1], SyncLine::TokenExpiresIn(TokenExpiresIn(9)));
    }

    #[test]
    fn stream_ending_mid_line_is_reported_by_finish() {
        let mut decoder = SyncLineDecoder::new();
        decoder.push(b"{\"token_expires_in\":1}\n{\"checkpoint_complete\":");
        assert!(decoder.next_line().unwrap().is_ok());
        assert!(
            decoder.next_line().is_none(),
            "incomplete line is held back"
        );
        let err = decoder.finish().unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::IncompleteLine {
                line: 2,
                offset: 23,
                len: 23
            }
        ));
        assert_eq!(
            err.to_string(),
            "the stream ended in the middle of line 2: 23 bytes from byte 23 on have no \
             terminating newline"
        );
        assert!(SyncLineDecoder::decode_all(b"{\"token_expires_in\":1}").is_err());
    }

    #[test]
    fn stream_ending_inside_an_oversize_line_is_reported_by_finish() {
        let mut lines = LineSplitter::with_max_line_len(4);
        lines.push(b"{\"a\":1");
        assert!(matches!(
            lines.next_line(),
            Some(Err(ProtocolError::LineTooLong { .. }))
        ));
        assert!(matches!(
            lines.finish(),
            Err(ProtocolError::IncompleteLine {
                line: 1,
                len: 6,
                ..
            })
        ));
    }

    #[test]
    fn finish_accepts_a_clean_end_or_trailing_whitespace() {
        let mut lines = LineSplitter::new();
        lines.finish().unwrap();
        lines.push(b"{\"a\":1}\n\r");
        assert_eq!(drain(&mut lines).len(), 1);
        lines.finish().unwrap();
    }

    #[test]
    fn buffer_is_compacted_when_lines_are_drained_between_pushes() {
        let mut lines = LineSplitter::new();
        for i in 0..1000 {
            lines.push(format!("{{\"n\":{i}}}\n{{\"half").as_bytes());
            lines.push(b"\":1}\n");
            assert_eq!(drain(&mut lines).len(), 2);
            // Only this round's lines are held (until the next push drops them).
            assert!(lines.buf.len() < 32, "buffer grew to {}", lines.buf.len());
        }
        // Pushing without draining keeps every line.
        lines.push(b"{\"a\":1}\n");
        lines.push(b"{\"b\":2}\n");
        assert_eq!(drain(&mut lines).len(), 2);
    }

    #[test]
    fn encode_line_appends_newline_terminated_json_to_a_reused_buffer() {
        let mut buf = Vec::new();
        let a = SyncLine::TokenExpiresIn(TokenExpiresIn(20));
        let b = SyncLine::Unknown(json!({"note": "multi\nline"}));
        encode_line(&a, &mut buf).unwrap();
        encode_line(&b, &mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            "{\"token_expires_in\":20}\n{\"note\":\"multi\\nline\"}\n"
        );
        assert_eq!(SyncLineDecoder::decode_all(&buf).unwrap(), [a, b]);

        let capacity = buf.capacity();
        buf.clear();
        encode_line(&SyncLine::TokenExpiresIn(TokenExpiresIn(1)), &mut buf).unwrap();
        assert_eq!(
            buf.capacity(),
            capacity,
            "no reallocation for a smaller line"
        );
    }

    #[test]
    fn encoded_session_decodes_back_identically() {
        let lines = SyncLineDecoder::decode_all(STREAM.as_bytes()).unwrap();
        let mut buf = Vec::new();
        for line in &lines {
            encode_line(line, &mut buf).unwrap();
        }
        assert_eq!(SyncLineDecoder::decode_all(&buf).unwrap(), lines);
    }
}

//! The `ferry` output plugin's record format: what the plugin writes for each decoded change and
//! what the applier reads back. Pure Rust, no Postgres: both sides share this one definition.
//!
//! Each output row of `pg_logical_slot_peek_binary_changes` holds exactly one record. All integers
//! are little-endian. Strings are a `u32` length and UTF-8 bytes.
//!
//! | tag | record | fields |
//! | --- | --- | --- |
//! | `R` | relation | relid u32, schema str, name str, column count u16, per column: name str, type oid u32, flags u8 (bit 0: replica identity column) |
//! | `I` | insert | relid u32, values |
//! | `U` | update | relid u32, has-old u8, [old values], new values |
//! | `D` | delete | relid u32, old values (identity columns set, others null) |
//! | `T` | truncate | count u16, relid u32 × count |
//! | `M` | message | transactional u8, prefix str, content bytes |
//! | `C` | commit | end lsn u64, commit time i64 (µs since 2000-01-01), xid u32 |
//!
//! `values` is a column count u16 and one value per column of the last `R` record of that
//! relation: tag u8 (0 null, 1 integer i64, 2 real f64, 3 text str, 4 blob bytes, 5 unchanged TOAST
//! value — not sent by Postgres, to be filled from the stored row).

use ferry_rules::Value;

/// A column value as the plugin sends it: a SQLite value, or the marker of an unchanged TOAST value.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValue {
    /// A converted value.
    Value(Value),
    /// An unchanged TOASTed value of an UPDATE: Postgres does not send it.
    UnchangedToast,
}

/// One column of a relation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// The column's type OID.
    pub type_oid: u32,
    /// Whether the column is part of the replica identity (the primary key by default).
    pub is_key: bool,
}

/// A relation's shape, sent before its first change in a decoding session and again after a
/// schema change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    /// The relation's OID.
    pub relid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in attribute order, dropped columns left out.
    pub columns: Vec<ColumnInfo>,
}

/// One record of the plugin's output.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeRecord {
    /// A relation's shape.
    Relation(RelationInfo),
    /// A row inserted.
    Insert {
        /// Relation OID.
        relid: u32,
        /// The new row.
        new: Vec<ColumnValue>,
        /// Whether Postgres stores any of its values out of line (TOAST): only then can a later
        /// update of the row leave a value out as unchanged.
        toasted: bool,
    },
    /// A row updated. `old` is present when the replica identity changed or is FULL.
    Update {
        /// Relation OID.
        relid: u32,
        /// The old row (identity columns, or all columns with REPLICA IDENTITY FULL).
        old: Option<Vec<ColumnValue>>,
        /// The new row.
        new: Vec<ColumnValue>,
        /// Whether Postgres stores any of the new row's values out of line (TOAST).
        toasted: bool,
    },
    /// A row deleted.
    Delete {
        /// Relation OID.
        relid: u32,
        /// The old row (identity columns set).
        old: Vec<ColumnValue>,
    },
    /// Tables truncated.
    Truncate {
        /// Relation OIDs.
        relids: Vec<u32>,
    },
    /// A logical message with a `ferry` prefix.
    Message {
        /// Whether it was emitted transactionally.
        transactional: bool,
        /// Its prefix.
        prefix: String,
        /// Its content.
        content: Vec<u8>,
    },
    /// A source transaction committed.
    Commit {
        /// The end LSN of the commit record: the position to confirm once it is applied.
        end_lsn: u64,
        /// Commit time, µs since 2000-01-01 (Postgres' epoch).
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
}

/// A record that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed change record at byte {offset}: {what}")]
pub struct DecodeError {
    /// Where in the record.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Appends records to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Clears the buffer for the next record, keeping its capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Writes a record tag.
    pub fn tag(&mut self, tag: u8) {
        self.buf.push(tag);
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes an `i64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes length-prefixed bytes.
    pub fn bytes_field(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf
            .extend_from_slice(&v[..v.len().min(u32::MAX as usize)]);
    }

    /// Writes a length-prefixed string.
    pub fn str(&mut self, v: &str) {
        self.bytes_field(v.as_bytes());
    }

    /// Writes a column value.
    pub fn value(&mut self, v: &ColumnValue) {
        match v {
            ColumnValue::UnchangedToast => self.u8(5),
            ColumnValue::Value(v) => self.sql_value(v),
        }
    }

    /// Writes a SQLite value.
    pub fn sql_value(&mut self, v: &Value) {
        match v {
            Value::Null => self.u8(0),
            Value::Integer(i) => {
                self.u8(1);
                self.i64(*i);
            }
            Value::Real(f) => {
                self.u8(2);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => {
                self.u8(3);
                self.str(s);
            }
            Value::Blob(b) => {
                self.u8(4);
                self.bytes_field(b);
            }
        }
    }

    /// Writes a whole record.
    pub fn record(&mut self, record: &ChangeRecord) {
        match record {
            ChangeRecord::Relation(rel) => {
                self.tag(b'R');
                self.u32(rel.relid);
                self.str(&rel.schema);
                self.str(&rel.name);
                self.u16(rel.columns.len() as u16);
                for c in &rel.columns {
                    self.str(&c.name);
                    self.u32(c.type_oid);
                    self.u8(u8::from(c.is_key));
                }
            }
            ChangeRecord::Insert {
                relid,
                new,
                toasted,
            } => {
                self.tag(b'I');
                self.u32(*relid);
                self.u8(u8::from(*toasted));
                self.values(new);
            }
            ChangeRecord::Update {
                relid,
                old,
                new,
                toasted,
            } => {
                self.tag(b'U');
                self.u32(*relid);
                self.u8(u8::from(*toasted));
                match old {
                    Some(old) => {
                        self.u8(1);
                        self.values(old);
                    }
                    None => self.u8(0),
                }
                self.values(new);
            }
            ChangeRecord::Delete { relid, old } => {
                self.tag(b'D');
                self.u32(*relid);
                self.values(old);
            }
            ChangeRecord::Truncate { relids } => {
                self.tag(b'T');
                self.u16(relids.len() as u16);
                for r in relids {
                    self.u32(*r);
                }
            }
            ChangeRecord::Message {
                transactional,
                prefix,
                content,
            } => {
                self.tag(b'M');
                self.u8(u8::from(*transactional));
                self.str(prefix);
                self.bytes_field(content);
            }
            ChangeRecord::Commit {
                end_lsn,
                commit_time,
                xid,
            } => {
                self.tag(b'C');
                self.u64(*end_lsn);
                self.i64(*commit_time);
                self.u32(*xid);
            }
        }
    }

    fn values(&mut self, values: &[ColumnValue]) {
        self.u16(values.len() as u16);
        for v in values {
            self.value(v);
        }
    }
}

/// Reads one record.
pub fn decode(bytes: &[u8]) -> Result<ChangeRecord, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let record = match r.u8()? {
        b'R' => {
            let relid = r.u32()?;
            let schema = r.string()?;
            let name = r.string()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                columns.push(ColumnInfo {
                    name: r.string()?,
                    type_oid: r.u32()?,
                    is_key: r.u8()? & 1 == 1,
                });
            }
            ChangeRecord::Relation(RelationInfo {
                relid,
                schema,
                name,
                columns,
            })
        }
        b'I' => ChangeRecord::Insert {
            relid: r.u32()?,
            toasted: r.u8()? == 1,
            new: r.values()?,
        },
        b'U' => {
            let relid = r.u32()?;
            let toasted = r.u8()? == 1;
            let old = if r.u8()? == 1 {
                Some(r.values()?)
            } else {
                None
            };
            ChangeRecord::Update {
                relid,
                old,
                new: r.values()?,
                toasted,
            }
        }
        b'D' => ChangeRecord::Delete {
            relid: r.u32()?,
            old: r.values()?,
        },
        b'T' => {
            let n = r.u16()?;
            let mut relids = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                relids.push(r.u32()?);
            }
            ChangeRecord::Truncate { relids }
        }
        b'M' => ChangeRecord::Message {
            transactional: r.u8()? == 1,
            prefix: r.string()?,
            content: r.bytes()?.to_vec(),
        },
        b'C' => ChangeRecord::Commit {
            end_lsn: r.u64()?,
            commit_time: r.i64()?,
            xid: r.u32()?,
        },
        _ => {
            return Err(DecodeError {
                offset: 0,
                what: "unknown record tag",
            })
        }
    };
    if r.pos != bytes.len() {
        return Err(DecodeError {
            offset: r.pos,
            what: "trailing bytes after the record",
        });
    }
    Ok(record)
}

/// Encodes a row of values (with column names) as the stored copy of a source row
/// (`ferry.current_rows.data`): a column count u16, then per column a name and a value.
pub fn encode_stored_row(columns: &[(String, Value)]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u16(columns.len() as u16);
    for (name, value) in columns {
        e.str(name);
        e.sql_value(value);
    }
    e.buf
}

/// Decodes a stored row written by [`encode_stored_row`].
pub fn decode_stored_row(bytes: &[u8]) -> Result<Vec<(String, Value)>, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let n = r.u16()?;
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let name = r.string()?;
        let value = match r.value()? {
            ColumnValue::Value(v) => v,
            ColumnValue::UnchangedToast => {
                return Err(DecodeError {
                    offset: r.pos,
                    what: "a stored row cannot hold an unchanged-TOAST marker",
                })
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError {
                offset: self.pos,
                what: "record ends early",
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError {
                offset: at,
                what: "string is not UTF-8",
            })
    }

    fn value(&mut self) -> Result<ColumnValue, DecodeError> {
        let at = self.pos;
        Ok(match self.u8()? {
            0 => ColumnValue::Value(Value::Null),
            1 => ColumnValue::Value(Value::Integer(self.i64()?)),
            2 => ColumnValue::Value(Value::Real(f64::from_le_bytes(self.array()?))),
            3 => ColumnValue::Value(Value::Text(self.string()?)),
            4 => ColumnValue::Value(Value::Blob(self.bytes()?.to_vec())),
            5 => ColumnValue::UnchangedToast,
            _ => {
                return Err(DecodeError {
                    offset: at,
                    what: "unknown value tag",
                })
            }
        })
    }

    fn values(&mut self) -> Result<Vec<ColumnValue>, DecodeError> {
        let n = self.u16()?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            out.push(self.value()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: ChangeRecord) {
        let mut e = Encoder::new();
        e.record(&record);
        assert_eq!(decode(e.bytes()).unwrap(), record);
        // Every strict prefix is an error, never a panic.
        for cut in 0..e.bytes().len() {
            assert!(decode(&e.bytes()[..cut]).is_err());
        }
    }

    #[test]
    fn every_record_round_trips() {
        round_trip(ChangeRecord::Relation(RelationInfo {
            relid: 16384,
            schema: "public".into(),
            name: "todos".into(),
            columns: vec![
                ColumnInfo {
                    name: "id".into(),
                    type_oid: 25,
                    is_key: true,
                },
                ColumnInfo {
                    name: "n".into(),
                    type_oid: 20,
                    is_key: false,
                },
            ],
        }));
        let values = vec![
            ColumnValue::Value(Value::Text("t1".into())),
            ColumnValue::Value(Value::Integer(i64::MIN)),
            ColumnValue::Value(Value::Real(3.5)),
            ColumnValue::Value(Value::Blob(vec![0, 1, 255])),
            ColumnValue::Value(Value::Null),
            ColumnValue::UnchangedToast,
        ];
        round_trip(ChangeRecord::Insert {
            relid: 1,
            new: values.clone(),
            toasted: true,
        });
        round_trip(ChangeRecord::Update {
            relid: 1,
            old: Some(values[..1].to_vec()),
            new: values.clone(),
            toasted: false,
        });
        round_trip(ChangeRecord::Update {
            relid: 1,
            old: None,
            new: values.clone(),
            toasted: true,
        });
        round_trip(ChangeRecord::Delete {
            relid: 1,
            old: values,
        });
        round_trip(ChangeRecord::Truncate {
            relids: vec![1, 2, 3],
        });
        round_trip(ChangeRecord::Message {
            transactional: true,
            prefix: "ferry".into(),
            content: b"{}".to_vec(),
        });
        round_trip(ChangeRecord::Commit {
            end_lsn: 0x1_0000_0000,
            commit_time: 12345,
            xid: 777,
        });
    }

    #[test]
    fn unknown_tags_and_trailing_bytes_are_errors() {
        assert!(decode(b"Z").is_err());
        let mut e = Encoder::new();
        e.record(&ChangeRecord::Truncate { relids: vec![] });
        let mut bytes = e.bytes().to_vec();
        bytes.push(0);
        assert_eq!(
            decode(&bytes).unwrap_err().what,
            "trailing bytes after the record"
        );
    }

    #[test]
    fn stored_rows_round_trip() {
        let row = vec![
            ("id".to_owned(), Value::Text("a".into())),
            ("n".to_owned(), Value::Integer(3)),
        ];
        assert_eq!(decode_stored_row(&encode_stored_row(&row)).unwrap(), row);
    }
}

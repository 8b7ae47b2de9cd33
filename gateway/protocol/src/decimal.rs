//! Serde helpers for 64-bit counters that travel as decimal strings (PROTOCOL.md §3.3: "all op ids
//! are decimal strings"): write checkpoints and checkpoint request ids. Op ids have their own type,
//! [`crate::OpId`], built on the same parser.
//!
//! On output a value is always a JSON string; on input a JSON string of ASCII digits or a
//! non-negative JSON integer is accepted. Crate-private: users see plain `u64` fields.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

use crate::error::ProtocolError;

/// Parses a decimal string of ASCII digits into a `u64`; `what` names the id in the error.
pub(crate) fn parse(what: &'static str, text: &str) -> Result<u64, ProtocolError> {
    let invalid = || ProtocolError::InvalidId {
        what,
        // An id has at most 20 digits; do not copy a huge bogus value into the message.
        value: text.chars().take(40).collect(),
    };
    // `u64::from_str` would also accept a leading '+'; the wire format has digits only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse().map_err(|_| invalid())
}

/// Visitor accepting a decimal string or a non-negative integer.
pub(crate) struct DecimalVisitor {
    /// Which id is being read, for error messages.
    pub(crate) what: &'static str,
}

impl Visitor<'_> for DecimalVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} as a decimal string or non-negative integer",
            self.what
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse(self.what, v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| {
            E::custom(ProtocolError::InvalidId {
                what: self.what,
                value: v.to_string(),
            })
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        Err(E::custom(ProtocolError::InvalidId {
            what: self.what,
            value: v.to_string(),
        }))
    }
}

/// Visitor for an optional id: `null` (or an absent field, via `#[serde(default)]`) is `None`.
struct OptionalDecimalVisitor {
    what: &'static str,
}

impl<'de> Visitor<'de> for OptionalDecimalVisitor {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} as a decimal string, a non-negative integer or null",
            self.what
        )
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(DecimalVisitor { what: self.what })
            .map(Some)
    }
}

/// Serializes a `u64` as a decimal JSON string.
pub(crate) fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Serializes an optional `u64` as a decimal JSON string or `null`.
pub(crate) fn serialize_option<S: Serializer>(
    value: &Option<u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Deserializes a `write_checkpoint` value.
pub(crate) fn write_checkpoint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(DecimalVisitor {
        what: "write_checkpoint",
    })
}

/// Deserializes an optional `write_checkpoint` value (`null` → `None`).
pub(crate) fn optional_write_checkpoint<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptionalDecimalVisitor {
        what: "write_checkpoint",
    })
}

/// Deserializes a `checkpoint_request_id` value.
pub(crate) fn checkpoint_request_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(DecimalVisitor {
        what: "checkpoint_request_id",
    })
}

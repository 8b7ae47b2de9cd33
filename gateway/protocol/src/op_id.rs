//! [`OpId`]: the position of an operation in the op log (PROTOCOL.md §2.1), and its wire form.
//!
//! Op ids come from one global 64-bit sequence. On the wire they are always decimal strings
//! (`"1240"`), because JavaScript clients cannot hold 64-bit integers; on input a JSON integer is
//! accepted too. Negative or non-numeric ids are rejected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decimal::{self, DecimalVisitor};
use crate::error::ProtocolError;

/// An op id: a non-negative 64-bit integer, serialized as a decimal string.
///
/// `OpId(0)` means "nothing yet" (a bucket never downloaded starts `after` 0). Postgres and SQLite
/// store op ids as signed 64-bit integers: convert with `OpId::try_from(i64)` and
/// `i64::try_from(op_id)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

impl OpId {
    /// The op id before every real op: a client that has nothing asks for data `after` it.
    pub const ZERO: OpId = OpId(0);

    /// The raw value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for OpId {
    type Err = ProtocolError;

    /// Parses the wire form: ASCII digits only (no sign, no spaces).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decimal::parse("op id", s).map(OpId)
    }
}

impl From<u64> for OpId {
    fn from(value: u64) -> Self {
        OpId(value)
    }
}

impl From<OpId> for u64 {
    fn from(value: OpId) -> Self {
        value.0
    }
}

impl TryFrom<i64> for OpId {
    type Error = ProtocolError;

    /// Converts a database value; negative values are rejected.
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .map(OpId)
            .map_err(|_| ProtocolError::InvalidId {
                what: "op id",
                value: value.to_string(),
            })
    }
}

impl TryFrom<OpId> for i64 {
    type Error = ProtocolError;

    /// Converts to a database value; ids above `i64::MAX` are rejected.
    fn try_from(value: OpId) -> Result<Self, Self::Error> {
        i64::try_from(value.0).map_err(|_| ProtocolError::OpIdTooLarge { value: value.0 })
    }
}

impl Serialize for OpId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        decimal::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for OpId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DecimalVisitor { what: "op id" })
            .map(OpId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_id_serializes_as_decimal_string() {
        assert_eq!(serde_json::to_string(&OpId(1240)).unwrap(), r#""1240""#);
        assert_eq!(
            serde_json::to_string(&OpId(u64::MAX)).unwrap(),
            r#""18446744073709551615""#
        );
    }

    #[test]
    fn op_id_accepts_strings_and_integers() {
        assert_eq!(
            serde_json::from_str::<OpId>(r#""1240""#).unwrap(),
            OpId(1240)
        );
        assert_eq!(serde_json::from_str::<OpId>("1240").unwrap(), OpId(1240));
        assert_eq!(serde_json::from_str::<OpId>(r#""0""#).unwrap(), OpId::ZERO);
        assert_eq!(
            serde_json::from_str::<OpId>(r#""18446744073709551615""#).unwrap(),
            OpId(u64::MAX)
        );
    }

    #[test]
    fn op_id_rejects_negative_values_with_clear_error() {
        let err = serde_json::from_str::<OpId>("-5").unwrap_err().to_string();
        assert!(err.contains("invalid op id \"-5\""), "{err}");
        let err = serde_json::from_str::<OpId>(r#""-5""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid op id \"-5\""), "{err}");
    }

    #[test]
    fn op_id_rejects_non_numeric_and_malformed_strings() {
        for bad in [
            r#""""#,
            r#""abc""#,
            r#""+5""#,
            r#"" 5""#,
            r#""1.5""#,
            r#""18446744073709551616""#,
            "1.5",
            "true",
            "null",
        ] {
            assert!(serde_json::from_str::<OpId>(bad).is_err(), "{bad} accepted");
        }
        let err = "12x".parse::<OpId>().unwrap_err().to_string();
        assert!(err.starts_with("invalid op id \"12x\""), "{err}");
    }

    #[test]
    fn op_id_converts_to_and_from_signed_database_values() {
        assert_eq!(OpId::try_from(42i64).unwrap(), OpId(42));
        assert!(OpId::try_from(-1i64).is_err());
        assert_eq!(i64::try_from(OpId(42)).unwrap(), 42);
        let err = i64::try_from(OpId(u64::MAX)).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn op_id_display_and_parse_round_trip() {
        let id = OpId(987_654_321);
        assert_eq!(id.to_string().parse::<OpId>().unwrap(), id);
    }
}

//! [`BucketPriority`]: a bucket's sync priority, 0 (first) to 3 (last, the default).
//!
//! Buckets are downloaded in ascending priority number; a `partial_checkpoint_complete` line says
//! that all buckets with a priority number `<=` its priority are complete (PROTOCOL.md §3.3, §3.4).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ProtocolError;

/// A bucket priority in `0..=3`; a lower number syncs earlier. Serialized as a JSON integer.
///
/// The derived ordering is numeric, so `HIGHEST < LOWEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketPriority(u8);

impl BucketPriority {
    /// Priority 0: synced before everything else.
    pub const HIGHEST: BucketPriority = BucketPriority(0);
    /// Priority 3: synced last; the priority of buckets that do not declare one.
    pub const LOWEST: BucketPriority = BucketPriority(3);

    /// Validates a priority number.
    pub fn new(value: u8) -> Result<BucketPriority, ProtocolError> {
        if value <= 3 {
            Ok(BucketPriority(value))
        } else {
            Err(ProtocolError::InvalidPriority {
                value: i128::from(value),
            })
        }
    }

    /// The priority number, `0..=3`.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for BucketPriority {
    /// [`BucketPriority::LOWEST`] (3), as for buckets without a declared priority.
    fn default() -> Self {
        BucketPriority::LOWEST
    }
}

impl TryFrom<u8> for BucketPriority {
    type Error = ProtocolError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        BucketPriority::new(value)
    }
}

impl From<BucketPriority> for u8 {
    fn from(value: BucketPriority) -> Self {
        value.0
    }
}

impl fmt::Display for BucketPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for BucketPriority {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for BucketPriority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PriorityVisitor;

        impl Visitor<'_> for PriorityVisitor {
            type Value = BucketPriority;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bucket priority: an integer in 0..=3")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BucketPriority, E> {
                u8::try_from(v)
                    .map_err(|_| ProtocolError::InvalidPriority {
                        value: i128::from(v),
                    })
                    .and_then(BucketPriority::new)
                    .map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BucketPriority, E> {
                u8::try_from(v)
                    .map_err(|_| ProtocolError::InvalidPriority {
                        value: i128::from(v),
                    })
                    .and_then(BucketPriority::new)
                    .map_err(E::custom)
            }
        }

        deserializer.deserialize_any(PriorityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_accepts_zero_to_three() {
        for n in 0..=3u8 {
            let p: BucketPriority = serde_json::from_str(&n.to_string()).unwrap();
            assert_eq!(p.get(), n);
            assert_eq!(serde_json::to_string(&p).unwrap(), n.to_string());
        }
    }

    #[test]
    fn priority_rejects_out_of_range_values_with_clear_error() {
        let err = serde_json::from_str::<BucketPriority>("4")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bucket priority 4 is out of range"), "{err}");
        assert!(serde_json::from_str::<BucketPriority>("-1").is_err());
        assert!(serde_json::from_str::<BucketPriority>("300").is_err());
        assert!(serde_json::from_str::<BucketPriority>(r#""1""#).is_err());
        assert!(BucketPriority::new(9).is_err());
    }

    #[test]
    fn priority_defaults_to_lowest_and_orders_numerically() {
        assert_eq!(BucketPriority::default().get(), 3);
        assert!(BucketPriority::HIGHEST < BucketPriority::LOWEST);
    }
}

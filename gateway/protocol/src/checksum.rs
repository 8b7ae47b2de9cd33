//! [`Checksum`]: a 32-bit op or bucket checksum (PROTOCOL.md §2.3) and its wire form.
//!
//! Bucket checksums are wrapping (mod 2^32) sums of op checksums. ferry emits them as unsigned
//! JSON integers; on input any integer in `[-2^31, 2^32-1]` is accepted and taken mod 2^32,
//! because the PowerSync service sends signed values for some buckets. Computing an op's checksum
//! from its data (SHA-256) is not done here: this crate holds the wire format only.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ProtocolError;

/// A 32-bit checksum. Arithmetic on it wraps (mod 2^32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Checksum(pub u32);

impl Checksum {
    /// The checksum of an empty bucket.
    pub const ZERO: Checksum = Checksum(0);

    /// The unsigned value, as emitted on the wire.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The same bits read as a signed integer, as the PowerSync service sometimes sends them.
    pub fn as_signed(self) -> i32 {
        self.0 as i32
    }

    /// `self + other` mod 2^32.
    #[must_use]
    pub fn wrapping_add(self, other: Checksum) -> Checksum {
        Checksum(self.0.wrapping_add(other.0))
    }

    /// `self - other` mod 2^32 (undoes [`Checksum::wrapping_add`]).
    #[must_use]
    pub fn wrapping_sub(self, other: Checksum) -> Checksum {
        Checksum(self.0.wrapping_sub(other.0))
    }

    /// Accepts any integer in `[-2^31, 2^32-1]`, negative values taken mod 2^32 (so `-1` is
    /// `0xFFFF_FFFF`); e.g. a value read from a Postgres `bigint` column.
    pub fn from_wire(value: i64) -> Result<Checksum, ProtocolError> {
        if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&value) {
            // Truncation to the low 32 bits is exactly "mod 2^32" for this range.
            Ok(Checksum(value as u32))
        } else {
            Err(ProtocolError::ChecksumOutOfRange {
                value: i128::from(value),
            })
        }
    }
}

impl From<u32> for Checksum {
    fn from(value: u32) -> Self {
        Checksum(value)
    }
}

impl From<i32> for Checksum {
    /// Reinterprets the bits (`-1` → `0xFFFF_FFFF`).
    fn from(value: i32) -> Self {
        Checksum(value as u32)
    }
}

impl TryFrom<i64> for Checksum {
    type Error = ProtocolError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Checksum::from_wire(value)
    }
}

impl Add for Checksum {
    type Output = Checksum;

    /// Wrapping addition.
    fn add(self, rhs: Checksum) -> Checksum {
        self.wrapping_add(rhs)
    }
}

impl AddAssign for Checksum {
    /// Wrapping addition.
    fn add_assign(&mut self, rhs: Checksum) {
        *self = self.wrapping_add(rhs);
    }
}

impl Sum for Checksum {
    /// Wrapping sum.
    fn sum<I: Iterator<Item = Checksum>>(iter: I) -> Checksum {
        iter.fold(Checksum::ZERO, Checksum::wrapping_add)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChecksumVisitor;

        impl Visitor<'_> for ChecksumVisitor {
            type Value = Checksum;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a checksum: an integer in [-2147483648, 4294967295]")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Checksum, E> {
                Checksum::from_wire(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Checksum, E> {
                u32::try_from(v).map(Checksum).map_err(|_| {
                    E::custom(ProtocolError::ChecksumOutOfRange {
                        value: i128::from(v),
                    })
                })
            }
        }

        deserializer.deserialize_any(ChecksumVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_accepts_negative_signed_values() {
        assert_eq!(
            serde_json::from_str::<Checksum>("-1").unwrap(),
            Checksum(u32::MAX)
        );
        assert_eq!(
            serde_json::from_str::<Checksum>("-2147483648").unwrap(),
            Checksum(0x8000_0000)
        );
        // -1380085261 is 2914882035 read as signed.
        assert_eq!(
            serde_json::from_str::<Checksum>("-1380085261").unwrap(),
            Checksum(2_914_882_035)
        );
    }

    #[test]
    fn checksum_accepts_unsigned_values_up_to_u32_max() {
        assert_eq!(serde_json::from_str::<Checksum>("0").unwrap(), Checksum(0));
        assert_eq!(
            serde_json::from_str::<Checksum>("4294967295").unwrap(),
            Checksum(u32::MAX)
        );
    }

    #[test]
    fn checksum_rejects_values_outside_the_32_bit_range() {
        for bad in ["4294967296", "-2147483649", "1.5", r#""12""#, "null"] {
            assert!(
                serde_json::from_str::<Checksum>(bad).is_err(),
                "{bad} accepted"
            );
        }
        let err = serde_json::from_str::<Checksum>("4294967296")
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum 4294967296 is out of range"), "{err}");
    }

    #[test]
    fn checksum_is_emitted_unsigned() {
        assert_eq!(
            serde_json::to_string(&Checksum::from(-1i32)).unwrap(),
            "4294967295"
        );
    }

    #[test]
    fn checksum_addition_wraps_mod_2_pow_32() {
        let a = Checksum(u32::MAX);
        let b = Checksum(2);
        assert_eq!(a + b, Checksum(1));
        assert_eq!(a.wrapping_add(b).wrapping_sub(b), a);
        let mut c = Checksum(4_000_000_000);
        c += Checksum(500_000_000);
        assert_eq!(c, Checksum(205_032_704));
        let total: Checksum = [Checksum(u32::MAX), Checksum(1), Checksum(7)]
            .into_iter()
            .sum();
        assert_eq!(total, Checksum(7));
    }

    #[test]
    fn checksum_from_wire_maps_signed_database_values() {
        assert_eq!(Checksum::from_wire(-1).unwrap(), Checksum(u32::MAX));
        assert_eq!(Checksum(u32::MAX).as_signed(), -1);
        assert!(Checksum::from_wire(1 << 32).is_err());
    }
}

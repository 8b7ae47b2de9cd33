//! Operation checksums (PROTOCOL.md §2.3) and ferry's subkey derivation (§2.1).
//!
//! Holds [`put_checksum`], [`remove_checksum`], [`add_checksums`], [`checksum_from_wire`] and
//! [`subkey`]. Bucket-level running sums are kept by the extension; this module only defines the
//! arithmetic so that every component computes the same numbers.

use sha2::{Digest, Sha256};

/// First four bytes of a SHA-256 digest, read as a little-endian u32.
fn digest_u32(hasher: Sha256) -> u32 {
    let digest = hasher.finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The checksum of a PUT: SHA-256 of `"put." + object_type + "." + object_id + "." + data`
/// (`data` exactly the row JSON string stored and sent), first 4 bytes little-endian.
pub fn put_checksum(object_type: &str, object_id: &str, data: &str) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"put.");
    hasher.update(object_type.as_bytes());
    hasher.update(b".");
    hasher.update(object_id.as_bytes());
    hasher.update(b".");
    hasher.update(data.as_bytes());
    digest_u32(hasher)
}

/// The checksum of a REMOVE: SHA-256 of `"delete." + subkey`, first 4 bytes little-endian.
pub fn remove_checksum(subkey: &str) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"delete.");
    hasher.update(subkey.as_bytes());
    digest_u32(hasher)
}

/// Sum of two checksums, wrapping mod 2^32 (bucket checksums are such sums).
pub fn add_checksums(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

/// A checksum received on the wire, where PowerSync may send signed values (`-1` for
/// `0xFFFFFFFF`), read mod 2^32.
pub fn checksum_from_wire(value: i64) -> u32 {
    value as u32
}

/// ferry's stable subkey of a source row (PROTOCOL.md §2.1 allows any stable derivation): the
/// lower-case hex of the first 16 bytes of SHA-256(`source_table` + `"\0"` + `replica_id_json`),
/// 32 characters. `source_table` is the source table's stable identifier and `replica_id_json` the
/// serialized replica identity of the row; the NUL separator keeps `("ab", "c")` and `("a", "bc")`
/// apart.
pub fn subkey(source_table: &str, replica_id_json: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source_table.as_bytes());
    hasher.update([0u8]);
    hasher.update(replica_id_json.as_bytes());
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for &b in &digest[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First 4 bytes (LE) of SHA-256 of `text`, computed independently of the functions above.
    fn reference(text: &str) -> u32 {
        let digest = Sha256::digest(text.as_bytes());
        u32::from(digest[0])
            | (u32::from(digest[1]) << 8)
            | (u32::from(digest[2]) << 16)
            | (u32::from(digest[3]) << 24)
    }

    #[test]
    fn checksums_hash_the_documented_strings() {
        let data = r#"{"id":"t1","description":"x","n":1.0}"#;
        assert_eq!(
            put_checksum("todos", "t1", data),
            reference(&format!("put.todos.t1.{data}"))
        );
        assert_eq!(remove_checksum("abc"), reference("delete.abc"));
        // SHA-256("delete.") is fixed; pin it so a change of encoding is caught.
        assert_eq!(remove_checksum(""), reference("delete."));
        assert_ne!(
            put_checksum("a.b", "c", "d"),
            put_checksum("a", "b.c", "d.x")
        );
    }

    #[test]
    fn sums_wrap_and_wire_values_read_mod_2_pow_32() {
        assert_eq!(add_checksums(0xFFFF_FFFF, 2), 1);
        assert_eq!(checksum_from_wire(-1), 0xFFFF_FFFF);
        assert_eq!(checksum_from_wire(4_294_967_295), 0xFFFF_FFFF);
        assert_eq!(checksum_from_wire(5), 5);
    }

    #[test]
    fn subkeys_are_stable_and_separate_their_inputs() {
        let key = subkey("public.todos", "[\"t1\"]");
        assert_eq!(key.len(), 32);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(key, subkey("public.todos", "[\"t1\"]"));
        assert_ne!(subkey("ab", "c"), subkey("a", "bc"));
    }
}

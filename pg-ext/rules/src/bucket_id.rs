//! Bucket ids (PROTOCOL.md §1.6): `name[params…]`, or `<version>#name[params…]` with versioned
//! bucket ids.
//!
//! Holds [`bucket_id`] (the one place bucket ids are built) and [`parse_bucket_id`] (for tests and
//! debugging; bucket ids are opaque everywhere else). The parameter array itself is serialized by
//! [`bucket_parameters_json`](crate::row_json::bucket_parameters_json).
//!
//! Bucket ids must be byte-identical across servers and restarts: a change here forces every
//! client to re-download everything.

use crate::row_json::write_bucket_parameters_json;
use crate::value::Value;

/// The bucket id of definition (or stream variant) `definition` with parameter values `params`
/// (in declaration order): `by_user["u1"]`, or with `version` `Some(3)`: `3#by_user["u1"]`.
/// `None` when a parameter is a BLOB (no bucket, §1.6).
pub fn bucket_id(version: Option<u64>, definition: &str, params: &[Value]) -> Option<String> {
    let mut out = String::with_capacity(definition.len() + 24 + params.len() * 8);
    if let Some(version) = version {
        use std::fmt::Write as _;
        let _ = write!(out, "{version}#");
    }
    out.push_str(definition);
    write_bucket_parameters_json(&mut out, params)?;
    Some(out)
}

/// Splits a bucket id into `(version, definition, parameters)`.
///
/// The parameter array is the shortest suffix that is a JSON array of scalars; the version is a
/// leading `<digits>#`. So a definition name that itself looks like `12#name` reads back as
/// versioned — names like that are ambiguous in the format itself. `None` if there is no
/// parameter array.
pub fn parse_bucket_id(id: &str) -> Option<(Option<u64>, String, Vec<serde_json::Value>)> {
    let (prefix, params) = id.match_indices('[').find_map(|(i, _)| {
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&id[i..]).ok()?;
        parsed
            .iter()
            .all(|v| !v.is_array() && !v.is_object())
            .then(|| (&id[..i], parsed))
    })?;
    let versioned = prefix.split_once('#').and_then(|(digits, name)| {
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        all_digits
            .then(|| digits.parse::<u64>().ok())
            .flatten()
            .map(|v| (v, name))
    });
    Some(match versioned {
        Some((version, name)) => (Some(version), name.to_owned(), params),
        None => (None, prefix.to_owned(), params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_protocol_examples() {
        assert_eq!(bucket_id(None, "global", &[]).as_deref(), Some("global[]"));
        assert_eq!(
            bucket_id(None, "by_user", &[Value::Text("u_123".into())]).as_deref(),
            Some("by_user[\"u_123\"]")
        );
        assert_eq!(
            bucket_id(
                None,
                "by_org_region",
                &[Value::Integer(42), Value::Text("eu".into())]
            )
            .as_deref(),
            Some("by_org_region[42,\"eu\"]")
        );
        assert_eq!(
            bucket_id(Some(1), "stream|0", &[]).as_deref(),
            Some("1#stream|0[]")
        );
        assert_eq!(
            bucket_id(Some(1), "stream|0", &[Value::Text("abc".into())]).as_deref(),
            Some("1#stream|0[\"abc\"]")
        );
        assert_eq!(
            bucket_id(Some(7), "b", &[Value::Real(1.0), Value::Integer(1)]).as_deref(),
            Some("7#b[1,1]")
        );
        assert_eq!(bucket_id(None, "b", &[Value::Blob(vec![1])]), None);
    }

    #[test]
    fn parse_reads_back_tricky_names() {
        assert_eq!(
            parse_bucket_id("12#a[1][\"x\",null]"),
            Some((
                Some(12),
                "a[1]".to_owned(),
                vec![serde_json::json!("x"), serde_json::Value::Null]
            ))
        );
        assert_eq!(
            parse_bucket_id("q[[]"),
            Some((None, "q[".to_owned(), vec![]))
        );
        assert_eq!(
            parse_bucket_id("x#y[]"),
            Some((None, "x#y".to_owned(), vec![]))
        );
        assert_eq!(parse_bucket_id("no_params"), None);
    }
}

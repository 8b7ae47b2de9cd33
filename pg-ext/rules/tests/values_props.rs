//! Property tests of the value layer: nothing panics on arbitrary values, bucket ids round-trip
//! through `parse_bucket_id`, row JSON always parses back with its key order and values, number
//! formatting round-trips, and comparison is a consistent total order.

use std::cmp::Ordering;

use ferry_rules::cast::{cast, to_integer, to_numeric, to_real, CastType};
use ferry_rules::functions::{Function, FunctionOptions};
use ferry_rules::json_path;
use ferry_rules::operators::{self, BinaryOp, UnaryOp};
use ferry_rules::pg_convert::{convert, PgType, Precision, ValueOptions};
use ferry_rules::row_json::js_number_string;
use ferry_rules::{bucket_id, parse_bucket_id, row_json, Value};
use proptest::prelude::*;

/// Texts that look like what the functions parse: numbers, dates, JSON, hex, UUIDs.
fn interesting_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ 0-9+\\-.eE]{0,12}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}(:[0-9]{2})?)?",
        "[+-]?[0-9]{1,3}(\\.[0-9])? (day|hour|minute|second|month|year)s?",
        "[\\[\\]{}\",:0-9a-z.$#\\- ]{0,30}",
        "\\$(\\.[a-z]{1,3}|\\[#?-?[0-9]{1,2}\\]){0,4}",
        "(01|00)[0-9a-f]{0,90}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "\\{([a-z0-9\"\\\\,{}]|NULL){0,12}\\}",
        Just("{\"a\":{\"b\":[1,2.5,\"x\",null,true]},\"n\":null}".to_owned()),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1.0),
            Just(0.5)
        ]
        .prop_map(Value::Real),
        interesting_text().prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Blob),
    ]
}

/// Values that may appear in a bucket id (no BLOB).
fn parameter_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::Real),
        any::<String>().prop_map(Value::Text),
    ]
}

const BINARY_OPS: [BinaryOp; 19] = [
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
    BinaryOp::Is,
    BinaryOp::IsNot,
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Concat,
    BinaryOp::And,
    BinaryOp::Or,
    BinaryOp::In,
    BinaryOp::Overlap,
    BinaryOp::JsonArrow,
    BinaryOp::JsonArrow2,
];

fn all_pg_types() -> Vec<PgType> {
    use PgType::*;
    let scalars = vec![
        Bool,
        Int2,
        Int4,
        Int8,
        Oid,
        Float4,
        Float8,
        Numeric,
        Money,
        Text,
        Bytea,
        Date,
        Time,
        TimeTz,
        Timestamp,
        Timestamptz,
        Json,
        Jsonb,
        Uuid,
        PgLsn,
        Interval,
        Other,
    ];
    let arrays: Vec<PgType> = scalars.iter().map(|t| Array(Box::new(t.clone()))).collect();
    scalars.into_iter().chain(arrays).collect()
}

proptest! {
    #[test]
    fn operators_never_panic(a in any_value(), b in any_value()) {
        for op in BINARY_OPS {
            for fixed in [false, true] {
                let _ = op.eval(&a, &b, fixed);
            }
        }
        for op in [UnaryOp::Not, UnaryOp::IsNull, UnaryOp::IsNotNull, UnaryOp::Negate, UnaryOp::Plus] {
            let _ = op.eval(&a);
        }
        for ty in [CastType::Text, CastType::Numeric, CastType::Integer, CastType::Real, CastType::Blob] {
            let _ = cast(&a, ty);
        }
        let _ = operators::truthy(&a);
    }

    #[test]
    fn functions_never_panic(args in proptest::collection::vec(any_value(), 0..5)) {
        for function in Function::ALL {
            for fixed in [false, true] {
                let options = FunctionOptions { fixed_json_extract: fixed };
                let _ = function.call(&args, options);
                // Also with exactly the minimum number of arguments.
                let (min, _) = function.arity();
                if args.len() >= min {
                    let _ = function.call(&args[..min], options);
                }
            }
        }
        if let Some(first) = args.first() {
            let _ = json_path::json_each(first, true);
        }
    }

    #[test]
    fn date_functions_never_panic(value in any_value(), modifiers in proptest::collection::vec(interesting_text(), 0..4)) {
        let mut args = vec![value];
        args.extend(modifiers.into_iter().map(Value::Text));
        let _ = Function::Datetime.call(&args, FunctionOptions::default());
        let _ = Function::Unixepoch.call(&args, FunctionOptions::default());
    }

    #[test]
    fn pg_conversions_never_panic(text in interesting_text(), iso in any::<bool>()) {
        for precision in [Precision::Seconds, Precision::Milliseconds, Precision::Microseconds] {
            let options = ValueOptions { timestamps_iso8601: iso, timestamp_max_precision: precision };
            for ty in all_pg_types() {
                let value = convert(&ty, &text, &options);
                if let (PgType::Array(element), Value::Text(json)) = (&ty, &value) {
                    // An array that converted (not the raw-text fallback) is valid JSON, unless
                    // its elements are json/jsonb, which are embedded as Postgres sent them.
                    let raw_fallback = json == &text;
                    let embeds_json = matches!(**element, PgType::Json | PgType::Jsonb);
                    if !raw_fallback && !embeds_json {
                        prop_assert!(serde_json::from_str::<serde_json::Value>(json).is_ok(), "{json}");
                    }
                }
            }
        }
    }

    #[test]
    fn parsing_hostile_text_never_panics(text in interesting_text()) {
        let _ = json_path::parse(&text);
        let _ = parse_bucket_id(&text);
        for mode in [json_path::PathMode::Strict, json_path::PathMode::FixedArrow, json_path::PathMode::LegacyArrow] {
            let _ = json_path::JsonPath::parse(&text, mode);
        }
    }

    #[test]
    fn bucket_ids_round_trip(
        version in proptest::option::of(any::<u64>()),
        name in "[a-zA-Z_|0-9.\\-]{1,24}",
        params in proptest::collection::vec(parameter_value(), 0..5),
    ) {
        let id = bucket_id(version, &name, &params).unwrap();
        let (parsed_version, parsed_name, parsed_params) = parse_bucket_id(&id).unwrap();
        prop_assert_eq!(parsed_version, version);
        prop_assert_eq!(parsed_name, name);
        prop_assert_eq!(parsed_params.len(), params.len());
        for (json, value) in parsed_params.iter().zip(&params) {
            match value {
                Value::Null => prop_assert!(json.is_null()),
                Value::Integer(v) => prop_assert_eq!(json.as_i64(), Some(*v)),
                Value::Real(v) => prop_assert!(json.as_f64().is_some_and(|x| same_float(x, *v))),
                Value::Text(s) => prop_assert_eq!(json.as_str(), Some(s.as_str())),
                Value::Blob(_) => unreachable!(),
            }
        }
    }

    #[test]
    fn row_json_parses_back_in_order(columns in proptest::collection::vec((any::<String>(), any_value()), 0..8)) {
        let mut seen = std::collections::HashSet::new();
        let columns: Vec<(String, Value)> =
            columns.into_iter().filter(|(name, _)| seen.insert(name.clone())).collect();
        let json = row_json(columns.iter().map(|(k, v)| (k.as_str(), v)));
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)
            .map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        let expected: Vec<&(String, Value)> =
            columns.iter().filter(|(_, v)| !matches!(v, Value::Blob(_))).collect();
        prop_assert_eq!(parsed.len(), expected.len());
        for ((key, json_value), (name, value)) in parsed.iter().zip(expected) {
            prop_assert_eq!(key, name);
            match value {
                Value::Null => prop_assert!(json_value.is_null()),
                Value::Integer(v) => prop_assert_eq!(json_value.as_i64(), Some(*v)),
                Value::Real(v) if v.is_finite() => {
                    // Still a float on the other side: integral values carry `.0` or an exponent.
                    prop_assert!(json_value.is_f64(), "{} lost its REAL type", json_value);
                    prop_assert!(json_value.as_f64().is_some_and(|x| same_float(x, *v)));
                }
                Value::Real(_) => prop_assert!(json_value.is_null()),
                Value::Text(s) => prop_assert_eq!(json_value.as_str(), Some(s.as_str())),
                Value::Blob(_) => unreachable!(),
            }
        }
    }

    #[test]
    fn numbers_round_trip_through_text(x in any::<f64>(), n in any::<i64>()) {
        if x.is_finite() {
            let text = js_number_string(x);
            prop_assert_eq!(text.parse::<f64>().ok(), Some(x), "{}", text);
            prop_assert_eq!(to_real(&Value::Text(text)), Some(x));
        }
        prop_assert_eq!(to_integer(&Value::Text(n.to_string())), Some(n));
        prop_assert_eq!(to_numeric(&Value::Text(format!("  {n}xyz"))), Value::Integer(n));
    }

    #[test]
    fn comparison_is_a_consistent_order(a in any_value(), b in any_value(), c in any_value()) {
        let both_blobs = |x: &Value, y: &Value| matches!((x, y), (Value::Blob(_), Value::Blob(_)));
        if !both_blobs(&a, &b) {
            let ab = operators::compare(&a, &b).unwrap();
            let ba = operators::compare(&b, &a).unwrap();
            prop_assert_eq!(ab, ba.reverse());
            if !both_blobs(&b, &c) && !both_blobs(&a, &c) {
                let bc = operators::compare(&b, &c).unwrap();
                let ac = operators::compare(&a, &c).unwrap();
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    prop_assert_ne!(ac, Ordering::Greater, "{:?} <= {:?} <= {:?}", a, b, c);
                }
            }
        }
    }

    #[test]
    fn json_written_by_serde_parses_and_rewrites_equivalently(value in arbitrary_json()) {
        let text = serde_json::to_string(&value).unwrap();
        let parsed = json_path::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let rewritten: serde_json::Value = serde_json::from_str(&parsed.to_json_string()).unwrap();
        prop_assert!(json_equivalent(&value, &rewritten), "{} vs {}", text, rewritten);
    }
}

/// JSON documents without duplicate keys (serde_json maps cannot hold them).
fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::vec(("[a-z0-9]{0,4}", inner), 0..6)
                .prop_map(|entries| { serde_json::Value::Object(entries.into_iter().collect()) }),
        ]
    })
}

/// Equal floats, allowing the last-bit error of serde_json's default (not `float_roundtrip`)
/// number parser; ferry's own formatting round-trips exactly (`numbers_round_trip_through_text`).
fn same_float(a: f64, b: f64) -> bool {
    a == b || (a.signum() == b.signum() && a.to_bits().abs_diff(b.to_bits()) <= 2)
}

/// Equal as JSON values: numbers by value, objects regardless of key order.
fn json_equivalent(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => same_float(x, y),
                _ => false,
            },
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equivalent(x, y))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}

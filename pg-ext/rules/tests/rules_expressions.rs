//! Golden cases for every operator, function and conversion of PROTOCOL.md §1.5, written as SQL in
//! a data query and evaluated end to end (parse → compile → evaluate → row JSON). Each case runs
//! on row columns (evaluated per row) and, where it has no columns, as a constant (folded once at
//! compile time).

use ferry_rules::{compile, Row, TableRef, Value};
use serde_json::{json, Value as Json};

/// The row every expression is evaluated against.
fn sample_row() -> Row {
    [
        ("id", Value::from("r1")),
        ("i", Value::Integer(7)),
        ("big", Value::Integer(9_007_199_254_740_993)),
        ("r", Value::Real(2.5)),
        ("three", Value::Real(3.0)),
        ("s", Value::from("abc")),
        ("num", Value::from("12abc")),
        ("n", Value::Null),
        ("b", Value::Blob(vec![0xde, 0xad])),
        ("arr", Value::from(r#"[1,2,"x"]"#)),
        (
            "j",
            Value::from(r#"{"a":{"b":[10,20]},"t":true,"z":null,"a.b":5,"s":"str"}"#),
        ),
        ("ts", Value::from("2024-01-02 03:04:05")),
        ("uuid", Value::from("0b6a1c9e-1f2d-4c1e-9d7a-3f1e8b2c4d5e")),
        (
            "point",
            Value::from("0101000000000000000000F03F0000000000000040"),
        ),
    ]
    .into_iter()
    .collect()
}

/// Evaluates `expr` as output column `v`; `None` when `v` is absent from the row JSON (a BLOB).
fn evaluate(expr: &str, edition: u8) -> Option<Json> {
    let yaml = format!(
        "config:\n  edition: {edition}\nbucket_definitions:\n  g:\n    data:\n      - \"SELECT id, {} AS v FROM t\"\n",
        expr.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let plan = match compile(&yaml) {
        Ok(c) => c.plan,
        Err(e) => panic!("{expr}: {e}"),
    };
    let evaluation = plan.evaluate_row(&TableRef::public("t"), &sample_row(), None);
    assert!(
        evaluation.errors.is_empty(),
        "{expr}: {:?}",
        evaluation.errors
    );
    let data: Json = serde_json::from_str(&evaluation.outputs[0].data).unwrap();
    data.get("v").cloned()
}

fn check(cases: &[(&str, Json)]) {
    let mut failures = Vec::new();
    for (expr, expected) in cases {
        let got = evaluate(expr, 1);
        if got.as_ref() != Some(expected) {
            failures.push(format!("{expr}: expected {expected}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn comparisons_follow_sqlite_null_and_type_ordering() {
    check(&[
        ("i = 7", json!(1)),
        ("i = 7.0", json!(1)),
        ("i != 7", json!(0)),
        ("i <> 8", json!(1)),
        ("i < r", json!(0)),
        ("r <= 2.5", json!(1)),
        ("s > 'abb'", json!(1)),
        ("s >= 'abd'", json!(0)),
        ("i < s", json!(1)),
        ("s < b", json!(1)),
        ("n < i", Json::Null),
        ("n = n", Json::Null),
        ("i = n", Json::Null),
        ("NULL = NULL", Json::Null),
        ("1 < 'a'", json!(1)),
        ("big > 9007199254740992.0", json!(1)),
    ]);
}

#[test]
fn arithmetic_keeps_integers_and_divides_by_zero_to_null() {
    check(&[
        ("i + 1", json!(8)),
        ("i - r", json!(4.5)),
        ("i * 2", json!(14)),
        ("i / 2", json!(3)),
        ("i / 2.0", json!(3.5)),
        ("i / 0", Json::Null),
        ("r * 2", json!(5.0)),
        ("num + 1", json!(13)),
        ("n + 1", Json::Null),
        ("-i", json!(-7)),
        ("+i", json!(7)),
        ("-1.5", json!(-1.5)),
        ("big + 0", json!(9_007_199_254_740_993i64)),
        ("1 + 2 * 3", json!(7)),
        ("(1 + 2) * 3", json!(9)),
    ]);
}

#[test]
fn logic_and_null_tests() {
    check(&[
        ("i AND s", json!(0)),
        ("i AND num", json!(1)),
        ("n AND 1", json!(0)),
        ("n OR 1", json!(1)),
        ("0 OR 0", json!(0)),
        ("NOT i", json!(0)),
        ("NOT 0", json!(1)),
        ("NOT n", json!(1)),
        ("n IS NULL", json!(1)),
        ("i IS NULL", json!(0)),
        ("n IS NOT NULL", json!(0)),
        ("s IS NOT NULL", json!(1)),
        ("TRUE", json!(1)),
        ("FALSE", json!(0)),
    ]);
}

#[test]
fn concatenation_and_text_conversion() {
    check(&[
        ("s || i", json!("abc7")),
        ("s || r", json!("abc2.5")),
        ("s || three", json!("abc3")),
        ("s || n", Json::Null),
        ("'a' || 'b' || 'c'", json!("abc")),
        ("'x' || j ->> 's'", json!("xstr")),
    ]);
}

#[test]
fn in_and_overlap_use_json_arrays() {
    check(&[
        ("1 IN arr", json!(1)),
        ("'x' IN arr", json!(1)),
        ("3 IN arr", json!(0)),
        ("1.0 IN arr", json!(1)),
        ("n IN arr", Json::Null),
        ("i NOT IN arr", json!(1)),
        ("arr && '[2, 9]'", json!(1)),
        ("arr && '[9]'", json!(0)),
        ("'[1]' && '[1.0]'", json!(1)),
    ]);
}

#[test]
fn json_operators_extract_text_and_values() {
    check(&[
        ("j -> 'a'", json!(r#"{"b":[10,20]}"#)),
        ("j ->> 's'", json!("str")),
        ("j ->> 't'", json!(1)),
        ("j -> '$.a.b'", json!("[10,20]")),
        ("j ->> '$.a.b[1]'", json!(20)),
        ("j -> 'missing'", Json::Null),
        ("j -> 'a' -> 'b'", json!("[10,20]")),
        // Legacy (edition 1): a key without `$` is split on `.`.
        ("j ->> 'a.b'", json!("[10,20]")),
        ("j ->> 'z'", json!("null")),
    ]);
    // With fixed_json_extract (edition 2) the key is one key, and JSON null is SQL NULL.
    assert_eq!(evaluate("j ->> 'a.b'", 2), Some(json!(5)));
    assert_eq!(evaluate("j ->> 'z'", 2), Some(Json::Null));
}

#[test]
fn casts_convert_between_the_five_types() {
    check(&[
        ("CAST(i AS text)", json!("7")),
        ("CAST(three AS text)", json!("3")),
        ("CAST(num AS integer)", json!(12)),
        ("CAST(r AS integer)", json!(2)),
        ("CAST('1.5e1' AS real)", json!(15.0)),
        ("CAST(s AS real)", json!(0.0)),
        ("CAST('42' AS numeric)", json!(42)),
        ("CAST('4.5' AS numeric)", json!(4.5)),
        ("CAST(b AS text) IS NOT NULL", json!(1)),
        ("typeof(CAST(s AS blob))", json!("blob")),
        ("i::text", json!("7")),
        ("CAST(n AS integer)", Json::Null),
    ]);
    assert_eq!(
        evaluate("CAST(s AS blob)", 1),
        None,
        "BLOBs are dropped from row JSON"
    );
}

#[test]
fn every_function_is_callable() {
    check(&[
        ("upper(s)", json!("ABC")),
        ("lower('ÀB')", json!("àb")),
        ("substring(s, 2)", json!("bc")),
        ("substring(s, 2, 1)", json!("b")),
        ("substring(s, -2, 5)", json!("bc")),
        ("substr(s, 1, 2)", json!("ab")),
        ("hex(b)", json!("DEAD")),
        ("hex(s)", json!("616263")),
        ("length(s)", json!(3)),
        ("length(b)", json!(2)),
        ("base64(s)", json!("YWJj")),
        (
            "hex(uuid_blob(uuid))",
            json!("0B6A1C9E1F2D4C1E9D7A3F1E8B2C4D5E"),
        ),
        ("typeof(i)", json!("integer")),
        ("typeof(r)", json!("real")),
        ("typeof(n)", json!("null")),
        ("typeof(b)", json!("blob")),
        ("ifnull(n, 'd')", json!("d")),
        ("ifnull(s, 'd')", json!("abc")),
        ("iif(i > 5, 'big', 'small')", json!("big")),
        ("instr(s, 'c')", json!(3)),
        ("json_extract(j, '$.a.b[0]')", json!(10)),
        ("json_array_length(arr)", json!(3)),
        ("json_array_length(j, '$.a.b')", json!(2)),
        ("json_valid(j)", json!(1)),
        ("json_valid(s)", json!(0)),
        ("json_keys(j)", json!(r#"["a","t","z","a.b","s"]"#)),
        ("unixepoch(ts)", json!(1_704_164_645)),
        ("datetime(ts, '+1 day')", json!("2024-01-03 03:04:05")),
        ("st_astext(point)", json!("POINT(1 2)")),
        ("st_x(point)", json!(1.0)),
        ("st_y(point)", json!(2.0)),
        (
            "st_asgeojson(point)",
            json!(r#"{"type":"Point","coordinates":[1.0,2.0]}"#),
        ),
    ]);
}

#[test]
fn constant_expressions_are_folded_at_compile_time() {
    let plan = compile("bucket_definitions:\n  g:\n    data:\n      - SELECT id, 1 + 2 * 3 AS v, upper('x') || 'y' AS w FROM t\n")
        .unwrap()
        .plan;
    let json = plan.to_json();
    assert!(
        json.contains(r#"{"literal":{"t":"Integer","v":7}}"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"literal":{"t":"Text","v":"Xy"}}"#),
        "{json}"
    );
    assert!(!json.contains("binary") && !json.contains("call"), "{json}");
}

#[test]
fn functions_report_errors_per_row_not_panics() {
    let plan = compile("bucket_definitions:\n  g:\n    data:\n      - SELECT id, uuid_blob(s) AS u FROM t\n      - SELECT id FROM t\n")
        .unwrap()
        .plan;
    let e = plan.evaluate_row(&TableRef::public("t"), &sample_row(), None);
    assert_eq!(
        e.outputs.len(),
        1,
        "the second query still produces its output"
    );
    assert_eq!(e.errors.len(), 1);
    assert_eq!(
        e.errors[0].to_string(),
        "definition 'g', data query 1: column 'u': uuid_blob: not a UUID: 'abc'"
    );
}

//! Property tests: compiling and evaluating never panics, whatever the input; bucket ids round-trip;
//! oversized and deeply nested input is refused with a clear error.

use std::collections::HashMap;

use ferry_rules::{compile, parse_bucket_id, Plan, RequestParameters, Row, TableRef, Value};
use proptest::prelude::*;

/// A document exercising every operator, function and query shape.
const RICH: &str = r#"
bucket_definitions:
  by_user:
    parameters:
      - SELECT request.user_id() AS u
      - SELECT id AS u FROM users WHERE request.user_id() IN users.friends AND users.active = 1
      - SELECT name AS u FROM users WHERE org IN request.jwt() -> 'orgs' AND kind = token_parameters.kind
      - SELECT name AS u FROM users WHERE users.tags && request.parameters() -> 'tags' OR users.alt && request.parameters() -> 'tags'
      - SELECT value AS u FROM json_each(request.parameters() -> 'us') WHERE key < 10
    accept_potentially_dangerous_queries: true
    data:
      - SELECT * FROM t WHERE owner = bucket.u
      - SELECT id, a + b AS s, a - b AS d, a * b AS m, a / b AS q, a || b AS c, -a AS n, +a AS p FROM t WHERE bucket.u IN tags
      - SELECT id, a = b AS e, a != b AS ne, a < b AS lt, a <= b AS le, a > b AS gt, a >= b AS ge FROM t WHERE owner = bucket.u OR bucket.u && tags
      - SELECT id, a AND b AS x, a OR b AS y, NOT a AS z, a IS NULL AS i, b IS NOT NULL AS j, a IN tags AS k, tags && b AS o FROM t WHERE owner = bucket.u
      - SELECT id, j -> 'x' AS j1, j ->> 'x' AS j2, j -> '$.x[0]' AS j3, CAST(a AS text) AS c1, CAST(a AS numeric) AS c2, CAST(a AS integer) AS c3, CAST(a AS real) AS c4, CAST(a AS blob) AS c5 FROM t WHERE owner = bucket.u
      - SELECT id, upper(a) AS f1, lower(a) AS f2, substring(a, b) AS f3, substring(a, 2, b) AS f4, hex(a) AS f5, length(a) AS f6, base64(a) AS f7, typeof(a) AS f8, ifnull(a, b) AS f9, iif(a, b, j) AS f10, instr(a, b) AS f11 FROM t WHERE owner = bucket.u
      - SELECT id, json_extract(j, '$.x') AS g1, json_array_length(j) AS g2, json_array_length(j, '$.x') AS g3, json_valid(j) AS g4, json_keys(j) AS g5, unixepoch(a) AS g6, datetime(a, b) AS g7, uuid_blob(a) AS g8 FROM t WHERE owner = bucket.u
      - SELECT id, st_asgeojson(a) AS h1, st_astext(a) AS h2, st_x(a) AS h3, st_y(a) AS h4 FROM t WHERE owner = bucket.u
"#;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(3.0)
        ]
        .prop_map(Value::Real),
        ".{0,12}".prop_map(Value::Text),
        prop::collection::vec(
            prop_oneof![
                Just("1".to_owned()),
                Just("\"u\"".to_owned()),
                Just("null".to_owned()),
                Just("1.5".to_owned()),
                Just("[2]".to_owned()),
                "[a-z]{0,3}".prop_map(|s| format!("\"{s}\""))
            ],
            0..4
        )
        .prop_map(|items| Value::Text(format!("[{}]", items.join(",")))),
        Just(Value::Text(r#"{"x": [1, {"y": null}], "": 2}"#.to_owned())),
        Just(Value::Text("2024-01-02 03:04:05".to_owned())),
        Just(Value::Text(
            "0101000000000000000000F03F0000000000000040".to_owned()
        )),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Blob),
    ]
}

fn row() -> impl Strategy<Value = Row> {
    let names = prop_oneof![
        Just("id"),
        Just("owner"),
        Just("a"),
        Just("b"),
        Just("j"),
        Just("tags"),
        Just("_hidden"),
        Just("name"),
        Just("org"),
        Just("active"),
        Just("friends"),
        Just("zz")
    ];
    prop::collection::btree_map(names, value(), 0..10)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn rich_plan() -> Plan {
    match compile(RICH) {
        Ok(c) => c.plan,
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_on_arbitrary_rows(r in row(), version in prop::option::of(any::<u64>())) {
        let plan = rich_plan();
        let evaluation = plan.evaluate_row(&TableRef::public("t"), &r, version);
        for out in &evaluation.outputs {
            prop_assert!(out.bucket.contains("by_user["));
            prop_assert_eq!(out.checksum, ferry_rules::checksum::put_checksum(&out.object_type, &out.object_id, &out.data));
            prop_assert!(serde_json::from_str::<serde_json::Value>(&out.data).is_ok(), "row JSON parses: {}", out.data);
        }
        let parameters = plan.evaluate_parameter_row(&TableRef::public("users"), &r);
        for lookup in &parameters.lookups {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&lookup.lookup.key()).is_ok());
        }
    }

    #[test]
    fn request_resolution_never_panics(claims in any_json(), params in any_json()) {
        let plan = rich_plan();
        let request = RequestParameters::new(&claims, &params);
        let resolution = plan.resolve_request(&request, Some(1));
        let mut found = HashMap::new();
        for l in &resolution.lookups {
            found.insert(l.key(), vec![ferry_rules::ParameterRow::new(vec![("u".to_owned(), Value::Integer(1))])]);
        }
        let _ = plan.dynamic_buckets(&request, &resolution, &found, Some(1));
    }

    #[test]
    fn bucket_ids_round_trip(owner in value(), version in prop::option::of(0u64..1_000_000)) {
        let plan = compile("bucket_definitions:\n  by_owner:\n    parameters: SELECT request.user_id() AS o\n    data:\n      - SELECT * FROM t WHERE owner = bucket.o\n").unwrap().plan;
        let r: Row = [("id", Value::from("x")), ("owner", owner.clone())].into_iter().collect();
        let evaluation = plan.evaluate_row(&TableRef::public("t"), &r, version);
        match &owner {
            Value::Null | Value::Blob(_) => prop_assert!(evaluation.outputs.is_empty()),
            Value::Real(f) if !f.is_finite() => {}
            _ => {
                prop_assert_eq!(evaluation.outputs.len(), 1);
                let bucket = &evaluation.outputs[0].bucket;
                let (v, name, params) = parse_bucket_id(bucket).unwrap();
                prop_assert_eq!(v, version);
                prop_assert_eq!(name, "by_owner");
                prop_assert_eq!(params.len(), 1);
                // The parameter as written between the brackets, parsed exactly.
                let raw = &bucket[bucket.find('[').unwrap() + 1..bucket.len() - 1];
                match (&owner, &params[0]) {
                    (Value::Text(s), serde_json::Value::String(p)) => prop_assert_eq!(s, p),
                    (Value::Integer(i), _) => prop_assert_eq!(raw.parse::<i64>().ok(), Some(*i)),
                    (Value::Real(f), _) => prop_assert_eq!(raw.parse::<f64>().ok(), Some(*f)),
                    (o, p) => prop_assert!(false, "{:?} gave {:?}", o, p),
                }
            }
        }
    }

    #[test]
    fn compiling_arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = compile(&text);
    }

    #[test]
    fn compiling_arbitrary_yaml_structures_never_panics(text in yaml_like()) {
        let _ = compile(&text);
    }

    #[test]
    fn compiling_arbitrary_sql_never_panics(sql in sql_like(), in_parameters in any::<bool>()) {
        let quoted = sql.replace('\'', "''");
        let doc = if in_parameters {
            format!("bucket_definitions:\n  d:\n    parameters: '{quoted}'\n    data:\n      - SELECT * FROM t WHERE x = bucket.x\n")
        } else {
            format!("bucket_definitions:\n  d:\n    parameters: SELECT request.user_id() AS x\n    data:\n      - '{quoted}'\n")
        };
        if let Ok(compiled) = compile(&doc) {
            // Whatever compiles round-trips and evaluates.
            let loaded = Plan::from_json(&compiled.plan.to_json()).unwrap();
            prop_assert_eq!(&loaded, &compiled.plan);
            let r: Row = [("x", Value::Integer(1)), ("id", Value::from("i"))].into_iter().collect();
            let _ = loaded.evaluate_row(&TableRef::public("t"), &r, None);
        }
    }
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-z]{0,4}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sub".to_owned()),
                    Just("orgs".to_owned()),
                    Just("us".to_owned()),
                    Just("org".to_owned()),
                    Just("parameters".to_owned()),
                    "[a-z]{1,3}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn yaml_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("bucket_definitions:".to_owned()),
        Just("config:".to_owned()),
        Just("  edition: 2".to_owned()),
        Just("  a:".to_owned()),
        Just("    parameters:".to_owned()),
        Just("    data:".to_owned()),
        Just("    priority: 2".to_owned()),
        Just("      - SELECT * FROM t".to_owned()),
        Just("      - SELECT id FROM t WHERE x = bucket.x".to_owned()),
        Just("    parameters: SELECT request.user_id() AS x".to_owned()),
        Just("      - |".to_owned()),
        Just("        SELECT *".to_owned()),
        Just("- [".to_owned()),
        Just("{a: [b, {c: d}]}".to_owned()),
        Just("&a x".to_owned()),
        Just("*a".to_owned()),
        Just("'unterminated".to_owned()),
        Just("\"esc \\u00e9 \\x".to_owned()),
        Just("\t".to_owned()),
        Just("---".to_owned()),
        Just("# comment".to_owned()),
        "[ a-z:\\-\\[\\]{}'\"|>#&*!%@`]{0,20}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|lines| lines.join("\n"))
}

fn sql_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT"),
        Just("*"),
        Just("FROM"),
        Just("t"),
        Just("WHERE"),
        Just("id"),
        Just("x"),
        Just("AS"),
        Just("bucket.x"),
        Just("request.user_id()"),
        Just("request.jwt()"),
        Just("token_parameters.a"),
        Just("="),
        Just("!="),
        Just("<"),
        Just("+"),
        Just("-"),
        Just("/"),
        Just("||"),
        Just("&&"),
        Just("->"),
        Just("->>"),
        Just("IN"),
        Just("NOT"),
        Just("AND"),
        Just("OR"),
        Just("IS"),
        Just("NULL"),
        Just("("),
        Just(")"),
        Just(","),
        Just("'a'"),
        Just("1"),
        Just("1.5"),
        Just("upper("),
        Just("json_each("),
        Just("CAST("),
        Just("text"),
        Just("JOIN"),
        Just("LIMIT"),
        Just("ORDER BY"),
        Just("GROUP BY"),
        Just("CASE"),
        Just("WHEN"),
        Just("END"),
        Just("value"),
        Just("_priority"),
        Just("users"),
        Just(";"),
        Just("::"),
        Just("$1"),
        Just("\""),
        Just("%"),
        Just("E'\\x'"),
    ];
    prop::collection::vec(token, 0..30).prop_map(|t| t.join(" "))
}

// --- Oversized and deeply nested input --------------------------------------------------------

fn first_error(yaml: &str) -> String {
    match compile(yaml) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.errors[0].to_string(),
    }
}

fn data_query_doc(sql: &str) -> String {
    format!("bucket_definitions:\n  a:\n    data:\n      - |\n        {sql}\n")
}

#[test]
fn oversized_document_is_refused() {
    let doc = format!(
        "bucket_definitions: {{}}\n# {}\n",
        "x".repeat(ferry_rules::limits::MAX_DOCUMENT_BYTES)
    );
    assert_eq!(
        first_error(&doc),
        "sync rules document is 1048602 bytes, more than the limit of 1048576 bytes. Split very large rules, or shorten repeated queries"
    );
}

#[test]
fn oversized_query_is_refused() {
    let sql = format!(
        "SELECT * FROM t WHERE x = '{}'",
        "y".repeat(ferry_rules::limits::MAX_QUERY_BYTES)
    );
    assert_eq!(
        first_error(&data_query_doc(&sql)),
        "5:9: definition 'a', data query 1: query is 65565 bytes, more than the limit of 65536 bytes"
    );
}

#[test]
fn query_with_too_many_tokens_is_refused() {
    let sql = format!(
        "SELECT * FROM t WHERE x IN '[]' {}",
        "OR x = 1 ".repeat(2000)
    );
    assert!(first_error(&data_query_doc(&sql)).contains("more than the limit of 4096"));
}

#[test]
fn deeply_nested_parentheses_are_refused() {
    let sql = format!(
        "SELECT * FROM t WHERE x = {}1{}",
        "(".repeat(1_500),
        ")".repeat(1_500)
    );
    assert_eq!(
        first_error(&data_query_doc(&sql)),
        "5:9: definition 'a', data query 1: query is nested too deeply. Use fewer nested parentheses and function calls"
    );
}

#[test]
fn long_operator_chains_are_refused_without_exhausting_the_stack() {
    for op in ["+", "||", "->", "="] {
        let sql = format!(
            "SELECT * FROM t WHERE x = 1 {}",
            format!("{op} 'a' ").repeat(2000)
        );
        let err = first_error(&data_query_doc(&sql));
        assert!(
            err.contains("nested more than 32 levels deep"),
            "{op}: {err}"
        );
    }
    // sqlparser stops at its recursion limit; the error text depends on where.
    let sql = format!("SELECT * FROM t WHERE {} x", "NOT ".repeat(3000));
    assert!(compile(&data_query_doc(&sql)).is_err());
    let sql = format!("SELECT * FROM t WHERE x = {}1", "- ".repeat(3000));
    let err = first_error(&data_query_doc(&sql));
    assert!(err.contains("nested too deeply"), "{err}");
}

#[test]
fn deeply_nested_yaml_is_refused() {
    for doc in [
        "[".repeat(100_000),
        "{a: ".repeat(50_000),
        (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect::<String>(),
    ] {
        let err = first_error(&doc);
        assert!(
            err.contains("YAML nesting is deeper than the limit of 16 levels"),
            "{err}"
        );
    }
}

#[test]
fn many_errors_are_capped() {
    let mut doc = String::from("bucket_definitions:\n  a:\n    data:\n");
    for _ in 0..300 {
        doc.push_str("      - SELECT * FROM t LIMIT 1\n");
    }
    let errors = compile(&doc).unwrap_err().errors;
    assert_eq!(errors.len(), ferry_rules::limits::MAX_REPORTED_ERRORS + 1);
    assert_eq!(
        errors.last().unwrap().to_string(),
        "… and 200 more errors. Fix the errors above first"
    );
}

#[test]
fn long_and_or_chains_are_one_level() {
    let plan = compile(&data_query_doc(&format!(
        "SELECT * FROM t WHERE x = 0 {}",
        (1..1000)
            .map(|i| format!("OR x = {i} "))
            .collect::<String>()
    )))
    .unwrap()
    .plan;
    let plan = Plan::from_json(&plan.to_json()).unwrap();
    let r: Row = [("id", Value::from("a")), ("x", Value::Integer(999))]
        .into_iter()
        .collect();
    assert_eq!(
        plan.evaluate_row(&TableRef::public("t"), &r, None)
            .outputs
            .len(),
        1
    );
}

#[test]
fn the_deepest_accepted_expressions_round_trip_through_json() {
    let limit = ferry_rules::limits::MAX_EXPRESSION_DEPTH;
    let calls = |n: usize| format!("{}x{}", "upper(".repeat(n), ")".repeat(n));
    let sums = |n: usize| format!("{}x{}", "(1 + ".repeat(n), ")".repeat(n));
    let mixed = |n: usize| {
        (0..n).fold("x".to_owned(), |e, i| {
            if i % 2 == 0 {
                format!("(x = 1 AND {e})")
            } else {
                format!("(x = 2 OR {e})")
            }
        })
    };
    // `mixed(n)` has `x = 1` one level below its n-th operator.
    let shapes: [(&dyn Fn(usize) -> String, usize); 3] =
        [(&calls, limit), (&sums, limit), (&mixed, limit - 1)];
    for (shape, n) in shapes {
        let (deepest, condition) = (shape(n), shape(n - 2));
        let sql = format!(
            "SELECT id, {deepest} AS v FROM t WHERE {condition} IS NOT NULL OR {condition}"
        );
        let plan = match compile(&data_query_doc(&sql)) {
            Ok(c) => c.plan,
            Err(e) => panic!("{e}"),
        };
        let loaded = Plan::from_json(&plan.to_json()).unwrap();
        assert_eq!(loaded, plan);
    }
    for too_deep in [calls(limit + 1), sums(limit + 1)] {
        let err = first_error(&data_query_doc(&format!(
            "SELECT id, {too_deep} AS v FROM t"
        )));
        assert!(err.contains("nested more than 32 levels deep"), "{err}");
    }
}

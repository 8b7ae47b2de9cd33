//! Behaviour of compiled rules: data queries (§1.4), parameter queries (§1.3), request resolution,
//! row JSON (§1.7), and the IN / && forms in both dialect positions.

use std::collections::HashMap;

use ferry_rules::{
    compile, BucketDescription, ParameterRow, Plan, RequestParameters, Row, RowEvaluation,
    TableRef, Value,
};
use serde_json::json;

fn plan(yaml: &str) -> Plan {
    match compile(yaml) {
        Ok(c) => c.plan,
        Err(e) => panic!("{e}"),
    }
}

fn row(columns: &[(&str, Value)]) -> Row {
    columns.iter().map(|(n, v)| (*n, v.clone())).collect()
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn eval(plan: &Plan, table: &str, r: &Row) -> RowEvaluation {
    plan.evaluate_row(&TableRef::public(table), r, None)
}

fn buckets(evaluation: &RowEvaluation) -> Vec<&str> {
    let mut b: Vec<&str> = evaluation
        .outputs
        .iter()
        .map(|o| o.bucket.as_str())
        .collect();
    b.sort();
    b
}

/// Replicates rows into an in-memory parameter index, then resolves a request.
fn resolve(
    plan: &Plan,
    tables: &[(&str, Vec<Row>)],
    claims: serde_json::Value,
    params: serde_json::Value,
) -> Vec<BucketDescription> {
    let mut index: HashMap<String, Vec<ParameterRow>> = HashMap::new();
    for (table, rows) in tables {
        for r in rows {
            let evaluation = plan.evaluate_parameter_row(&TableRef::public(*table), r);
            assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
            for l in evaluation.lookups {
                index.entry(l.lookup.key()).or_default().extend(l.rows);
            }
        }
    }
    let request = RequestParameters::new(&claims, &params);
    let resolution = plan.resolve_request(&request, None);
    assert!(resolution.errors.is_empty(), "{:?}", resolution.errors);
    let dynamic = plan.dynamic_buckets(&request, &resolution, &index, None);
    assert!(dynamic.errors.is_empty(), "{:?}", dynamic.errors);
    let mut all = resolution.static_buckets;
    all.extend(dynamic.buckets);
    all.sort_by(|a, b| a.bucket.cmp(&b.bucket));
    all
}

fn bucket_names(b: &[BucketDescription]) -> Vec<&str> {
    b.iter().map(|b| b.bucket.as_str()).collect()
}

const BY_USER: &str = "bucket_definitions:\n  by_user:\n    parameters: SELECT request.user_id() AS user_id\n    data:\n";

#[test]
fn bucket_parameter_in_row_array_puts_the_row_in_one_bucket_per_element() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE bucket.user_id IN docs.readers\n"
    ));
    let e = eval(
        &p,
        "docs",
        &row(&[("id", text("d1")), ("readers", text(r#"["u1","u2",3]"#))]),
    );
    assert_eq!(
        buckets(&e),
        vec!["by_user[\"u1\"]", "by_user[\"u2\"]", "by_user[3]"]
    );
}

#[test]
fn overlap_with_a_bucket_parameter_expands_the_row_array() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE bucket.user_id && readers\n"
    ));
    let e = eval(
        &p,
        "docs",
        &row(&[("id", text("d1")), ("readers", text(r#"["u1","u2"]"#))]),
    );
    assert_eq!(buckets(&e), vec!["by_user[\"u1\"]", "by_user[\"u2\"]"]);
}

#[test]
fn or_in_where_is_the_union_of_buckets() {
    let p = plan(&format!("{BY_USER}      - SELECT * FROM docs WHERE owner = bucket.user_id OR editor = bucket.user_id\n"));
    let e = eval(
        &p,
        "docs",
        &row(&[
            ("id", text("d1")),
            ("owner", text("a")),
            ("editor", text("b")),
        ]),
    );
    assert_eq!(buckets(&e), vec!["by_user[\"a\"]", "by_user[\"b\"]"]);
    let e = eval(
        &p,
        "docs",
        &row(&[
            ("id", text("d1")),
            ("owner", text("a")),
            ("editor", text("a")),
        ]),
    );
    assert_eq!(
        buckets(&e),
        vec!["by_user[\"a\"]"],
        "the same bucket is produced once"
    );
}

#[test]
fn null_never_matches_equality() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE owner = bucket.user_id\n"
    ));
    let e = eval(
        &p,
        "docs",
        &row(&[("id", text("d1")), ("owner", Value::Null)]),
    );
    assert!(e.outputs.is_empty());
    let e = eval(&p, "docs", &row(&[("id", text("d1"))]));
    assert!(e.outputs.is_empty(), "a missing column is NULL");
}

#[test]
fn row_filters_combine_with_parameter_matches() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE owner = bucket.user_id AND archived = 0\n"
    ));
    assert_eq!(
        eval(
            &p,
            "docs",
            &row(&[
                ("id", text("1")),
                ("owner", text("a")),
                ("archived", Value::Integer(0))
            ])
        )
        .outputs
        .len(),
        1
    );
    assert!(eval(
        &p,
        "docs",
        &row(&[
            ("id", text("1")),
            ("owner", text("a")),
            ("archived", Value::Integer(1))
        ])
    )
    .outputs
    .is_empty());
}

#[test]
fn star_skips_underscore_columns_and_explicit_columns_after_it_overwrite_in_place() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT *, upper(name) AS name FROM docs WHERE owner = bucket.user_id\n"
    ));
    let r = row(&[
        ("id", text("d1")),
        ("name", text("ab")),
        ("_internal", text("x")),
        ("owner", text("u")),
    ]);
    assert_eq!(
        eval(&p, "docs", &r).outputs[0].data,
        r#"{"id":"d1","name":"AB","owner":"u"}"#
    );
}

#[test]
fn star_never_overwrites_an_earlier_explicit_column() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT upper(name) AS name, * FROM docs WHERE owner = bucket.user_id\n"
    ));
    let r = row(&[
        ("id", text("d1")),
        ("name", text("ab")),
        ("owner", text("u")),
    ]);
    assert_eq!(
        eval(&p, "docs", &r).outputs[0].data,
        r#"{"name":"AB","id":"d1","owner":"u"}"#
    );
}

#[test]
fn row_json_keeps_64_bit_integers_marks_integral_reals_and_drops_blobs() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM t\n");
    let r = row(&[
        ("id", Value::Integer(9_007_199_254_740_993)),
        ("r", Value::Real(3.0)),
        ("f", Value::Real(0.5)),
        ("b", Value::Blob(vec![1, 2])),
        ("n", Value::Null),
        ("s", text("é\"\n")),
    ]);
    let out = &eval(&p, "t", &r).outputs[0];
    assert_eq!(
        out.data,
        "{\"id\":9007199254740993,\"r\":3.0,\"f\":0.5,\"n\":null,\"s\":\"é\\\"\\n\"}"
    );
    assert_eq!(out.object_id, "9007199254740993");
}

#[test]
fn object_id_is_the_id_converted_to_text_or_empty() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM t\n");
    assert_eq!(
        eval(&p, "t", &row(&[("id", Value::Real(1.5))])).outputs[0].object_id,
        "1.5"
    );
    assert_eq!(
        eval(&p, "t", &row(&[("x", Value::Integer(1))])).outputs[0].object_id,
        ""
    );
}

#[test]
fn explicit_id_alias_and_dropped_columns() {
    let p =
        plan("bucket_definitions:\n  g:\n    data:\n      - SELECT pk AS id, name, gone FROM t\n");
    let out = &eval(
        &p,
        "t",
        &row(&[("pk", Value::Integer(5)), ("name", text("n"))]),
    )
    .outputs[0];
    assert_eq!(out.object_id, "5");
    assert_eq!(
        out.data, r#"{"id":5,"name":"n"}"#,
        "a column the row lacks is left out"
    );
}

#[test]
fn checksum_is_the_put_checksum_of_the_output() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM t\n");
    let out = &eval(&p, "t", &row(&[("id", text("a"))])).outputs[0];
    assert_eq!(
        out.checksum,
        ferry_rules::checksum::put_checksum("t", "a", r#"{"id":"a"}"#)
    );
}

#[test]
fn unquoted_identifiers_are_lowercased_and_quoted_ones_kept() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT Id, \"Name\" FROM \"Todos\" WHERE Done = 0\n");
    assert_eq!(p.source_tables(), vec![TableRef::public("Todos")]);
    let e = eval(
        &p,
        "Todos",
        &row(&[
            ("id", text("1")),
            ("Name", text("n")),
            ("done", Value::Integer(0)),
        ]),
    );
    assert_eq!(e.outputs[0].data, r#"{"id":"1","Name":"n"}"#);
    assert!(eval(&p, "todos", &row(&[("id", text("1"))]))
        .outputs
        .is_empty());
}

#[test]
fn schema_qualified_tables_are_kept_apart() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM sales.orders\n");
    assert_eq!(p.source_tables(), vec![TableRef::new("sales", "orders")]);
    assert!(p
        .evaluate_row(
            &TableRef::public("orders"),
            &row(&[("id", text("1"))]),
            None
        )
        .outputs
        .is_empty());
    let e = p.evaluate_row(
        &TableRef::new("sales", "orders"),
        &row(&[("id", text("1"))]),
        None,
    );
    assert_eq!(e.outputs[0].object_type, "orders");
}

#[test]
fn pattern_tables_match_by_prefix_and_expose_the_suffix() {
    let p = plan("bucket_definitions:\n  g:\n    data:\n      - SELECT id, _table_suffix AS year FROM \"todos_%\"\n");
    assert!(p.source_tables()[0].is_pattern());
    let e = eval(&p, "todos_2024", &row(&[("id", text("1"))]));
    assert_eq!(e.outputs[0].object_type, "todos_2024");
    assert_eq!(e.outputs[0].data, r#"{"id":"1","year":"2024"}"#);
}

#[test]
fn an_evaluation_error_is_reported_for_that_row_and_query_only() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE bucket.user_id IN readers\n      - SELECT * FROM docs WHERE owner = bucket.user_id\n"
    ));
    let e = eval(
        &p,
        "docs",
        &row(&[
            ("id", text("d")),
            ("readers", text("not json")),
            ("owner", text("u")),
        ]),
    );
    assert_eq!(buckets(&e), vec!["by_user[\"u\"]"]);
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].definition, "by_user");
    assert_eq!(e.errors[0].query.to_string(), "data query 1");
    assert!(
        e.errors[0].message.contains("JSON array"),
        "{}",
        e.errors[0].message
    );
}

#[test]
fn several_data_queries_of_one_table_each_produce_their_rows() {
    let p = plan(&format!(
        "{BY_USER}      - SELECT * FROM docs WHERE owner = bucket.user_id\n      - SELECT id, title FROM docs AS summaries WHERE owner = bucket.user_id\n"
    ));
    let e = eval(
        &p,
        "docs",
        &row(&[
            ("id", text("d")),
            ("title", text("t")),
            ("owner", text("u")),
        ]),
    );
    let types: Vec<&str> = e.outputs.iter().map(|o| o.object_type.as_str()).collect();
    assert_eq!(types, vec!["docs", "summaries"]);
}

// --- Parameter queries ------------------------------------------------------------------------

const LISTS: &str = r#"
bucket_definitions:
  by_list:
    parameters: SELECT id AS list_id FROM lists WHERE owner_id = request.user_id()
    data:
      - SELECT * FROM todos WHERE list_id = bucket.list_id
"#;

#[test]
fn table_parameter_query_looks_up_rows_matching_the_request() {
    let p = plan(LISTS);
    let lists = vec![
        row(&[("id", text("L1")), ("owner_id", text("u1"))]),
        row(&[("id", text("L2")), ("owner_id", text("u1"))]),
        row(&[("id", text("L3")), ("owner_id", text("u2"))]),
    ];
    let b = resolve(&p, &[("lists", lists)], json!({"sub": "u1"}), json!({}));
    assert_eq!(bucket_names(&b), vec!["by_list[\"L1\"]", "by_list[\"L2\"]"]);
}

#[test]
fn parameter_lookups_have_the_documented_key() {
    let p = plan(LISTS);
    let e = p.evaluate_parameter_row(
        &TableRef::public("lists"),
        &row(&[("id", text("L1")), ("owner_id", text("u1"))]),
    );
    assert_eq!(e.lookups.len(), 1);
    assert_eq!(e.lookups[0].lookup.key(), r#"["by_list","1","u1"]"#);
    assert_eq!(e.lookups[0].rows_json(), r#"[{"list_id":"L1"}]"#);
    let request = RequestParameters::new(&json!({"sub": "u1"}), &json!({}));
    let resolution = p.resolve_request(&request, None);
    assert_eq!(
        resolution
            .lookups
            .iter()
            .map(|l| l.key())
            .collect::<Vec<_>>(),
        vec![r#"["by_list","1","u1"]"#]
    );
}

#[test]
fn request_value_in_row_array_expands_on_the_row_side() {
    let p = plan(
        "bucket_definitions:\n  by_group:\n    parameters: SELECT id AS group_id FROM groups WHERE request.user_id() IN groups.members\n    data:\n      - SELECT * FROM posts WHERE group_id = bucket.group_id\n",
    );
    let groups = vec![
        row(&[
            ("id", Value::Integer(1)),
            ("members", text(r#"["u1","u2"]"#)),
        ]),
        row(&[("id", Value::Integer(2)), ("members", text(r#"["u2"]"#))]),
    ];
    let b = resolve(&p, &[("groups", groups)], json!({"sub": "u2"}), json!({}));
    assert_eq!(bucket_names(&b), vec!["by_group[1]", "by_group[2]"]);
}

#[test]
fn row_column_in_request_array_expands_on_the_request_side() {
    let p = plan(
        "bucket_definitions:\n  by_project:\n    parameters: SELECT id AS project_id FROM projects WHERE org_id IN request.jwt() -> 'orgs'\n    data:\n      - SELECT * FROM tasks WHERE project_id = bucket.project_id\n",
    );
    let projects = vec![
        row(&[("id", text("p1")), ("org_id", Value::Integer(7))]),
        row(&[("id", text("p2")), ("org_id", Value::Integer(8))]),
        row(&[("id", text("p3")), ("org_id", Value::Integer(9))]),
    ];
    let b = resolve(
        &p,
        &[("projects", projects)],
        json!({"sub": "u", "orgs": [7, 9.0]}),
        json!({}),
    );
    assert_eq!(
        bucket_names(&b),
        vec!["by_project[\"p1\"]", "by_project[\"p3\"]"]
    );
}

#[test]
fn overlap_between_row_array_and_request_array_expands_both_sides() {
    let p = plan(
        "bucket_definitions:\n  by_doc:\n    parameters: SELECT id AS doc_id FROM docs WHERE docs.tags && request.jwt() -> 'tags'\n    data:\n      - SELECT * FROM pages WHERE doc_id = bucket.doc_id\n",
    );
    let docs = vec![
        row(&[("id", text("d1")), ("tags", text(r#"["a","b"]"#))]),
        row(&[("id", text("d2")), ("tags", text(r#"["c"]"#))]),
    ];
    let b = resolve(
        &p,
        &[("docs", docs)],
        json!({"tags": ["b", "z"]}),
        json!({}),
    );
    assert_eq!(bucket_names(&b), vec!["by_doc[\"d1\"]"]);
}

#[test]
fn lookup_and_parameter_extractors_combine_into_bucket_parameters() {
    let p = plan(
        "bucket_definitions:\n  by_list_user:\n    parameters: SELECT id AS list_id, request.user_id() AS user_id FROM lists WHERE owner_id = request.user_id() AND lists.active = 1\n    data:\n      - SELECT * FROM todos WHERE list_id = bucket.list_id AND assignee = bucket.user_id\n",
    );
    let lists = vec![
        row(&[
            ("id", text("L1")),
            ("owner_id", text("u1")),
            ("active", Value::Integer(1)),
        ]),
        row(&[
            ("id", text("L2")),
            ("owner_id", text("u1")),
            ("active", Value::Integer(0)),
        ]),
    ];
    let b = resolve(&p, &[("lists", lists)], json!({"sub": "u1"}), json!({}));
    assert_eq!(bucket_names(&b), vec!["by_list_user[\"L1\",\"u1\"]"]);
    let e = eval(
        &p,
        "todos",
        &row(&[
            ("id", text("t")),
            ("list_id", text("L1")),
            ("assignee", text("u1")),
        ]),
    );
    assert_eq!(buckets(&e), vec!["by_list_user[\"L1\",\"u1\"]"]);
}

#[test]
fn request_only_condition_in_a_table_query_gates_the_lookup() {
    let p = plan(
        "bucket_definitions:\n  admin_lists:\n    parameters: SELECT id AS list_id FROM lists WHERE request.jwt() ->> 'role' = 'admin'\n    data:\n      - SELECT * FROM todos WHERE list_id = bucket.list_id\n",
    );
    let lists = || vec![row(&[("id", text("L1"))])];
    assert_eq!(
        bucket_names(&resolve(
            &p,
            &[("lists", lists())],
            json!({"role": "admin"}),
            json!({})
        )),
        vec!["admin_lists[\"L1\"]"]
    );
    assert!(resolve(
        &p,
        &[("lists", lists())],
        json!({"role": "user"}),
        json!({})
    )
    .is_empty());
}

#[test]
fn static_query_where_filters_the_bucket() {
    let p = plan(
        "bucket_definitions:\n  admins:\n    parameters: SELECT token_parameters.user_id AS user_id WHERE request.jwt() ->> 'role' = 'admin'\n    data:\n      - SELECT * FROM audit WHERE actor = bucket.user_id\n",
    );
    assert_eq!(
        bucket_names(&resolve(
            &p,
            &[],
            json!({"sub": "a", "role": "admin"}),
            json!({})
        )),
        vec!["admins[\"a\"]"]
    );
    assert!(resolve(&p, &[], json!({"sub": "a", "role": "x"}), json!({})).is_empty());
}

#[test]
fn json_each_query_gives_one_bucket_per_element() {
    let p = plan(
        "bucket_definitions:\n  by_project:\n    parameters: SELECT value AS project_id FROM json_each(request.jwt() -> 'project_ids') WHERE value != 'skip'\n    data:\n      - SELECT * FROM tasks WHERE project_id = bucket.project_id\n",
    );
    let b = resolve(&p, &[], json!({"project_ids": ["a", 2, "skip"]}), json!({}));
    assert_eq!(bucket_names(&b), vec!["by_project[\"a\"]", "by_project[2]"]);
    assert!(
        resolve(&p, &[], json!({}), json!({})).is_empty(),
        "a missing array gives no buckets"
    );
}

#[test]
fn request_functions_and_legacy_parameter_tables() {
    let p = plan(
        "bucket_definitions:\n  b:\n    accept_potentially_dangerous_queries: true\n    parameters: SELECT request.parameter('list') AS a, user_parameters.list AS b, request.parameters() ->> 'list' AS c, token_parameters.region AS d\n    data:\n      - SELECT * FROM t WHERE a = bucket.a AND b = bucket.b AND c = bucket.c AND d = bucket.d\n",
    );
    let b = resolve(
        &p,
        &[],
        json!({"sub": "u", "parameters": {"region": "eu"}}),
        json!({"list": "L"}),
    );
    assert_eq!(bucket_names(&b), vec!["b[\"L\",\"L\",\"L\",\"eu\"]"]);
}

#[test]
fn null_static_parameter_still_gives_a_bucket_but_blob_does_not() {
    let p = plan(
        "bucket_definitions:\n  n:\n    parameters:\n      - SELECT request.jwt() ->> 'org' AS org\n      - SELECT uuid_blob('00000000-0000-0000-0000-000000000000') AS org\n    data:\n      - SELECT * FROM t WHERE org = bucket.org\n",
    );
    assert_eq!(
        bucket_names(&resolve(&p, &[], json!({}), json!({}))),
        vec!["n[null]"]
    );
}

#[test]
fn priorities_come_from_yaml_or_the_priority_column() {
    let p = plan(
        "bucket_definitions:\n  a:\n    priority: 0\n    data: [SELECT * FROM t]\n  b:\n    parameters: SELECT request.user_id() AS u, 2 AS _priority\n    data: [SELECT * FROM t WHERE u = bucket.u]\n  c:\n    data: [SELECT * FROM t]\n",
    );
    let b = resolve(&p, &[], json!({"sub": "x"}), json!({}));
    let got: Vec<(&str, u8)> = b.iter().map(|b| (b.bucket.as_str(), b.priority)).collect();
    assert_eq!(got, vec![("a[]", 0), ("b[\"x\"]", 2), ("c[]", 3)]);
    assert_eq!(
        p.definitions().collect::<Vec<_>>(),
        vec![("a", 0), ("b", 2), ("c", 3)]
    );
}

#[test]
fn integral_real_request_values_find_integer_rows() {
    let p = plan(
        "bucket_definitions:\n  by_org:\n    parameters: SELECT id AS team FROM teams WHERE org = request.jwt() ->> 'org'\n    data:\n      - SELECT * FROM t WHERE team = bucket.team\n",
    );
    let teams = vec![row(&[("id", text("T")), ("org", Value::Integer(7))])];
    assert_eq!(
        bucket_names(&resolve(
            &p,
            &[("teams", teams)],
            json!({"org": 7.0}),
            json!({})
        )),
        vec!["by_org[\"T\"]"]
    );
}

#[test]
fn blob_lookup_values_skip_the_lookup() {
    let p = plan(
        "bucket_definitions:\n  by_key:\n    parameters: SELECT id AS k FROM keys WHERE owner = uuid_blob(request.user_id())\n    data:\n      - SELECT * FROM t WHERE k = bucket.k\n",
    );
    let request = RequestParameters::new(
        &json!({"sub": "00000000-0000-0000-0000-000000000001"}),
        &json!({}),
    );
    let resolution = p.resolve_request(&request, None);
    assert!(resolution.lookups.is_empty());
    assert!(resolution.errors.is_empty());
}

#[test]
fn potentially_dangerous_queries_warn_unless_accepted() {
    let yaml = "bucket_definitions:\n  b:\n    parameters: SELECT request.parameter('list') AS list_id\n    data:\n      - SELECT * FROM todos WHERE list_id = bucket.list_id\n";
    let compiled = compile(yaml).unwrap();
    assert_eq!(compiled.warnings.len(), 1);
    assert!(compiled.warnings[0].to_string().starts_with(
        "3:17: definition 'b', parameter query 1: potentially dangerous query: it reads parameters sent by the client"
    ));
    let accepted = yaml.replace(
        "  b:\n",
        "  b:\n    accept_potentially_dangerous_queries: true\n",
    );
    assert!(compile(&accepted).unwrap().warnings.is_empty());
    let authenticated = yaml.replace(
        "AS list_id\n",
        "AS list_id WHERE request.user_id() IS NOT NULL\n",
    );
    assert!(compile(&authenticated).unwrap().warnings.is_empty());
}

#[test]
fn fixed_json_extract_changes_arrow_paths() {
    let legacy = plan("bucket_definitions:\n  b:\n    parameters: SELECT request.jwt() ->> 'a.b' AS x\n    data: [SELECT * FROM t WHERE x = bucket.x]\n");
    let fixed = plan("config:\n  edition: 2\nbucket_definitions:\n  b:\n    parameters: SELECT request.jwt() ->> 'a.b' AS x\n    data: [SELECT * FROM t WHERE x = bucket.x]\n");
    let claims = json!({"a": {"b": 1}, "a.b": 2});
    assert_eq!(
        bucket_names(&resolve(&legacy, &[], claims.clone(), json!({}))),
        vec!["b[1]"]
    );
    assert_eq!(
        bucket_names(&resolve(&fixed, &[], claims, json!({}))),
        vec!["b[2]"]
    );
    assert!(fixed.config().timestamps_iso8601);
    assert!(fixed.value_options().timestamps_iso8601);
}

#[test]
fn a_full_featured_plan_round_trips_through_json() {
    let yaml = r#"
config:
  edition: 2
  timestamp_max_precision: milliseconds
bucket_definitions:
  everything:
    parameters:
      - SELECT id AS k FROM "Things" WHERE request.user_id() IN members AND org IN request.jwt() -> 'orgs' AND active = TRUE
      - SELECT value AS k FROM json_each(request.parameters() -> 'ks') WHERE request.user_id() IS NOT NULL
      - SELECT CAST(request.jwt() ->> 'k' AS integer) AS k, 1 AS _priority
    data:
      - SELECT *, -1.5 AS neg, substring(name, 2, 3) AS sub, name || '!' AS shout FROM things AS t WHERE bucket.k IN t.ks OR t.k = bucket.k
      - SELECT id, iif(n > 2, 'big', 'small') AS size FROM "other_%" WHERE k = bucket.k AND NOT (x IS NULL)
"#;
    let p = plan(yaml);
    let json = p.to_json();
    assert!(!json.contains("sqlparser"));
    let loaded = Plan::from_json(&json).unwrap();
    assert_eq!(loaded, p);
    let r = row(&[
        ("id", text("i")),
        ("ks", text("[1,2]")),
        ("k", Value::Integer(3)),
        ("name", text("abcdef")),
    ]);
    assert_eq!(eval(&loaded, "things", &r), eval(&p, "things", &r));
    assert_eq!(
        buckets(&eval(&loaded, "things", &r)),
        vec!["everything[1]", "everything[2]", "everything[3]"]
    );
}

#[test]
fn a_stored_plan_of_another_format_is_refused() {
    let p = plan(LISTS);
    let json = p.to_json().replacen("\"format\":1", "\"format\":99", 1);
    let err = Plan::from_json(&json).unwrap_err();
    assert!(err.to_string().contains("format 99"), "{err}");
    assert!(Plan::from_json("{").is_err());
}

#[test]
fn json_each_exposes_key_and_value_also_through_an_alias() {
    let p = plan(
        "bucket_definitions:\n  by_role:\n    parameters: SELECT e.key AS project, value AS role FROM json_each(request.jwt() -> 'roles') AS e WHERE e.value = 'admin'\n    data:\n      - SELECT * FROM tasks WHERE project_id = bucket.project AND required_role = bucket.role\n",
    );
    let b = resolve(
        &p,
        &[],
        json!({"roles": {"p1": "admin", "p2": "viewer"}}),
        json!({}),
    );
    assert_eq!(bucket_names(&b), vec!["by_role[\"p1\",\"admin\"]"]);
    let unqualified = plan(
        "bucket_definitions:\n  by_key:\n    parameters: SELECT key AS k FROM json_each(request.jwt() -> 'roles')\n    data: [SELECT * FROM t WHERE k = bucket.k]\n",
    );
    assert_eq!(
        bucket_names(&resolve(
            &unqualified,
            &[],
            json!({"roles": ["a"]}),
            json!({})
        )),
        vec!["by_key[0]"]
    );
}

#[test]
fn explicit_empty_select_is_a_global_bucket() {
    let p = plan("bucket_definitions:\n  everyone:\n    parameters: SELECT\n    data: [SELECT * FROM notices]\n");
    assert_eq!(
        bucket_names(&resolve(&p, &[], json!({}), json!({}))),
        vec!["everyone[]"]
    );
}

#[test]
fn unquoted_identifiers_with_capitals_get_a_warning() {
    let compiled = compile(
        "bucket_definitions:\n  g:\n    data:\n      - SELECT * FROM Todos WHERE isDone = 0\n",
    )
    .unwrap();
    let warnings: Vec<String> = compiled.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        vec![
            "4:23: definition 'g', data query 1: unquoted identifier Todos is read as 'todos'. Write \"Todos\" to keep the capitals",
            "4:35: definition 'g', data query 1: unquoted identifier isDone is read as 'isdone'. Write \"isDone\" to keep the capitals",
        ]
    );
}

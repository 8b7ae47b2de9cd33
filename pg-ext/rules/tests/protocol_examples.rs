//! The examples of PROTOCOL.md §1.2 and §3.4.1, end to end: compile, replicate rows, resolve a
//! request.

use std::collections::HashMap;

use ferry_rules::{
    compile, BucketDescription, ParameterRow, Plan, RequestParameters, Row, TableRef, Value,
};
use serde_json::json;

const EXAMPLE: &str = r#"
bucket_definitions:
  global_config:                      # no parameters -> single bucket "global_config[]"
    data:
      - SELECT * FROM app_settings
  user_lists:
    priority: 1
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT id, list_id, description, completed FROM todos WHERE owner_id = bucket.owner_id
  org_projects:
    parameters:
      - SELECT org_id FROM org_members WHERE user_id = request.user_id()
      - SELECT request.jwt() ->> 'org' AS org_id
    data:
      - SELECT p.*, upper(p.code) AS code_upper FROM projects AS p WHERE p.org_id = bucket.org_id
"#;

fn row(columns: &[(&str, Value)]) -> Row {
    columns.iter().map(|(n, v)| (*n, v.clone())).collect()
}

/// Replicates `rows` of `table` into an in-memory parameter index.
fn index_rows(
    plan: &Plan,
    table: &str,
    rows: &[Row],
    index: &mut HashMap<String, Vec<ParameterRow>>,
) {
    for r in rows {
        let evaluation = plan.evaluate_parameter_row(&TableRef::public(table), r);
        assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
        for lookup in evaluation.lookups {
            // Store as the extension does (JSON text) and read back.
            let stored = ParameterRow::rows_from_json(&lookup.rows_json()).unwrap();
            index.entry(lookup.lookup.key()).or_default().extend(stored);
        }
    }
}

fn buckets_for(
    plan: &Plan,
    claims: serde_json::Value,
    index: &HashMap<String, Vec<ParameterRow>>,
    version: Option<u64>,
) -> Vec<BucketDescription> {
    let request = RequestParameters::new(&claims, &json!({}));
    let resolution = plan.resolve_request(&request, version);
    assert!(resolution.errors.is_empty(), "{:?}", resolution.errors);
    let dynamic = plan.dynamic_buckets(&request, &resolution, index, version);
    assert!(dynamic.errors.is_empty(), "{:?}", dynamic.errors);
    let mut all = resolution.static_buckets;
    all.extend(dynamic.buckets);
    all
}

fn names(buckets: &[BucketDescription]) -> Vec<&str> {
    let mut names: Vec<&str> = buckets.iter().map(|b| b.bucket.as_str()).collect();
    names.sort();
    names
}

fn membership_index(plan: &Plan) -> HashMap<String, Vec<ParameterRow>> {
    let mut index = HashMap::new();
    index_rows(
        plan,
        "org_members",
        &[
            row(&[
                ("user_id", Value::from("u1")),
                ("org_id", Value::Integer(7)),
            ]),
            row(&[
                ("user_id", Value::from("u1")),
                ("org_id", Value::Integer(9)),
            ]),
            row(&[
                ("user_id", Value::from("u2")),
                ("org_id", Value::Integer(8)),
            ]),
        ],
        &mut index,
    );
    index
}

#[test]
fn worked_example_user_in_orgs_7_and_9_gets_the_documented_buckets() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let index = membership_index(&plan);
    let buckets = buckets_for(&plan, json!({"sub": "u1"}), &index, None);
    assert_eq!(
        names(&buckets),
        vec![
            "global_config[]",
            "org_projects[7]",
            "org_projects[9]",
            "org_projects[null]",
            "user_lists[\"u1\"]",
        ]
    );
}

#[test]
fn worked_example_org_claim_gives_its_bucket_instead_of_null() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let index = membership_index(&plan);
    let buckets = buckets_for(&plan, json!({"sub": "u1", "org": 12}), &index, None);
    assert!(names(&buckets).contains(&"org_projects[12]"));
    assert!(!names(&buckets).contains(&"org_projects[null]"));
}

#[test]
fn worked_example_projects_rows_use_the_alias_as_object_type() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let evaluation = plan.evaluate_row(
        &TableRef::public("projects"),
        &row(&[
            ("id", Value::from("p1")),
            ("org_id", Value::Integer(7)),
            ("code", Value::from("ab")),
            ("_secret", Value::from("x")),
        ]),
        None,
    );
    assert!(evaluation.errors.is_empty());
    assert_eq!(evaluation.outputs.len(), 1);
    let out = &evaluation.outputs[0];
    assert_eq!(out.bucket, "org_projects[7]");
    assert_eq!(out.object_type, "p");
    assert_eq!(out.object_id, "p1");
    assert_eq!(
        out.data,
        r#"{"id":"p1","org_id":7,"code":"ab","code_upper":"AB"}"#
    );
}

#[test]
fn session_example_buckets_and_priorities() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let index = membership_index(&plan);
    // §3.4.1: user u1 with no org membership and no org claim.
    let index: HashMap<_, _> = index
        .into_iter()
        .filter(|(k, _)| !k.contains("\"u1\""))
        .collect();
    let mut buckets = buckets_for(&plan, json!({"sub": "u1"}), &index, None);
    buckets.sort_by(|a, b| a.bucket.cmp(&b.bucket));
    let got: Vec<(&str, u8)> = buckets
        .iter()
        .map(|b| (b.bucket.as_str(), b.priority))
        .collect();
    assert_eq!(
        got,
        vec![
            ("global_config[]", 3),
            ("org_projects[null]", 3),
            ("user_lists[\"u1\"]", 1)
        ]
    );
    let streams: Vec<(&str, u8)> = plan.definitions().collect();
    assert_eq!(
        streams,
        vec![("global_config", 3), ("user_lists", 1), ("org_projects", 3)]
    );
}

#[test]
fn session_example_data_lines() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let lists = plan.evaluate_row(
        &TableRef::public("lists"),
        &row(&[("id", Value::from("L1")), ("owner_id", Value::from("u1"))]),
        None,
    );
    assert_eq!(lists.outputs[0].bucket, "user_lists[\"u1\"]");
    assert_eq!(lists.outputs[0].data, r#"{"id":"L1","owner_id":"u1"}"#);
    let todos = plan.evaluate_row(
        &TableRef::public("todos"),
        &row(&[
            ("id", Value::from("T1")),
            ("list_id", Value::from("L1")),
            ("owner_id", Value::from("u1")),
            ("completed", Value::Integer(0)),
        ]),
        None,
    );
    assert_eq!(todos.outputs[0].object_type, "todos");
    assert_eq!(
        todos.outputs[0].data,
        r#"{"id":"T1","list_id":"L1","completed":0}"#
    );
}

#[test]
fn versioned_bucket_ids_are_prefixed_with_the_version() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let index = membership_index(&plan);
    let buckets = buckets_for(&plan, json!({"sub": "u1"}), &index, Some(4));
    assert!(names(&buckets).contains(&"4#user_lists[\"u1\"]"));
    assert!(names(&buckets).contains(&"4#org_projects[9]"));
    let evaluation = plan.evaluate_row(
        &TableRef::public("app_settings"),
        &row(&[("id", Value::Integer(1))]),
        Some(4),
    );
    assert_eq!(evaluation.outputs[0].bucket, "4#global_config[]");
    assert_eq!(evaluation.outputs[0].object_id, "1");
}

#[test]
fn source_tables_list_every_table_read() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let tables: Vec<String> = plan.source_tables().iter().map(|t| t.to_string()).collect();
    assert_eq!(
        tables,
        vec![
            "public.app_settings",
            "public.lists",
            "public.org_members",
            "public.projects",
            "public.todos"
        ]
    );
}

#[test]
fn plan_round_trips_through_json() {
    let plan = compile(EXAMPLE).unwrap().plan;
    let loaded = Plan::from_json(&plan.to_json()).unwrap();
    assert_eq!(loaded, plan);
    assert_eq!(loaded.source_tables(), plan.source_tables());
}

#[test]
fn readme_example_rules_file_compiles_without_warnings() {
    let readme = include_str!("../README.md");
    let start = readme.find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let compiled = compile(&readme[start..end]).unwrap();
    assert!(compiled.warnings.is_empty());
    assert_eq!(compiled.plan.definitions().count(), 5);
}

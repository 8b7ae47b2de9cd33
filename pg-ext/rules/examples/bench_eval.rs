//! Measures evaluation speed: rows/s through `Plan::evaluate_row` and
//! `Plan::evaluate_parameter_row`, and requests/s through `Plan::resolve_request`, against a
//! document of several dozen queries.
//!
//! Run with `cargo run --release -p ferry-rules --example bench_eval [rows]`.

use std::hint::black_box;
use std::time::Instant;

use ferry_rules::{compile, RequestParameters, Row, TableRef, Value};

/// 40 data queries and 14 parameter queries over 8 tables, 6 of the data queries on `todos`.
fn document() -> String {
    let mut yaml = String::from(
        r#"bucket_definitions:
  global_config:
    data:
      - SELECT * FROM app_settings
  user_lists:
    priority: 1
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM lists WHERE owner_id = bucket.owner_id
      - SELECT id, list_id, description, completed FROM todos WHERE owner_id = bucket.owner_id
      - SELECT id, upper(description) AS title, created_at FROM todos AS todo_titles WHERE owner_id = bucket.owner_id AND completed = 0
  shared_lists:
    parameters: SELECT list_id FROM list_shares WHERE user_id = request.user_id()
    data:
      - SELECT * FROM lists WHERE id = bucket.list_id
      - SELECT * FROM todos WHERE list_id = bucket.list_id
  by_tag:
    parameters: SELECT value AS tag FROM json_each(request.jwt() -> 'tags')
    data:
      - SELECT id, description FROM todos AS tagged WHERE bucket.tag IN tags
  org_projects:
    parameters:
      - SELECT org_id FROM org_members WHERE user_id = request.user_id()
      - SELECT request.jwt() ->> 'org' AS org_id
    data:
      - SELECT p.*, upper(p.code) AS code_upper FROM projects AS p WHERE p.org_id = bucket.org_id
"#,
    );
    // Filler definitions: more queries on other tables, so the index has to do its job.
    for i in 0..10 {
        yaml.push_str(&format!(
            "  region_{i}:\n    parameters: SELECT id AS region FROM regions_{i} WHERE manager = request.user_id()\n    data:\n"
        ));
        for j in 0..3 {
            yaml.push_str(&format!(
                "      - SELECT *, json_extract(meta, '$.k{j}') AS k FROM sites_{j} WHERE region = bucket.region AND active = 1\n"
            ));
        }
    }
    yaml
}

fn todo_row(i: i64) -> Row {
    Row::new(vec![
        (
            "id".to_owned(),
            Value::Text(format!("0b6a1c9e-{i:04}-4c1e-9d7a-3f1e8b2c{i:04}")),
        ),
        (
            "list_id".to_owned(),
            Value::Text(format!("list-{}", i % 50)),
        ),
        (
            "owner_id".to_owned(),
            Value::Text(format!("user-{}", i % 200)),
        ),
        (
            "description".to_owned(),
            Value::Text(format!(
                "Buy {i} apples and some more things to make the text longer"
            )),
        ),
        ("completed".to_owned(), Value::Integer(i % 2)),
        (
            "created_at".to_owned(),
            Value::Text("2024-05-01 12:34:56.789Z".to_owned()),
        ),
        (
            "tags".to_owned(),
            Value::Text(r#"["home","errands"]"#.to_owned()),
        ),
        ("priority".to_owned(), Value::Real(1.0 + (i % 3) as f64)),
        ("_version".to_owned(), Value::Integer(i)),
    ])
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let yaml = document();
    let started = Instant::now();
    let compiled = match compile(&yaml) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let compile_time = started.elapsed();
    let plan = compiled.plan;
    let data_queries: usize = yaml.matches("\n      - SELECT").count();
    println!(
        "document: {} bytes, {data_queries} data queries, {} definitions, {} source tables; compiled in {:.2} ms",
        yaml.len(),
        plan.definitions().count(),
        plan.source_tables().len(),
        compile_time.as_secs_f64() * 1e3
    );

    let todos = TableRef::public("todos");
    let input: Vec<Row> = (0..1000).map(todo_row).collect();
    let sample = plan.evaluate_row(&todos, &input[0], Some(1));
    println!(
        "one todos row → {} bucket memberships, {} errors (e.g. {} {})",
        sample.outputs.len(),
        sample.errors.len(),
        sample.outputs[0].bucket,
        sample.outputs[0].data
    );

    // Warm up, then measure.
    for r in &input {
        black_box(plan.evaluate_row(&todos, r, Some(1)));
    }
    let started = Instant::now();
    let mut outputs = 0usize;
    for i in 0..rows {
        let evaluation = plan.evaluate_row(&todos, &input[i % input.len()], Some(1));
        outputs += evaluation.outputs.len();
        black_box(evaluation);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "evaluate_row:           {:>10.0} rows/s  ({:.2} µs/row, {:.0} bucket memberships/s)",
        rows as f64 / elapsed,
        elapsed / rows as f64 * 1e6,
        outputs as f64 / elapsed
    );

    let members = TableRef::public("org_members");
    let member_rows: Vec<Row> = (0..1000)
        .map(|i| {
            Row::new(vec![
                ("user_id".to_owned(), Value::Text(format!("user-{i}"))),
                ("org_id".to_owned(), Value::Integer(i % 17)),
            ])
        })
        .collect();
    let started = Instant::now();
    for i in 0..rows {
        black_box(plan.evaluate_parameter_row(&members, &member_rows[i % member_rows.len()]));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "evaluate_parameter_row: {:>10.0} rows/s  ({:.2} µs/row)",
        rows as f64 / elapsed,
        elapsed / rows as f64 * 1e6
    );

    let request = RequestParameters::new(
        &serde_json::json!({"sub": "user-7", "org": 3, "tags": ["home", "work"]}),
        &serde_json::json!({}),
    );
    let requests = rows / 10;
    let started = Instant::now();
    for _ in 0..requests {
        black_box(plan.resolve_request(&request, Some(1)));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "resolve_request:        {:>10.0} requests/s  ({:.2} µs/request)",
        requests as f64 / elapsed,
        elapsed / requests as f64 * 1e6
    );
}

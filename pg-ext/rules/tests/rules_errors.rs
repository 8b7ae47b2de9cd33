//! Golden tests: every validation error of a sync rules document, with its exact message,
//! definition, query and YAML position.

fn errors(yaml: &str) -> String {
    match ferry_rules::compile(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn join_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos JOIN lists ON todos.list_id = lists.id WHERE todos.owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:34: definition 'by_user', data query 1: joins are not supported in sync rules. Use a parameter query to look up related ids"##
    );
}

#[test]
fn comma_join_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos, lists WHERE todos.owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:30: definition 'by_user', data query 1: joins are not supported in sync rules (FROM with several tables). Use a parameter query to look up related ids"##
    );
}

#[test]
fn subquery_in_where_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE list_id IN (SELECT id FROM lists) AND owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:35: definition 'by_user', data query 1: subqueries are not supported in sync rules. Use a parameter query to look up related ids"##
    );
}

#[test]
fn subquery_in_from_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM (SELECT * FROM todos) AS t WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: subqueries are not supported in sync rules. Use a parameter query to look up related ids"##
    );
}

#[test]
fn limit_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id LIMIT 10
"##;
    assert_eq!(
        errors(yaml),
        r##"5:64: definition 'by_user', data query 1: LIMIT and OFFSET are not supported in sync rules. Every matching row is synced; narrow the rows with WHERE instead"##
    );
}

#[test]
fn order_by_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id ORDER BY id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: ORDER BY is not supported in sync rules. Every matching row is synced; sort in the client's queries instead"##
    );
}

#[test]
fn group_by_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT owner AS id FROM todos WHERE owner = bucket.user_id GROUP BY owner
"##;
    assert_eq!(
        errors(yaml),
        r##"5:77: definition 'by_user', data query 1: GROUP BY is not supported in sync rules. Sync rules cannot aggregate; each source row is synced on its own"##
    );
}

#[test]
fn having_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT owner AS id FROM todos WHERE owner = bucket.user_id HAVING owner = 'x'
"##;
    assert_eq!(
        errors(yaml),
        r##"5:75: definition 'by_user', data query 1: HAVING is not supported in sync rules. Sync rules cannot aggregate; use WHERE"##
    );
}

#[test]
fn distinct_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT DISTINCT id FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: DISTINCT is not supported in sync rules. Each source row is synced once per bucket anyway; remove DISTINCT"##
    );
}

#[test]
fn union_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id FROM todos WHERE owner = bucket.user_id UNION SELECT id FROM lists WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: UNION, INTERSECT and EXCEPT are not supported in sync rules. Write each query as its own list entry"##
    );
}

#[test]
fn with_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - WITH t AS (SELECT 1) SELECT id FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: WITH (common table expressions) is not supported. It needs config edition 3 (Sync Streams), which ferry does not support yet; inline the query"##
    );
}

#[test]
fn unknown_function_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, soundex(name) AS s FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: unknown function 'soundex'. Supported functions are upper, lower, substring, hex, length, base64, uuid_blob, typeof, ifnull, iif, instr, json_extract, json_array_length, json_valid, json_keys, unixepoch, datetime, st_asgeojson, st_astext, st_x, st_y"##
    );
}

#[test]
fn wrong_argument_count_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, upper(name, 1) AS s FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: upper() takes 1 argument, got 2"##
    );
}

#[test]
fn unknown_operator_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, n % 2 AS odd FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: operator '%' is not supported. Supported operators are = != < > <= >= + - * / || AND OR NOT IS NULL IS NOT NULL IN && -> ->> and CAST"##
    );
}

#[test]
fn like_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id FROM todos WHERE owner = bucket.user_id AND name LIKE 'a%'
"##;
    assert_eq!(
        errors(yaml),
        r##"5:63: definition 'by_user', data query 1: pattern matching (LIKE, ILIKE, SIMILAR TO) is not supported in sync rules. Compare with = or use instr()"##
    );
}

#[test]
fn case_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, CASE WHEN done THEN 1 END AS d FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: CASE expressions are not supported in sync rules. Use iif(condition, then, else)"##
    );
}

#[test]
fn in_list_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id FROM todos WHERE owner = bucket.user_id AND status IN ('a', 'b')
"##;
    assert_eq!(
        errors(yaml),
        r##"5:63: definition 'by_user', data query 1: IN with a list of values is not supported. Put the values in a JSON array: `x IN '["a", "b"]'`, or use `x = 'a' OR x = 'b'`"##
    );
}

#[test]
fn unsupported_cast_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT CAST(id AS varchar) AS id FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:21: definition 'by_user', data query 1: CAST to 'varchar' is not supported. Cast to text, numeric, integer, real or blob"##
    );
}

#[test]
fn data_query_must_cover_every_bucket_parameter() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id, request.jwt() ->> 'org' AS org
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:35: definition 'by_user', data query 1: query must cover all bucket parameters; not matched: bucket.org. Add `<column> = bucket.org` to WHERE (on every side of OR)"##
    );
}

#[test]
fn data_query_without_where_does_not_cover_parameters() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: query must cover all bucket parameters; not matched: bucket.user_id. Add `<column> = bucket.user_id` to WHERE (on every side of OR)"##
    );
}

#[test]
fn or_sides_must_cover_the_same_parameters() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id, request.jwt() ->> 'org' AS org
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id OR org = bucket.org
"##;
    assert_eq!(
        errors(yaml),
        r##"5:35: definition 'by_user', data query 1: both sides of OR must match the same bucket parameters. Split the query into one data query per side of the OR"##
    );
}

#[test]
fn unknown_bucket_parameter_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.owner
"##;
    assert_eq!(
        errors(yaml),
        r##"5:43: definition 'by_user', data query 1: unknown bucket parameter 'bucket.owner'. The bucket parameters are bucket.user_id (the output columns of the parameter queries)"##
    );
}

#[test]
fn bucket_parameter_in_expression_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE upper(owner) = upper(bucket.user_id)
"##;
    assert_eq!(
        errors(yaml),
        r##"5:50: definition 'by_user', data query 1: bucket parameters cannot be used in expressions. Bucket parameters can only be matched against row values: `table.col = bucket.x` or `bucket.x IN table.json_array_col`"##
    );
}

#[test]
fn bucket_parameter_on_right_of_in_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner IN bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:35: definition 'by_user', data query 1: bucket parameters cannot be on the right side of IN. Write `bucket.x IN table.json_array_col`"##
    );
}

#[test]
fn bucket_parameter_as_output_column_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, bucket.user_id AS u FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: output column 'u' cannot use bucket parameters. Output the row column the bucket parameter is matched with"##
    );
}

#[test]
fn explicit_columns_without_id_are_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT name, owner FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: a data query must output an 'id' column. Add `id` to the selected columns, or name the primary key: `SELECT pk AS id, …`"##
    );
}

#[test]
fn expression_column_without_alias_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT id, upper(name) FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:20: definition 'by_user', data query 1: an expression column needs a name. Write `<expression> AS <name>`"##
    );
}

#[test]
fn request_in_data_query_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = request.user_id()
"##;
    assert_eq!(
        errors(yaml),
        r##"5:43: definition 'by_user', data query 1: request.user_id() cannot be used in a data query. Data queries filter on bucket parameters (`bucket.<name>`); read request values in the definition's parameter queries"##
    );
}

#[test]
fn token_parameters_in_data_query_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = token_parameters.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:43: definition 'by_user', data query 1: token_parameters.user_id cannot be used in a data query. Data queries filter on bucket parameters (`bucket.<name>`); read request values in the definition's parameter queries"##
    );
}

#[test]
fn data_query_needs_a_table() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT 1 AS id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: a data query needs FROM <table>. For example: SELECT * FROM todos WHERE list_id = bucket.list_id"##
    );
}

#[test]
fn unknown_table_qualifier_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos AS t WHERE todos.owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:40: definition 'by_user', data query 1: unknown table 'todos' in 'todos.owner'. This query reads only 't'; refer to its columns as `t.owner` or `owner`"##
    );
}

#[test]
fn syntax_error_is_reported_with_position() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:43: definition 'by_user', data query 1: syntax error: expected an expression, found '='"##
    );
}

#[test]
fn non_select_statement_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - DELETE FROM todos
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_user', data query 1: only SELECT queries are allowed. Sync rules queries are SELECT statements"##
    );
}

#[test]
fn bucket_in_parameter_query_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT bucket.user_id AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:24: definition 'by_user', parameter query 1: bucket.user_id cannot be used in a parameter query. Parameter queries define the bucket parameters: output them as columns, e.g. `SELECT request.user_id() AS user_id`"##
    );
}

#[test]
fn table_alias_in_parameter_query_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT l.id AS list_id FROM lists AS l WHERE l.owner = request.user_id()
    data:
      - SELECT * FROM lists WHERE id = bucket.list_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:45: definition 'by_user', parameter query 1: table aliases are not supported in parameter queries ('AS l'). Remove the alias and refer to the table as 'lists'"##
    );
}

#[test]
fn parameter_queries_with_different_columns_are_refused() {
    let yaml = r##"bucket_definitions:
  by_list:
    parameters:
      - SELECT id AS list_id FROM lists WHERE owner = request.user_id()
      - SELECT request.jwt() ->> 'list' AS list
    data:
      - SELECT * FROM todos WHERE list_id = bucket.list_id
"##;
    assert_eq!(
        errors(yaml),
        r##"5:9: definition 'by_list', parameter query 2: all parameter queries of a definition must output the same columns: parameter query 1 outputs (list_id), this one (list). Rename the columns with AS so every parameter query outputs the same bucket parameters"##
    );
}

#[test]
fn more_than_one_expanding_parameter_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT id AS list_id FROM lists WHERE id IN request.jwt() -> 'lists' AND org IN request.jwt() -> 'orgs'
    data:
      - SELECT * FROM todos WHERE list_id = bucket.list_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:55: definition 'by_user', parameter query 1: only one expanding parameter per query, found 2. `table.col IN <request array>` and `&&` expand one lookup per element; split the query so each has at most one"##
    );
}

#[test]
fn row_and_request_values_cannot_mix_in_one_expression() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT id || request.user_id() AS list_id FROM lists
    data:
      - SELECT * FROM todos WHERE list_id = bucket.list_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:24: definition 'by_user', parameter query 1: row values and request values cannot be combined in one expression. Compare them directly: `table.col = request.user_id()` or `request_value IN table.json_array_col`"##
    );
}

#[test]
fn star_in_parameter_query_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT * FROM lists WHERE owner = request.user_id()
    data:
      - SELECT * FROM todos WHERE list_id = bucket.id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:17: definition 'by_user', parameter query 1: * is not supported in parameter queries. List the columns: their names are the bucket parameters"##
    );
}

#[test]
fn priority_out_of_range_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
    priority: 4
"##;
    assert_eq!(
        errors(yaml),
        r##"6:15: definition 'by_user': invalid priority, expected a number between 0 and 3 (inclusive). 0 is synced first, 3 (the default) last"##
    );
}

#[test]
fn priority_column_out_of_range_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id, 9 AS _priority
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:54: definition 'by_user', parameter query 1: _priority must be an integer literal from 0 to 3. For example: SELECT …, 1 AS _priority"##
    );
}

#[test]
fn priority_set_twice_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.user_id() AS user_id, 1 AS _priority
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
    priority: 1
"##;
    assert_eq!(
        errors(yaml),
        r##"3:54: definition 'by_user', parameter query 1: the priority is set twice: by `priority` in the YAML and by a `_priority` column. Keep one of them"##
    );
}

#[test]
fn unknown_request_function_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT request.email() AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:24: definition 'by_user', parameter query 1: unknown function 'request.email'. Request functions are request.user_id(), request.jwt(), request.parameters() and request.parameter('name')"##
    );
}

#[test]
fn json_each_outside_from_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT json_each(request.jwt()) AS user_id
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:24: definition 'by_user', parameter query 1: json_each() can only be used in the FROM clause of a parameter query. Write `SELECT value AS x FROM json_each(request.jwt() -> 'ids')`"##
    );
}

#[test]
fn unknown_table_function_is_refused() {
    let yaml = r##"bucket_definitions:
  by_user:
    parameters: SELECT value AS user_id FROM generate_series(1, 3)
    data:
      - SELECT * FROM todos WHERE owner = bucket.user_id
"##;
    assert_eq!(
        errors(yaml),
        r##"3:46: definition 'by_user', parameter query 1: unknown table-valued function 'generate_series'. The only table-valued function is json_each(<JSON array from the request>)"##
    );
}

#[test]
fn streams_are_not_supported_yet() {
    let yaml = r##"streams:
  s:
    query: SELECT * FROM todos
"##;
    assert_eq!(
        errors(yaml),
        r##"1:1: Sync Streams (`streams`) are not supported yet. Write the streams as bucket_definitions"##
    );
}

#[test]
fn edition_3_is_not_supported_yet() {
    let yaml = r##"config:
  edition: 3
bucket_definitions:
  a:
    data: [SELECT * FROM t]
"##;
    assert_eq!(
        errors(yaml),
        r##"2:12: config edition 3 is not supported yet. Use edition 1 or 2 with bucket_definitions"##
    );
}

#[test]
fn event_definitions_are_not_supported_yet() {
    let yaml = r##"bucket_definitions:
  a:
    data: [SELECT * FROM t]
event_definitions:
  e:
    payloads: [SELECT 1]
"##;
    assert_eq!(
        errors(yaml),
        r##"4:1: `event_definitions` are not supported yet. Remove them; write checkpoints work without them"##
    );
}

#[test]
fn unknown_top_level_key_is_refused() {
    let yaml = r##"bucket_definition:
  a:
    data: [SELECT * FROM t]
"##;
    assert_eq!(
        errors(yaml),
        r##"1:1: unknown top-level key 'bucket_definition'. The allowed keys are bucket_definitions and config
1:1: `bucket_definitions` is required. Define at least one bucket under `bucket_definitions:`"##
    );
}

#[test]
fn unknown_definition_key_is_refused() {
    let yaml = r##"bucket_definitions:
  a:
    datas: [SELECT * FROM t]
"##;
    assert_eq!(
        errors(yaml),
        r##"2:3: definition 'a': a bucket definition needs `data`. Add `data:` with a list of queries, e.g. `- SELECT * FROM todos`
3:5: definition 'a': unknown key 'datas'. The allowed keys are parameters, data, priority and accept_potentially_dangerous_queries"##
    );
}

#[test]
fn duplicate_definition_is_refused() {
    let yaml = r##"bucket_definitions:
  a:
    data: [SELECT * FROM t]
  a:
    data: [SELECT * FROM u]
"##;
    assert_eq!(
        errors(yaml),
        r##"4:3: duplicate bucket definition 'a'. Give each definition its own name"##
    );
}

#[test]
fn data_must_be_a_list() {
    let yaml = r##"bucket_definitions:
  a:
    data: SELECT * FROM t
"##;
    assert_eq!(
        errors(yaml),
        r##"3:11: definition 'a': `data` must be a list of queries, found a string. Write each query as a list entry: `- SELECT …`"##
    );
}

#[test]
fn query_must_be_a_string() {
    let yaml = r##"bucket_definitions:
  a:
    data:
      - 42
"##;
    assert_eq!(
        errors(yaml),
        r##"4:9: definition 'a': each data query must be an SQL string, found a number. Quote the query, or write it as a `|` block"##
    );
}

#[test]
fn empty_document_is_refused() {
    let yaml = r##""##;
    assert_eq!(
        errors(yaml),
        r##"the sync rules document is empty. Start with `bucket_definitions:` and define at least one bucket"##
    );
}

#[test]
fn non_mapping_document_is_refused() {
    let yaml = r##"- a
- b
"##;
    assert_eq!(
        errors(yaml),
        r##"1:1: the sync rules document must be a mapping, found a list. Start with `bucket_definitions:`"##
    );
}

#[test]
fn yaml_syntax_error_is_reported_with_position() {
    let yaml = r##"bucket_definitions:
  a:
    data:
      - SELECT * FROM t
     bad: x
"##;
    assert_eq!(
        errors(yaml),
        r##"5:6: invalid YAML: while parsing a block mapping, did not find expected key. Check indentation and quoting; queries containing ': ' or '#' need quotes or a '|' block"##
    );
}

#[test]
fn yaml_aliases_are_refused() {
    let yaml = r##"bucket_definitions:
  a: &x
    data: [SELECT * FROM t]
  b: *x
"##;
    assert_eq!(
        errors(yaml),
        r##"4:6: YAML aliases (*name) are not supported in sync rules. Write the value out in full"##
    );
}

#[test]
fn config_values_are_checked() {
    let yaml = r##"bucket_definitions: {}
config:
  edition: 2
  timestamp_max_precision: weeks
  fixed_json_extract: maybe
  colour: blue
"##;
    assert_eq!(
        errors(yaml),
        r##"4:28: config `timestamp_max_precision` must be seconds, milliseconds, microseconds or nanoseconds
5:23: config `fixed_json_extract` must be true or false
6:3: unknown config key 'colour'. The allowed keys are edition, storage_version, timestamps_iso8601, versioned_bucket_ids, fixed_json_extract, custom_postgres_types and timestamp_max_precision"##
    );
}

#[test]
fn timestamp_precision_needs_iso_timestamps() {
    let yaml = r##"bucket_definitions: {}
config:
  timestamp_max_precision: seconds
"##;
    assert_eq!(
        errors(yaml),
        r##"3:3: `timestamp_max_precision` requires `timestamps_iso8601`. Set `timestamps_iso8601: true` or use `edition: 2`"##
    );
}

#[test]
fn errors_in_block_scalars_point_into_the_block() {
    let yaml = r##"bucket_definitions:
  a:
    data:
      - |
        SELECT *
          FROM t
          WHERE x = 1 AND
            y = CASE WHEN z THEN 1 END
"##;
    assert_eq!(
        errors(yaml),
        r##"8:17: definition 'a', data query 1: CASE expressions are not supported in sync rules. Use iif(condition, then, else)"##
    );
}

#[test]
fn errors_in_quoted_scalars_skip_escapes() {
    let yaml = r##"bucket_definitions:
  a:
    data:
      - "SELECT * FROM t\n  WHERE \"a\" = 'b' AND c LIKE 'x'"
"##;
    assert_eq!(
        errors(yaml),
        r##"4:51: definition 'a', data query 1: pattern matching (LIKE, ILIKE, SIMILAR TO) is not supported in sync rules. Compare with = or use instr()"##
    );
}

#[test]
fn all_errors_of_a_document_are_reported() {
    let yaml = r##"bucket_definitions:
  a:
    data:
      - SELECT * FROM t LIMIT 1
      - SELECT * FROM t ORDER BY x
  b:
    priority: 9
    data: [SELECT x FROM t]
"##;
    assert_eq!(
        errors(yaml),
        r##"4:31: definition 'a', data query 1: LIMIT and OFFSET are not supported in sync rules. Every matching row is synced; narrow the rows with WHERE instead
5:9: definition 'a', data query 2: ORDER BY is not supported in sync rules. Every matching row is synced; sort in the client's queries instead
7:15: definition 'b': invalid priority, expected a number between 0 and 3 (inclusive). 0 is synced first, 3 (the default) last
8:12: definition 'b', data query 1: a data query must output an 'id' column. Add `id` to the selected columns, or name the primary key: `SELECT pk AS id, …`"##
    );
}

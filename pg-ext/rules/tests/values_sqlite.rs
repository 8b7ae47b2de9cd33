//! Cross-checks of the value layer against real SQLite (bundled with rusqlite): comparisons,
//! arithmetic, `||`, casts, `substring`, `hex`, `length`, `instr`, `typeof`, the JSON functions
//! and the date functions. Each check evaluates the same expression on both sides for many
//! inputs; the documented differences (ferry follows PowerSync there) are listed explicitly so
//! that any other difference fails the test.

use ferry_rules::cast::{cast, CastType};
use ferry_rules::functions::{Function, FunctionOptions};
use ferry_rules::operators;
use ferry_rules::{EvalError, Value};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(*i),
        Value::Real(r) => SqlValue::Real(*r),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(r) => Value::Real(r),
        SqlValue::Text(s) => Value::Text(s),
        SqlValue::Blob(b) => Value::Blob(b),
    }
}

/// Evaluates `SELECT <expr>` with `args` bound as ?1, ?2, …; `Err` with SQLite's message.
fn sqlite(conn: &Connection, expr: &str, args: &[Value]) -> Result<Value, String> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {expr}"))
        .map_err(|e| e.to_string())?;
    let params: Vec<SqlValue> = args.iter().map(to_sql).collect();
    stmt.query_row(rusqlite::params_from_iter(params.iter()), |row| {
        row.get::<_, SqlValue>(0)
    })
    .map(from_sql)
    .map_err(|e| e.to_string())
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

/// Collects mismatches and reports them all at once.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn check(&mut self, what: String, ours: &Value, theirs: &Value) {
        if !same(ours, theirs) {
            self.0
                .push(format!("{what}: ferry {ours:?}, sqlite {theirs:?}"));
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} mismatches:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn sample_values() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Integer(0),
        Value::Integer(1),
        Value::Integer(-1),
        Value::Integer(2),
        Value::Integer(7),
        Value::Integer(i64::MAX),
        Value::Integer(i64::MIN),
        Value::Integer(9_007_199_254_740_993),
        Value::Real(0.0),
        Value::Real(1.0),
        Value::Real(1.5),
        Value::Real(-2.5),
        Value::Real(1e20),
        Value::Real(9_007_199_254_740_992.0),
        Value::Real(9.3e18),
        Value::Text(String::new()),
        Value::Text("1".into()),
        Value::Text("1.5".into()),
        Value::Text(" 12abc".into()),
        Value::Text("abc".into()),
        Value::Text("-3".into()),
        Value::Text("0x10".into()),
        Value::Text("1e3".into()),
        Value::Text("é".into()),
        Value::Text("99999999999999999999".into()),
        Value::Blob(vec![]),
        Value::Blob(b"1".to_vec()),
        Value::Blob(b"abc".to_vec()),
    ]
}

#[test]
fn comparisons_match_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    type Cmp = fn(&Value, &Value) -> Result<Value, EvalError>;
    let ops: [(&str, Cmp); 8] = [
        ("=", operators::eq),
        ("!=", operators::ne),
        ("<", operators::lt),
        ("<=", operators::le),
        (">", operators::gt),
        (">=", operators::ge),
        ("IS", operators::is),
        ("IS NOT", operators::is_not),
    ];
    let values = sample_values();
    for a in &values {
        for b in &values {
            for (symbol, op) in ops {
                let ours = op(a, b);
                if matches!((a, b), (Value::Blob(_), Value::Blob(_))) {
                    // PROTOCOL.md §1.5: comparing two BLOBs is an error in sync rules.
                    assert_eq!(ours, Err(EvalError::BlobComparison));
                    continue;
                }
                let theirs =
                    sqlite(&conn, &format!("?1 {symbol} ?2"), &[a.clone(), b.clone()]).unwrap();
                mismatches.check(format!("{a:?} {symbol} {b:?}"), &ours.unwrap(), &theirs);
            }
        }
    }
    mismatches.assert_none();
}

#[test]
fn arithmetic_matches_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    type Arith = fn(&Value, &Value) -> Value;
    let ops: [(&str, Arith); 4] = [
        ("+", operators::add),
        ("-", operators::sub),
        ("*", operators::mul),
        ("/", operators::div),
    ];
    let values = sample_values();
    for a in &values {
        for b in &values {
            for (symbol, op) in ops {
                let theirs =
                    sqlite(&conn, &format!("?1 {symbol} ?2"), &[a.clone(), b.clone()]).unwrap();
                mismatches.check(format!("{a:?} {symbol} {b:?}"), &op(a, b), &theirs);
            }
        }
        let theirs = sqlite(&conn, "-?1", std::slice::from_ref(a)).unwrap();
        mismatches.check(format!("-{a:?}"), &operators::negate(a), &theirs);
    }
    mismatches.assert_none();
}

/// Values whose text form differs between JavaScript (ferry, PowerSync) and SQLite: REALs.
fn text_form_differs(v: &Value) -> bool {
    matches!(v, Value::Real(_))
}

#[test]
fn concat_matches_sqlite_except_real_formatting() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let values = sample_values();
    for a in values.iter().filter(|v| !text_form_differs(v)) {
        for b in values.iter().filter(|v| !text_form_differs(v)) {
            let theirs = sqlite(&conn, "?1 || ?2", &[a.clone(), b.clone()]).unwrap();
            // SQLite keeps BLOB bytes; ferry decodes them as UTF-8 — same for valid UTF-8.
            mismatches.check(format!("{a:?} || {b:?}"), &operators::concat(a, b), &theirs);
        }
    }
    mismatches.assert_none();
    // The documented difference: REAL → TEXT is JavaScript's formatting.
    assert_eq!(
        operators::concat(&Value::Real(1.0), &Value::Text("x".into())),
        Value::Text("1x".into())
    );
}

#[test]
fn casts_match_sqlite_with_documented_differences() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let mut values = sample_values();
    values.extend(
        [
            "  -12.9xyz",
            "+5",
            ".5",
            "5.",
            "1.2e60abc",
            "-9223372036854775809",
            "9223372036854775807",
            "12e",
            "1e400",
            "\t7\n",
        ]
        .map(|s| Value::Text(s.to_owned())),
    );
    values.extend([Value::Real(-1.7), Value::Real(1e30), Value::Real(-1e30)]);
    for v in &values {
        for ty in [
            CastType::Text,
            CastType::Numeric,
            CastType::Integer,
            CastType::Real,
            CastType::Blob,
        ] {
            let ours = cast(v, ty);
            let theirs = sqlite(
                &conn,
                &format!("CAST(?1 AS {})", ty.name()),
                std::slice::from_ref(v),
            )
            .unwrap();
            let documented = match (v, ty) {
                // REAL → TEXT/BLOB: JavaScript number formatting ('1' for 1.0).
                (Value::Real(_), CastType::Text | CastType::Blob) => true,
                // TEXT/BLOB → NUMERIC by shape: '1e3', '5.', '1.5'… stay REAL; SQLite's CAST
                // turns integral ones into INTEGER.
                (Value::Text(_) | Value::Blob(_), CastType::Numeric) => {
                    matches!((&ours, &theirs), (Value::Real(r), Value::Integer(i)) if *r == *i as f64)
                }
                _ => false,
            };
            if !documented {
                mismatches.check(format!("CAST({v:?} AS {})", ty.name()), &ours, &theirs);
            }
        }
    }
    mismatches.assert_none();
}

fn call(f: Function, args: &[Value]) -> Value {
    f.call(
        args,
        FunctionOptions {
            fixed_json_extract: true,
        },
    )
    .unwrap_or_else(|e| panic!("{f}({args:?}) failed: {e}"))
}

#[test]
fn substring_matches_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let subjects = [
        Value::Text("abcde".into()),
        Value::Text("é😀xyz".into()),
        Value::Text(String::new()),
        Value::Blob(b"abcde".to_vec()),
        Value::Integer(12345),
        Value::Null,
    ];
    for s in &subjects {
        for start in -8i64..=8 {
            let args = [s.clone(), Value::Integer(start)];
            let theirs = sqlite(&conn, "substr(?1, ?2)", &args).unwrap();
            mismatches.check(
                format!("substr({s:?}, {start})"),
                &call(Function::Substring, &args),
                &theirs,
            );
            for len in -8i64..=8 {
                let args = [s.clone(), Value::Integer(start), Value::Integer(len)];
                let theirs = sqlite(&conn, "substr(?1, ?2, ?3)", &args).unwrap();
                mismatches.check(
                    format!("substr({s:?}, {start}, {len})"),
                    &call(Function::Substring, &args),
                    &theirs,
                );
            }
        }
        for (start, len) in [
            (Value::Null, Value::Integer(1)),
            (Value::Integer(1), Value::Null),
            (Value::Text("2".into()), Value::Real(2.7)),
            (Value::Integer(i64::MIN), Value::Integer(i64::MAX)),
            (Value::Integer(i64::MAX), Value::Integer(i64::MIN)),
            (Value::Integer(2), Value::Integer(i64::MIN)),
        ] {
            let args = [s.clone(), start, len];
            let theirs = sqlite(&conn, "substr(?1, ?2, ?3)", &args).unwrap();
            mismatches.check(
                format!("substr{args:?}"),
                &call(Function::Substring, &args),
                &theirs,
            );
        }
    }
    mismatches.assert_none();
}

#[test]
fn text_functions_match_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let values = sample_values();
    for v in values.iter().filter(|v| !text_form_differs(v)) {
        for (f, sql) in [
            (Function::Hex, "hex(?1)"),
            (Function::Length, "length(?1)"),
            (Function::Typeof, "typeof(?1)"),
            (Function::Upper, "upper(?1)"),
            (Function::Lower, "lower(?1)"),
        ] {
            let non_ascii = matches!(v, Value::Text(t) if !t.is_ascii());
            if non_ascii && matches!(f, Function::Upper | Function::Lower) {
                continue; // documented below
            }
            let ours = call(f, std::slice::from_ref(v));
            let theirs = sqlite(&conn, sql, std::slice::from_ref(v)).unwrap();
            mismatches.check(format!("{sql} with {v:?}"), &ours, &theirs);
        }
        for w in values.iter().filter(|v| !text_form_differs(v)) {
            let args = [v.clone(), w.clone()];
            for (f, sql) in [
                (Function::Instr, "instr(?1, ?2)"),
                (Function::Ifnull, "ifnull(?1, ?2)"),
            ] {
                let theirs = sqlite(&conn, sql, &args).unwrap();
                mismatches.check(format!("{sql} with {args:?}"), &call(f, &args), &theirs);
            }
        }
    }
    for (h, n) in [("héllo wörld", "wö"), ("😀😀a", "a"), ("abc", ""), ("", "")] {
        let args = [Value::Text(h.into()), Value::Text(n.into())];
        let theirs = sqlite(&conn, "instr(?1, ?2)", &args).unwrap();
        mismatches.check(
            format!("instr{args:?}"),
            &call(Function::Instr, &args),
            &theirs,
        );
    }
    // Documented difference: ferry upper/lower map all of Unicode, SQLite only ASCII.
    assert_eq!(
        call(Function::Upper, &[Value::Text("é".into())]),
        Value::Text("É".into())
    );
    mismatches.assert_none();
}

#[test]
fn json_functions_match_sqlite_in_fixed_mode() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let docs = [
        r#"{"a":1,"b":"two","c":[1,2,{"d":true}],"n":null,"f":false,"r":1.5,"big":9223372036854775807}"#,
        r#"[10,"x",null,[1,2,3],{"k":"v"}]"#,
        r#""just a string""#,
        "42",
        "{}",
        "[]",
        r#"{"a":{"b":{"c":"deep"}},"a.b":"dotted"}"#,
    ];
    let paths = [
        "$",
        "$.a",
        "$.b",
        "$.c",
        "$.c[1]",
        "$.c[2].d",
        "$.c[#-1]",
        "$.n",
        "$.f",
        "$.r",
        "$.big",
        "$.missing",
        "$[0]",
        "$[3]",
        "$[3][#-1]",
        "$[4].k",
        "$[9]",
        "$.a.b.c",
        "$.\"a.b\"",
    ];
    for doc in docs {
        let d = Value::Text(doc.to_owned());
        for path in paths {
            let p = Value::Text(path.to_owned());
            let args = [d.clone(), p.clone()];
            let theirs = sqlite(&conn, "json_extract(?1, ?2)", &args).unwrap();
            mismatches.check(
                format!("json_extract({doc}, {path})"),
                &call(Function::JsonExtract, &args),
                &theirs,
            );
            let theirs = sqlite(&conn, "?1 ->> ?2", &args).unwrap();
            let ours = operators::json_arrow2(&d, &p, true).unwrap();
            mismatches.check(format!("{doc} ->> {path}"), &ours, &theirs);
            let theirs = sqlite(&conn, "?1 -> ?2", &args).unwrap();
            let ours = operators::json_arrow(&d, &p, true).unwrap();
            mismatches.check(format!("{doc} -> {path}"), &ours, &theirs);
            let theirs = sqlite(&conn, "json_array_length(?1, ?2)", &args).unwrap();
            mismatches.check(
                format!("json_array_length({doc}, {path})"),
                &call(Function::JsonArrayLength, &args),
                &theirs,
            );
        }
        for key in ["a", "b", "a.b", "k", "0"] {
            let args = [d.clone(), Value::Text(key.to_owned())];
            let theirs = sqlite(&conn, "?1 ->> ?2", &args).unwrap();
            let ours = operators::json_arrow2(&args[0], &args[1], true).unwrap();
            // Documented difference: a key that is an array index selects the element of an
            // array (JavaScript property access, as PowerSync); SQLite finds no key there.
            let index_key_on_array = doc.starts_with('[') && key == "0";
            if !index_key_on_array {
                mismatches.check(format!("{doc} ->> '{key}'"), &ours, &theirs);
            }
        }
        let args = [d.clone()];
        let theirs = sqlite(&conn, "json_array_length(?1)", &args).unwrap();
        mismatches.check(
            format!("json_array_length({doc})"),
            &call(Function::JsonArrayLength, &args),
            &theirs,
        );
    }
    for text in [
        "{}",
        "[1,2]",
        "3",
        "\"s\"",
        "true",
        "TRUE",
        "test",
        "{\"a\":1",
        "[1,]",
        "{'a':1}",
        "01",
        "1.",
        ".5",
        "-0",
        "[1e5]",
        "\"\\u00e9\"",
        "\"\\x\"",
        "{\"a\":[{\"b\":null}]}",
        " [1] ",
        "NaN",
    ] {
        let args = [Value::Text(text.to_owned())];
        let theirs = sqlite(&conn, "json_valid(?1)", &args).unwrap();
        mismatches.check(
            format!("json_valid({text})"),
            &call(Function::JsonValid, &args),
            &theirs,
        );
    }
    mismatches.assert_none();
}

#[test]
fn date_functions_match_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let mut mismatches = Mismatches::default();
    let values: Vec<Value> = [
        "2023-06-28 14:12",
        "2023-06-28 14:12:00",
        "2023-06-28 14:12:00+00:00",
        "2023-06-28T16:12+02:00",
        "2023-06-28T16:12-02:30",
        "2023-06-28T16:12+02",
        "2023-06-28 14:12:00Z",
        "2023-06-28 14:12:00.999",
        "2023-06-28 14:12:00.9999",
        "2023-06-28 14:12:59.9996",
        "2023-06-28 14:12:00.1235",
        "2023-06-28",
        "2023-02-31",
        "2024-02-29 23:59:59.5",
        "0000-01-01T00:00",
        "3000-01-01T00:00",
        "9999-12-31 23:59:59.999",
        "-0001-03-01",
        "12:30",
        "12:30:45.5Z",
        "24:00",
        "2023",
        "2023.",
        "2023.123",
        " 2023.5 ",
        "1687961520",
        "2023-6-28",
        "2023-06-28x",
        "2023-06-28 25:00",
        "2023-06-28 24:00",
        "2023-12-31 24:00",
        "24:00:01",
        "2023-06-28T14:12:00.5+14:00",
        "2023-06-28 14:12:00 -05:00 ",
        "now",
        "subsec",
        "",
        "garbage",
    ]
    .iter()
    .map(|s| Value::Text((*s).to_owned()))
    .chain([
        Value::Integer(2023),
        Value::Real(2023.123),
        Value::Integer(1_687_961_520),
        Value::Real(1_687_961_520.567),
        Value::Integer(-1),
        Value::Integer(0),
        Value::Integer(5_373_484),
        Value::Real(-86_400.5),
        Value::Real(253_402_300_799.0),
        Value::Integer(-210_866_760_000),
        Value::Real(1e300),
        Value::Null,
        Value::Blob(b"2023-06-28".to_vec()),
    ])
    .collect();
    let modifier_lists: &[&[&str]] = &[
        &[],
        &["unixepoch"],
        &["unixepoch", "subsec"],
        &["subsec"],
        &["subsecond"],
        &["SUBSEC"],
        &["+1 day"],
        &["-1 days"],
        &["+1.5 hours"],
        &["-90 minutes"],
        &["+30 seconds"],
        &["+1 month"],
        &["-13 months"],
        &["+1.5 months"],
        &["+1 year"],
        &["-2.25 years"],
        &["start of day"],
        &["start of month"],
        &["start of year"],
        &["weekday 0"],
        &["weekday 3"],
        &["+01:30"],
        &["-00:00:30.5"],
        &["+1 fortnight"],
        &["+ 1 day"],
        &["1 day"],
        &["unixepoch", "+1 day"],
        &["+1 day", "unixepoch"],
        &["start of month", "+1 month", "-1 day"],
        &["+1 days", "subsec"],
        &["weekday 7"],
        &["weekday -1"],
        &["weekday -3"],
        &["weekday 1.5"],
        &["auto"],
        &["julianday"],
        &["+1 day", "auto"],
        &["ceiling"],
        &["floor"],
        &["+1 month", "floor"],
        &["+1 month", "ceiling"],
        &["end of day"],
        &["end of month"],
        &["end of year"],
        &["end of week"],
        &["start of week"],
        &["+0001-01-00"],
        &["-0000-02-03 12:30"],
        &["+0000-00-01 01:02:03.5"],
        &["+10000-00-00"],
        &["+0001-12-00"],
        &["-1 month", "+1 month"],
        &["+1 second", "subsec"],
        &["+0.0015 seconds", "subsec"],
        &["-1.5 years", "start of day", "subsec"],
        &["localtime"],
        &["utc"],
        &["+1 DAYS"],
        &["+1 dayss"],
        &["+1"],
        &[""],
    ];
    for v in &values {
        for modifiers in modifier_lists {
            // Documented difference: clock- and time-zone-dependent inputs give NULL in ferry.
            let clock = matches!(v, Value::Text(t) if t == "now" || t == "subsec");
            let zone = modifiers.iter().any(|m| *m == "localtime" || *m == "utc");
            if clock || zone {
                let mut args = vec![v.clone()];
                args.extend(modifiers.iter().map(|m| Value::Text((*m).to_owned())));
                assert_eq!(call(Function::Datetime, &args), Value::Null);
                continue;
            }
            let mut args = vec![v.clone()];
            args.extend(modifiers.iter().map(|m| Value::Text((*m).to_owned())));
            let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
            for (f, name) in [
                (Function::Datetime, "datetime"),
                (Function::Unixepoch, "unixepoch"),
            ] {
                let theirs = sqlite(
                    &conn,
                    &format!("{name}({})", placeholders.join(", ")),
                    &args,
                )
                .unwrap();
                mismatches.check(format!("{name}{args:?}"), &call(f, &args), &theirs);
            }
        }
    }
    mismatches.assert_none();
}

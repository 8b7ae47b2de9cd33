//! Golden tests of the value layer: PowerSync's own expectations for its functions, casts and
//! Postgres conversions (re-stated from its public test suite, PROTOCOL.md §0), the formats of
//! §1.6/§1.7/§2.3, and the text of every evaluation error.

use ferry_rules::cast::{cast, CastType};
use ferry_rules::checksum::{add_checksums, put_checksum, remove_checksum, subkey};
use ferry_rules::functions::{call, Function, FunctionOptions};
use ferry_rules::operators::{self, BinaryOp, UnaryOp};
use ferry_rules::pg_convert::{convert, PgType, Precision, ValueOptions};
use ferry_rules::{bucket_id, bucket_parameters_json, row_json, EvalError, Value};

const LEGACY: FunctionOptions = FunctionOptions {
    fixed_json_extract: false,
};
const FIXED: FunctionOptions = FunctionOptions {
    fixed_json_extract: true,
};

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn i(v: i64) -> Value {
    Value::Integer(v)
}

fn r(v: f64) -> Value {
    Value::Real(v)
}

fn blob(b: &[u8]) -> Value {
    Value::Blob(b.to_vec())
}

/// Calls a function in legacy mode, panicking on an error.
fn f(name: &str, args: &[Value]) -> Value {
    call(name, args, LEGACY).unwrap_or_else(|e| panic!("{name}{args:?}: {e}"))
}

fn err(name: &str, args: &[Value]) -> String {
    match call(name, args, LEGACY) {
        Ok(v) => panic!("{name}{args:?} should fail, gave {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn json_extract_matches_powersync_legacy_and_fixed() {
    assert_eq!(
        f("json_extract", &[t(r#"{"foo":"bar"}"#), t("$.foo")]),
        t("bar")
    );
    assert_eq!(f("json_extract", &[t(r#"{"foo":42}"#), t("$.foo")]), i(42));
    assert_eq!(f("json_extract", &[t(r#"{"foo":true}"#), t("$.foo")]), i(1));
    assert_eq!(
        f("json_extract", &[t(r#"{"foo": 42.0}"#), t("$.foo")]),
        r(42.0)
    );
    assert_eq!(
        f("json_extract", &[t(r#"{"foo":42}"#), t("$.bar.baz")]),
        Value::Null
    );
    assert_eq!(
        f("json_extract", &[t(r#"{"foo":42}"#), t("$")]),
        t(r#"{"foo":42}"#)
    );
    assert_eq!(
        f("json_extract", &[t(r#"{"foo": 42.0}"#), t("$")]),
        t(r#"{"foo":42.0}"#)
    );
    assert_eq!(
        f("json_extract", &[t(r#"{"foo": true}"#), t("$")]),
        t(r#"{"foo":true}"#)
    );
    assert_eq!(
        f("json_extract", &[t(r#"{"foo": null}"#), t("$.foo")]),
        t("null")
    );
    assert_eq!(f("json_extract", &[t("{}"), t("$.foo")]), Value::Null);
    assert_eq!(f("json_extract", &[Value::Null, t("$.foo")]), Value::Null);
    let fixed = call("json_extract", &[t(r#"{"foo": null}"#), t("$.foo")], FIXED);
    assert_eq!(fixed, Ok(Value::Null));
    assert_eq!(
        f(
            "json_extract",
            &[t(r#"{"big":18014398509481982123}"#), t("$")]
        ),
        t(r#"{"big":18014398509481982123}"#)
    );
    assert_eq!(
        f(
            "json_extract",
            &[t(r#"{"big":18014398509481982123}"#), t("$.big")]
        ),
        r(18014398509481982123.0)
    );
}

#[test]
fn arrows_match_powersync_legacy_and_fixed() {
    let arrow2 = |json: &str, path: &str, fixed: bool| {
        operators::json_arrow2(&t(json), &t(path), fixed).unwrap()
    };
    let arrow = |json: &str, path: &str, fixed: bool| {
        operators::json_arrow(&t(json), &t(path), fixed).unwrap()
    };
    for fixed in [false, true] {
        assert_eq!(arrow2(r#"{"foo":"bar"}"#, "$.foo", fixed), t("bar"));
        assert_eq!(arrow2(r#"{"foo":42}"#, "$.foo", fixed), i(42));
        assert_eq!(arrow2(r#"{"foo": 42.0}"#, "$.foo", fixed), r(42.0));
        assert_eq!(arrow2(r#"{"foo":"bar"}"#, "foo", fixed), t("bar"));
        assert_eq!(arrow2(r#"{"foo":42}"#, "foo", fixed), i(42));
        assert_eq!(arrow2(r#"{"foo": 42.0}"#, "$", fixed), t(r#"{"foo":42.0}"#));
        assert_eq!(arrow2(r#"{"foo": true}"#, "$.foo", fixed), i(1));
        assert_eq!(arrow2("{}", "$.foo", fixed), Value::Null);
        assert_eq!(arrow(r#"{"foo":"bar"}"#, "$.foo", fixed), t("\"bar\""));
        assert_eq!(arrow(r#"{"foo":42}"#, "$.foo", fixed), t("42"));
        assert_eq!(arrow(r#"{"foo": 42.0}"#, "$.foo", fixed), t("42.0"));
        assert_eq!(arrow(r#"{"foo":"bar"}"#, "foo", fixed), t("\"bar\""));
        assert_eq!(arrow(r#"{"foo":42}"#, "bar", fixed), Value::Null);
        assert_eq!(arrow(r#"{"foo": 42.0}"#, "$", fixed), t(r#"{"foo":42.0}"#));
        assert_eq!(arrow(r#"{"foo": true}"#, "$.foo", fixed), t("true"));
        assert_eq!(arrow("{}", "$.foo", fixed), Value::Null);
    }
    // JSON null: legacy quirks versus fixed_json_extract.
    assert_eq!(arrow2(r#"{"foo": null}"#, "$.foo", false), t("null"));
    assert_eq!(arrow2(r#"{"foo": null}"#, "$.foo", true), Value::Null);
    assert_eq!(arrow(r#"{"foo": null}"#, "$.foo", false), Value::Null);
    assert_eq!(arrow(r#"{"foo": null}"#, "$.foo", true), t("null"));
    assert_eq!(arrow(r#"{"foo": null}"#, "$.bar", true), Value::Null);
    // Path splitting: legacy always splits on '.', fixed only after '$'.
    let nested = r#"{"a":{"b":1},"a.b":2}"#;
    assert_eq!(arrow2(nested, "a.b", false), i(1));
    assert_eq!(arrow2(nested, "a.b", true), i(2));
    assert_eq!(arrow2(nested, "$.a.b", true), i(1));
    // A JSON text of the JWT, as request.jwt() gives it.
    let jwt = r#"{"sub":"u1","org":7,"roles":["a","b"],"meta":{"x":1.5}}"#;
    assert_eq!(arrow2(jwt, "org", false), i(7));
    assert_eq!(arrow(jwt, "roles", false), t(r#"["a","b"]"#));
    assert_eq!(arrow2(jwt, "meta", false), t(r#"{"x":1.5}"#));
    assert_eq!(
        operators::json_arrow2(&Value::Null, &t("a"), false),
        Ok(Value::Null)
    );
}

#[test]
fn json_functions_match_powersync() {
    assert_eq!(f("json_array_length", &[t("[1,2,3,4]")]), i(4));
    assert_eq!(f("json_array_length", &[t("[1,2,3,4]"), t("$")]), i(4));
    assert_eq!(
        f("json_array_length", &[t("[1,2,3,4]"), t("$.a")]),
        Value::Null
    );
    assert_eq!(
        f("json_array_length", &[t(r#"{"a":[1,2,3,4]}"#), t("$.a")]),
        i(4)
    );
    assert_eq!(f("json_array_length", &[t(r#"{"a":[1,2,3,4]}"#)]), i(0));
    assert_eq!(
        f(
            "json_keys",
            &[t(r#"{"a": 1, "b": "2", "0": "test", "c": {"d": "e"}}"#)]
        ),
        t(r#"["0","a","b","c"]"#)
    );
    assert_eq!(f("json_keys", &[t("{}")]), t("[]"));
    assert_eq!(f("json_keys", &[Value::Null]), Value::Null);
    assert!(call("json_keys", &[t(r#"{"a": 1, "a": 2}"#)], LEGACY).is_err());
    assert!(call("json_keys", &[t("[1,2,3]")], LEGACY).is_err());
    assert!(call("json_keys", &[i(3)], LEGACY).is_err());
    for (json, valid) in [
        (t(r#"{"a": 1, "b": "2", "0": "test", "c": {"d": "e"}}"#), 1),
        (t("{}"), 1),
        (Value::Null, 0),
        (t(r#"{"a": 1, "a": 2}"#), 0),
        (t("[1,2,3]"), 1),
        (i(3), 1),
        (t("test"), 0),
        (t("\"test\""), 1),
        (t("true"), 1),
        (t("TRUE"), 0),
    ] {
        assert_eq!(
            f("json_valid", std::slice::from_ref(&json)),
            i(valid),
            "json_valid({json:?})"
        );
    }
    let each = ferry_rules::json_path::json_each(&t(r#"[1,"a",null]"#), true).unwrap();
    assert_eq!(
        each,
        vec![(i(0), i(1)), (i(1), t("a")), (i(2), Value::Null)]
    );
    let each = ferry_rules::json_path::json_each(&t(r#"{"k":[1]}"#), false).unwrap();
    assert_eq!(each, vec![(t("k"), t("[1]"))]);
}

#[test]
fn scalar_functions_match_powersync() {
    assert_eq!(f("typeof", &[Value::Null]), t("null"));
    assert_eq!(f("typeof", &[t("")]), t("text"));
    assert_eq!(f("typeof", &[i(1)]), t("integer"));
    assert_eq!(f("typeof", &[r(1.0)]), t("real"));
    assert_eq!(f("typeof", &[blob(&[1, 2, 3])]), t("blob"));

    assert_eq!(f("length", &[Value::Null]), Value::Null);
    assert_eq!(f("length", &[t("abc")]), i(3));
    assert_eq!(f("length", &[i(123)]), i(3));
    assert_eq!(f("length", &[r(123.4)]), i(5));
    assert_eq!(f("length", &[blob(&[1, 2, 3])]), i(3));
    assert_eq!(f("length", &[t("é😀")]), i(2));

    assert_eq!(f("hex", &[Value::Null]), t(""));
    assert_eq!(f("hex", &[t("abC")]), t("616243"));
    assert_eq!(f("hex", &[blob(b"abC")]), t("616243"));
    assert_eq!(f("hex", &[i(123)]), t("313233"));
    assert_eq!(f("hex", &[r(123.4)]), t("3132332E34"));

    assert_eq!(f("base64", &[Value::Null]), t(""));
    assert_eq!(f("base64", &[t("abc")]), t("YWJj"));
    assert_eq!(f("base64", &[blob(b"abc")]), t("YWJj"));
    assert_eq!(f("base64", &[i(123)]), t("MTIz"));
    assert_eq!(f("base64", &[r(123.4)]), t("MTIzLjQ="));
    assert_eq!(f("base64", &[t("a")]), t("YQ=="));
    assert_eq!(f("base64", &[t("")]), t(""));

    assert_eq!(f("uuid_blob", &[Value::Null]), Value::Null);
    assert_eq!(
        f("uuid_blob", &[t("550e8400-e29b-41d4-a716-446655440000")]),
        blob(&[85, 14, 132, 0, 226, 155, 65, 212, 167, 22, 68, 102, 85, 68, 0, 0])
    );
    assert_eq!(
        f("uuid_blob", &[t("877b8be2-5a63-48e9-8ece-5e45b1d4f4ae")]),
        blob(&[135, 123, 139, 226, 90, 99, 72, 233, 142, 206, 94, 69, 177, 212, 244, 174])
    );
    assert_eq!(
        f("uuid_blob", &[t("{877B8BE25A6348E98ECE5E45B1D4F4AE}")]),
        f("uuid_blob", &[t("877b8be2-5a63-48e9-8ece-5e45b1d4f4ae")])
    );
    let uuid = f("uuid_blob", &[t("550e8400-e29b-41d4-a716-446655440000")]);
    assert_eq!(f("base64", &[uuid]), t("VQ6EAOKbQdSnFkRmVUQAAA=="));

    assert_eq!(f("ifnull", &[Value::Null, Value::Null]), Value::Null);
    assert_eq!(f("ifnull", &[t("test"), Value::Null]), t("test"));
    assert_eq!(f("ifnull", &[Value::Null, t("test")]), t("test"));
    assert_eq!(f("ifnull", &[t("test1"), t("test2")]), t("test1"));

    assert_eq!(f("iif", &[Value::Null, i(1), i(2)]), i(2));
    assert_eq!(f("iif", &[i(0), i(1), i(2)]), i(2));
    assert_eq!(f("iif", &[i(1), t("first"), t("second")]), t("first"));
    assert_eq!(
        f("iif", &[r(0.1), t("is_true"), t("is_false")]),
        t("is_true")
    );
    assert_eq!(
        f("iif", &[t("a"), t("is_true"), t("is_false")]),
        t("is_false")
    );
    assert_eq!(f("iif", &[i(2), t("is_true"), t("is_false")]), t("is_true"));
    assert_eq!(
        f("iif", &[blob(&[]), t("is_true"), t("is_false")]),
        t("is_false")
    );
    assert_eq!(
        f("iif", &[blob(b"abC"), t("is_true"), t("is_false")]),
        t("is_false")
    );

    assert_eq!(f("upper", &[Value::Null]), Value::Null);
    assert_eq!(f("upper", &[t("abc")]), t("ABC"));
    assert_eq!(f("upper", &[i(123)]), t("123"));
    assert_eq!(f("upper", &[r(3e60)]), t("3E+60"));
    assert_eq!(f("upper", &[blob(b"abC")]), t("ABC"));
    assert_eq!(f("lower", &[t("ABC")]), t("abc"));
    assert_eq!(f("lower", &[r(3e60)]), t("3e+60"));
    assert_eq!(f("lower", &[blob(b"abC")]), t("abc"));

    assert_eq!(f("substring", &[t("abcde"), i(2), i(3)]), t("bcd"));
    assert_eq!(f("substring", &[t("abcde"), i(2)]), t("bcde"));
    assert_eq!(
        f("substring", &[t("abcde"), i(2), Value::Null]),
        Value::Null
    );
    assert_eq!(f("substring", &[t("abcde"), i(0), i(1)]), t(""));
    assert_eq!(f("substring", &[t("abcde"), i(0), i(2)]), t("a"));
    assert_eq!(f("substring", &[t("abcde"), i(1), i(2)]), t("ab"));
    assert_eq!(f("substring", &[t("abcde"), i(-2)]), t("de"));
    assert_eq!(f("substring", &[t("abcde"), i(-2), i(1)]), t("d"));
    assert_eq!(f("substring", &[t("abcde"), i(6), i(-5)]), t("abcde"));
    assert_eq!(f("substring", &[t("abcde"), i(5), i(-2)]), t("cd"));
    assert_eq!(
        f("substr", &[t("2023-06-28 14:12:00.999Z"), i(1), i(10)]),
        t("2023-06-28")
    );
    assert_eq!(f("substring", &[Value::Null, i(1)]), Value::Null);

    assert_eq!(f("instr", &[t("héllo"), t("l")]), i(3));
    assert_eq!(f("instr", &[t("abc"), t("x")]), i(0));
    assert_eq!(f("instr", &[Value::Null, t("x")]), Value::Null);
}

#[test]
fn casts_match_powersync_where_sqlite_agrees() {
    for ty in [
        CastType::Text,
        CastType::Integer,
        CastType::Numeric,
        CastType::Real,
        CastType::Blob,
    ] {
        assert_eq!(cast(&Value::Null, ty), Value::Null);
    }
    assert_eq!(cast(&i(1), CastType::Text), t("1"));
    assert_eq!(cast(&i(1), CastType::Integer), i(1));
    assert_eq!(cast(&i(1), CastType::Numeric), i(1));
    assert_eq!(cast(&i(1), CastType::Real), r(1.0));
    assert_eq!(cast(&i(1), CastType::Blob), blob(b"1"));
    assert_eq!(cast(&r(1.2), CastType::Text), t("1.2"));
    assert_eq!(cast(&r(1.0), CastType::Text), t("1"));
    assert_eq!(cast(&r(1.2), CastType::Integer), i(1));
    assert_eq!(cast(&r(1.2), CastType::Numeric), r(1.2));
    assert_eq!(cast(&r(1.2), CastType::Real), r(1.2));
    assert_eq!(cast(&r(1.2), CastType::Blob), blob(b"1.2"));
    assert_eq!(cast(&t("abc"), CastType::Text), t("abc"));
    assert_eq!(cast(&t("abc"), CastType::Integer), i(0));
    assert_eq!(cast(&t("abc"), CastType::Numeric), i(0));
    assert_eq!(cast(&t("abc"), CastType::Real), r(0.0));
    assert_eq!(cast(&t("1.2abc"), CastType::Integer), i(1));
    assert_eq!(cast(&t("1.2abc"), CastType::Numeric), r(1.2));
    assert_eq!(cast(&t("1.2abc"), CastType::Real), r(1.2));
    assert_eq!(cast(&t("1.2e60abc"), CastType::Numeric), r(1.2e60));
    assert_eq!(cast(&t(" 1e60abc"), CastType::Numeric), r(1e60));
    assert_eq!(cast(&t("abc"), CastType::Blob), blob(b"abc"));
    // ferry follows SQLite for signs and truncation, where PowerSync's engine reads '-5' as 0
    // and floors -1.5 to -2.
    assert_eq!(cast(&t("-5"), CastType::Integer), i(-5));
    assert_eq!(cast(&r(-1.5), CastType::Integer), i(-1));
}

#[test]
fn date_functions_match_powersync() {
    let u = |args: &[Value]| f("unixepoch", args);
    let d = |args: &[Value]| f("datetime", args);
    assert_eq!(u(&[t("now")]), Value::Null);
    assert_eq!(u(&[t("2023-06-28 14:12"), t("bogus")]), Value::Null);
    for (input, epoch, text) in [
        ("2023-06-28 14:12", 1687961520, "2023-06-28 14:12:00"),
        ("2023-06-28 14:12:00", 1687961520, "2023-06-28 14:12:00"),
        (
            "2023-06-28 14:12:00+00:00",
            1687961520,
            "2023-06-28 14:12:00",
        ),
        ("2023-06-28 14:12:00Z", 1687961520, "2023-06-28 14:12:00"),
        ("2023-06-28 14:12:00.999", 1687961520, "2023-06-28 14:12:00"),
        (
            "2023-06-28 14:12:00.999Z",
            1687961520,
            "2023-06-28 14:12:00",
        ),
        (
            "2023-06-28T14:12:00.999Z",
            1687961520,
            "2023-06-28 14:12:00",
        ),
        (
            "2023-06-28T14:12:00+00:00",
            1687961520,
            "2023-06-28 14:12:00",
        ),
        ("2023-06-28T14:12+00:00", 1687961520, "2023-06-28 14:12:00"),
        ("2023-06-28T16:12+02:00", 1687961520, "2023-06-28 14:12:00"),
        ("2023-06-28", 1687910400, "2023-06-28 00:00:00"),
        ("0000-01-01T00:00", -62167219200, "0000-01-01 00:00:00"),
        ("3000-01-01T00:00", 32503680000, "3000-01-01 00:00:00"),
        ("2023", -210691972800, "-4707-06-08 12:00:00"),
        ("2023.", -210691972800, "-4707-06-08 12:00:00"),
        ("2023.123", -210691962173, "-4707-06-08 14:57:07"),
    ] {
        assert_eq!(u(&[t(input)]), i(epoch), "unixepoch('{input}')");
        assert_eq!(d(&[t(input)]), t(text), "datetime('{input}')");
    }
    assert_eq!(u(&[t("2023-06-28T16:12+02")]), Value::Null);
    assert_eq!(d(&[t("2023-06-28T16:12+02")]), Value::Null);
    assert_eq!(u(&[i(2023)]), i(-210691972800));
    assert_eq!(u(&[r(2023.123)]), i(-210691962173));
    assert_eq!(d(&[r(2023.123)]), t("-4707-06-08 14:57:07"));
    assert_eq!(u(&[i(1687961520), t("unixepoch")]), i(1687961520));
    assert_eq!(u(&[r(1687961520.567), t("unixepoch")]), i(1687961520));
    assert_eq!(
        u(&[r(1687961520.567), t("unixepoch"), t("subsec")]),
        r(1687961520.567)
    );
    assert_eq!(
        u(&[r(1687961520.567), t("unixepoch"), t("subsecond")]),
        r(1687961520.567)
    );
    assert_eq!(
        d(&[i(1687961520), t("unixepoch")]),
        t("2023-06-28 14:12:00")
    );
    assert_eq!(
        d(&[r(1687961520.567), t("unixepoch")]),
        t("2023-06-28 14:12:00")
    );
    assert_eq!(
        d(&[r(1687961520.567), t("unixepoch"), t("subsec")]),
        t("2023-06-28 14:12:00.567")
    );
    assert_eq!(
        u(&[t("2023-06-28 14:12:00.999"), t("subsec")]),
        r(1687961520.999)
    );
    assert_eq!(
        u(&[t("2023-06-28 14:12:00.0"), t("subsecond")]),
        r(1687961520.0)
    );
    assert_eq!(
        d(&[t("2023-06-28 14:12:00.999"), t("subsecond")]),
        t("2023-06-28 14:12:00.999")
    );
    assert_eq!(
        d(&[t("2023-06-28 14:12:00.0"), t("subsecond")]),
        t("2023-06-28 14:12:00.000")
    );
    // ferry's extra modifiers.
    assert_eq!(
        d(&[t("2023-06-28 14:12"), t("+1 day"), t("-2 hours")]),
        t("2023-06-29 12:12:00")
    );
    assert_eq!(u(&[Value::Null]), Value::Null);
}

const POINT: &str = "0101000000029a081b9ede4340d7a3703d0a3f5ac0";
const POLYGON: &str = "01030000000100000005000000000000000000000000000000000000000000000000000000000000000000f03f000000000000f03f000000000000f03f000000000000f03f000000000000000000000000000000000000000000000000";
const LINESTRING: &str =
    "01020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f";
const MULTIPOINT: &str = "0104000000020000000101000000000000000000f03f0000000000000040010100000000000000000008400000000000001040";
const POINT_Z: &str = "0101000080000000000000f03f00000000000000400000000000000840";
const POINT_SRID: &str = "0101000020e6100000000000000000f03f0000000000000040";
const COLLECTION: &str = "0107000000020000000101000000000000000000f03f000000000000004001020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f";
const BIG_ENDIAN_POINT: &str = "00000000013ff8000000000000c000000000000000";
const MULTILINESTRING: &str = "01050000000100000001020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f";

#[test]
fn geometry_functions_match_powersync() {
    assert_eq!(f("st_asgeojson", &[Value::Null]), Value::Null);
    assert_eq!(
        f("st_asgeojson", &[t(POINT)]),
        t(r#"{"type":"Point","coordinates":[39.7392,-104.985]}"#)
    );
    assert_eq!(
        f("st_asgeojson", &[t(POLYGON)]),
        t(
            r#"{"type":"Polygon","coordinates":[[[0.0,0.0],[0.0,1.0],[1.0,1.0],[1.0,0.0],[0.0,0.0]]]}"#
        )
    );
    assert_eq!(f("st_x", &[Value::Null]), Value::Null);
    assert_eq!(f("st_x", &[t(POINT)]), r(39.7392));
    assert_eq!(f("st_x", &[t(POLYGON)]), Value::Null);
    assert_eq!(f("st_y", &[t(POINT)]), r(-104.985));
    assert_eq!(f("st_astext", &[t(POINT)]), t("POINT(39.7392 -104.985)"));
    assert_eq!(
        f("st_astext", &[t(&POLYGON.to_uppercase())]),
        t("POLYGON((0 0,0 1,1 1,1 0,0 0))")
    );
    assert_eq!(f("st_astext", &[t(LINESTRING)]), t("LINESTRING(0 0,1 1)"));
    assert_eq!(f("st_astext", &[t(MULTIPOINT)]), t("MULTIPOINT(1 2,3 4)"));
    assert_eq!(
        f("st_asgeojson", &[t(MULTIPOINT)]),
        t(r#"{"type":"MultiPoint","coordinates":[[1.0,2.0],[3.0,4.0]]}"#)
    );
    assert_eq!(f("st_astext", &[t(POINT_Z)]), t("POINT Z (1 2 3)"));
    assert_eq!(
        f("st_asgeojson", &[t(POINT_Z)]),
        t(r#"{"type":"Point","coordinates":[1.0,2.0,3.0]}"#)
    );
    assert_eq!(f("st_astext", &[t(POINT_SRID)]), t("POINT(1 2)"));
    assert_eq!(f("st_x", &[t(POINT_SRID)]), r(1.0));
    assert_eq!(
        f("st_astext", &[t(COLLECTION)]),
        t("GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))")
    );
    assert_eq!(
        f("st_asgeojson", &[t(COLLECTION)]),
        t(
            r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1.0,2.0]},{"type":"LineString","coordinates":[[0.0,0.0],[1.0,1.0]]}]}"#
        )
    );
    assert_eq!(f("st_astext", &[t(BIG_ENDIAN_POINT)]), t("POINT(1.5 -2)"));
    assert_eq!(
        f("st_astext", &[t(MULTILINESTRING)]),
        t("MULTILINESTRING((0 0,1 1))")
    );
    let bytes = ferry_rules::functions::hex_decode(POINT).unwrap();
    assert_eq!(f("st_x", &[Value::Blob(bytes)]), r(39.7392));
    assert_eq!(f("st_x", &[i(5)]), Value::Null);
}

#[test]
fn pg_scalars_convert_like_powersync() {
    let legacy = ValueOptions::default();
    let iso = ValueOptions {
        timestamps_iso8601: true,
        timestamp_max_precision: Precision::Microseconds,
    };
    let c = |ty: PgType, text: &str| convert(&ty, text, &legacy);
    let ci = |ty: PgType, text: &str| convert(&ty, text, &iso);
    use PgType::*;
    assert_eq!(c(Text, "text"), t("text"));
    assert_eq!(
        c(Uuid, "baeb2514-4c57-436d-b3cc-c1256211656d"),
        t("baeb2514-4c57-436d-b3cc-c1256211656d")
    );
    assert_eq!(c(Bool, "t"), i(1));
    assert_eq!(c(Bool, "f"), i(0));
    assert_eq!(c(Bytea, "\\x74657374"), blob(b"test"));
    assert_eq!(c(Int2, "1000"), i(1000));
    assert_eq!(c(Int4, "1000000"), i(1_000_000));
    assert_eq!(c(Int8, "9007199254740993"), i(9_007_199_254_740_993));
    assert_eq!(c(Float4, "3.25"), r(3.25));
    assert_eq!(c(Float8, "314"), r(314.0));
    assert_eq!(c(Float8, "-1.5e-7"), r(-1.5e-7));
    assert!(matches!(c(Float8, "NaN"), Value::Real(v) if v.is_nan()));
    assert_eq!(c(Float8, "Infinity"), r(f64::INFINITY));
    assert_eq!(c(Float8, "-Infinity"), r(f64::NEG_INFINITY));
    assert_eq!(
        c(Numeric, "18014398509481982123"),
        t("18014398509481982123")
    );
    assert_eq!(c(Money, "$1,000.00"), t("$1,000.00"));
    assert_eq!(
        c(Json, "{\"test\": \"thing\" }"),
        t("{\"test\": \"thing\" }")
    );
    assert_eq!(
        c(Jsonb, "{\"test\": \"thing\"}"),
        t("{\"test\": \"thing\"}")
    );
    assert_eq!(c(Date, "2023-03-06"), t("2023-03-06"));
    assert_eq!(c(Date, "-infinity"), t("0000-01-01"));
    assert_eq!(c(Date, "infinity"), t("9999-12-31"));
    assert_eq!(c(Date, "0044-03-15 BC"), t("0044-03-15 BC"));
    assert_eq!(c(Time, "15:47:00"), t("15:47:00"));
    assert_eq!(ci(Time, "15:47:00"), t("15:47:00.000000"));
    assert_eq!(c(Time, "17:42:01.12"), t("17:42:01.12"));
    assert_eq!(ci(Time, "17:42:01.12"), t("17:42:01.120000"));
    assert_eq!(c(Time, "00:00:00"), t("00:00:00"));
    assert_eq!(
        c(Timestamp, "2023-03-06 15:47:00"),
        t("2023-03-06 15:47:00")
    );
    assert_eq!(
        ci(Timestamp, "2023-03-06 15:47:00"),
        t("2023-03-06T15:47:00.000000")
    );
    assert_eq!(
        c(Timestamp, "2023-03-06 15:47:12.4"),
        t("2023-03-06 15:47:12.4")
    );
    assert_eq!(
        ci(Timestamp, "2023-03-06 15:47:12.4"),
        t("2023-03-06T15:47:12.400000")
    );
    assert_eq!(
        c(Timestamptz, "2023-03-06 13:47:00+00"),
        t("2023-03-06 13:47:00Z")
    );
    assert_eq!(
        ci(Timestamptz, "2023-03-06 13:47:00+00"),
        t("2023-03-06T13:47:00.000000Z")
    );
    assert_eq!(c(Timestamp, "-infinity"), t("0000-01-01 00:00:00"));
    assert_eq!(ci(Timestamp, "-infinity"), t("0000-01-01T00:00:00"));
    assert_eq!(c(Timestamptz, "-infinity"), t("0000-01-01 00:00:00Z"));
    assert_eq!(ci(Timestamptz, "infinity"), t("9999-12-31T23:59:59Z"));
    assert_eq!(ci(Timestamp, "infinity"), t("9999-12-31T23:59:59"));
    assert_eq!(
        c(Timestamp, "1970-01-01 00:00:00"),
        t("1970-01-01 00:00:00")
    );
    assert_eq!(
        ci(Timestamptz, "1970-01-01 00:00:00+00"),
        t("1970-01-01T00:00:00.000000Z")
    );
    assert_eq!(
        c(Timestamptz, "0022-02-03 09:13:14+00"),
        t("0022-02-03 09:13:14Z")
    );
    assert_eq!(
        ci(Timestamptz, "0022-02-03 09:13:14+00"),
        t("0022-02-03T09:13:14.000000Z")
    );
    assert_eq!(c(PgLsn, "16/B374D848"), t("00000016/B374D848"));
    assert_eq!(c(Interval, "01:00:00"), t("01:00:00"));
    assert_eq!(c(Other, "00:00:5e:00:53:af"), t("00:00:5e:00:53:af"));
    assert_eq!(c(Oid, "1007"), i(1007));
    // Malformed input comes back as text, unchanged.
    for (ty, text) in [
        (Int4, "12x"),
        (Bool, "yes"),
        (Float8, "fast"),
        (Bytea, "\\x123"),
        (Bytea, "plain"),
        (Timestamp, "2023-03-06"),
        (Timestamptz, "2023-03-06 13:47:00"),
        (Time, "25h"),
        (PgLsn, "nope"),
        (Array(Box::new(Int4)), "{1,2"),
        (Array(Box::new(Int4)), "1,2"),
    ] {
        assert_eq!(c(ty.clone(), text), t(text), "{ty:?} {text:?}");
    }
}

#[test]
fn pg_arrays_convert_like_powersync() {
    let legacy = ValueOptions::default();
    let arr = |elem: PgType, text: &str| convert(&PgType::Array(Box::new(elem)), text, &legacy);
    use PgType::*;
    assert_eq!(
        arr(Text, r#"{text,"}te][xt{\""}"#),
        t(r#"["text","}te][xt{\""]"#)
    );
    assert_eq!(
        arr(Uuid, "{baeb2514-4c57-436d-b3cc-c1256211656d}"),
        t(r#"["baeb2514-4c57-436d-b3cc-c1256211656d"]"#)
    );
    assert_eq!(arr(Text, "{varchar}"), t(r#"["varchar"]"#));
    assert_eq!(arr(Bool, "{t}"), t("[1]"));
    assert_eq!(arr(Bytea, r#"{"\\x74657374"}"#), t("[null]"));
    assert_eq!(arr(Int2, "{1000}"), t("[1000]"));
    assert_eq!(arr(Int8, "{9007199254740993}"), t("[9007199254740993]"));
    assert_eq!(
        arr(Numeric, "{18014398509481982123}"),
        t(r#"["18014398509481982123"]"#)
    );
    assert_eq!(
        arr(
            Json,
            r#"{"{\"test\": \"thing\"}","{\"test\": \"}te][xt{\"}"}"#
        ),
        t(r#"[{"test": "thing"},{"test": "}te][xt{"}]"#)
    );
    assert_eq!(
        arr(
            Jsonb,
            r#"{"{\"foo\": 5.0, \"bool\": true, \"test\": \"thing\", \"bignum\": 18014398509481982123}"}"#
        ),
        t(r#"[{"foo": 5.0, "bool": true, "test": "thing", "bignum": 18014398509481982123}]"#)
    );
    assert_eq!(arr(Date, "{2023-03-06}"), t(r#"["2023-03-06"]"#));
    assert_eq!(arr(Time, "{15:47:00}"), t(r#"["15:47:00"]"#));
    assert_eq!(
        arr(Timestamp, r#"{"2023-03-06 15:47:00"}"#),
        t(r#"["2023-03-06 15:47:00"]"#)
    );
    assert_eq!(
        arr(
            Timestamptz,
            r#"{"2023-03-06 13:47:00+00","2023-03-06 13:47:00.12345+00"}"#
        ),
        t(r#"["2023-03-06 13:47:00Z","2023-03-06 13:47:00.12345Z"]"#)
    );
    assert_eq!(arr(PgLsn, "{16/B374D848}"), t(r#"["00000016/B374D848"]"#));
    assert_eq!(arr(Interval, "{01:00:00}"), t(r#"["01:00:00"]"#));
    assert_eq!(arr(Other, "{127.0.0.1}"), t(r#"["127.0.0.1"]"#));
    assert_eq!(arr(Oid, "{1007}"), t("[1007]"));
    assert_eq!(arr(Text, "{}"), t("[]"));
    assert_eq!(
        arr(Text, "{{one,1},{two,2},{three,NULL}}"),
        t(r#"[["one","1"],["two","2"],["three",null]]"#)
    );
    assert_eq!(arr(Text, "{NULL}"), t("[null]"));
    assert_eq!(arr(Text, r#"{"null"}"#), t(r#"["null"]"#));
    assert_eq!(arr(Int4, "[0:2]={1,2,3}"), t("[1,2,3]"));
    assert_eq!(arr(Int4, "[1:2][1:1]={{1},{2}}"), t("[[1],[2]]"));
    assert_eq!(
        arr(Float8, "{1,1.5,NaN,-Infinity}"),
        t("[1.0,1.5,null,null]")
    );
    assert_eq!(
        arr(Text, r#"{"a,b","c\\d",  e f  ,""}"#),
        t(r#"["a,b","c\\d","e f",""]"#)
    );
    let iso = ValueOptions {
        timestamps_iso8601: true,
        timestamp_max_precision: Precision::Milliseconds,
    };
    assert_eq!(
        convert(
            &Array(Box::new(Timestamp)),
            r#"{"2023-03-06 15:47:00.123456"}"#,
            &iso
        ),
        t(r#"["2023-03-06T15:47:00.123"]"#)
    );
}

#[test]
fn builtin_oids_map_to_conversions() {
    use PgType::*;
    let arr = |t: PgType| Array(Box::new(t));
    for (oid, expected) in [
        (16, Bool),
        (17, Bytea),
        (19, Text),
        (20, Int8),
        (21, Int2),
        (23, Int4),
        (25, Text),
        (26, Oid),
        (114, Json),
        (700, Float4),
        (701, Float8),
        (790, Money),
        (1042, Text),
        (1043, Text),
        (1082, Date),
        (1083, Time),
        (1114, Timestamp),
        (1184, Timestamptz),
        (1186, Interval),
        (1266, TimeTz),
        (1700, Numeric),
        (2950, Uuid),
        (3220, PgLsn),
        (3802, Jsonb),
        (869, Other),
        (1000, arr(Bool)),
        (1005, arr(Int2)),
        (1007, arr(Int4)),
        (1009, arr(Text)),
        (1015, arr(Text)),
        (1016, arr(Int8)),
        (1021, arr(Float4)),
        (1022, arr(Float8)),
        (1115, arr(Timestamp)),
        (1182, arr(Date)),
        (1185, arr(Timestamptz)),
        (1231, arr(Numeric)),
        (2951, arr(Uuid)),
        (3807, arr(Jsonb)),
        (199, arr(Json)),
        (1041, arr(Other)),
        (1020, Other),
    ] {
        assert_eq!(PgType::from_builtin_oid(oid), Some(expected), "oid {oid}");
    }
    assert_eq!(PgType::from_builtin_oid(16_385), None);
    let json = serde_json::to_string(&arr(Int4)).unwrap();
    assert_eq!(json, r#"{"array":"int4"}"#);
    assert_eq!(serde_json::from_str::<PgType>(&json).unwrap(), arr(Int4));
    let options: ValueOptions =
        serde_json::from_str(r#"{"timestamps_iso8601":true,"timestamp_max_precision":"seconds"}"#)
            .unwrap();
    assert_eq!(options.timestamp_max_precision, Precision::Seconds);
    assert_eq!(
        serde_json::from_str::<ValueOptions>("{}").unwrap(),
        ValueOptions::default()
    );
}

#[test]
fn row_json_and_bucket_ids_have_the_documented_formats() {
    let columns = [
        ("id", t("t1")),
        ("description", t("Buy \"milk\"\n")),
        ("done", i(0)),
        ("price", r(3.0)),
        ("ratio", r(0.25)),
        ("big", i(9_007_199_254_740_993)),
        ("photo", blob(&[0xff])),
        ("note", Value::Null),
    ];
    assert_eq!(
        row_json(columns.iter().map(|(k, v)| (*k, v))),
        r#"{"id":"t1","description":"Buy \"milk\"\n","done":0,"price":3.0,"ratio":0.25,"big":9007199254740993,"note":null}"#
    );
    assert_eq!(
        bucket_parameters_json(&[i(1), r(1.0), t("é\u{7}")]).as_deref(),
        Some("[1,1,\"é\\u0007\"]")
    );
    assert_eq!(bucket_id(None, "global", &[]).as_deref(), Some("global[]"));
    assert_eq!(
        bucket_id(Some(2), "by_user", &[t("u_123")]).as_deref(),
        Some("2#by_user[\"u_123\"]")
    );
    assert_eq!(
        bucket_id(None, "org_projects", &[Value::Null]).as_deref(),
        Some("org_projects[null]")
    );
}

#[test]
fn checksums_are_pinned() {
    assert_eq!(
        put_checksum(
            "todos",
            "t1",
            r#"{"id":"t1","description":"Buy milk","done":0}"#
        ),
        3_377_212_916
    );
    assert_eq!(remove_checksum("3f1e"), 3_769_281_599);
    assert_eq!(
        put_checksum("lists", "l1", r#"{"id":"l1","name":"é"}"#),
        356_842_070
    );
    assert_eq!(add_checksums(3_377_212_916, 3_769_281_599), 2_851_527_219);
    assert_eq!(
        subkey("public.todos", "[\"t1\"]"),
        "ef711d740128ecbda8b4dbb4635174c5"
    );
}

#[test]
fn operators_dispatch_and_error_messages() {
    assert_eq!(BinaryOp::Add.eval(&i(1), &r(0.5), false), Ok(r(1.5)));
    assert_eq!(BinaryOp::Concat.eval(&t("a"), &i(1), false), Ok(t("a1")));
    assert_eq!(
        BinaryOp::JsonArrow2.eval(&t(r#"{"a.b":1}"#), &t("a.b"), true),
        Ok(i(1))
    );
    assert_eq!(BinaryOp::In.symbol(), "IN");
    assert_eq!(UnaryOp::Not.eval(&Value::Null), i(1));
    assert_eq!(UnaryOp::IsNull.eval(&Value::Null), i(1));
    assert_eq!(UnaryOp::Negate.eval(&t("2")), i(-2));

    let messages = [
        (
            operators::eq(&blob(b"a"), &blob(b"a")).unwrap_err(),
            "cannot compare two BLOB values; convert them first, e.g. with hex() or base64()",
        ),
        (
            operators::in_json_array(&i(1), &t("nope")).unwrap_err(),
            "IN: the right operand must be a JSON array text, got malformed JSON (invalid literal at byte 0): 'nope'",
        ),
        (
            operators::overlap(&i(1), &t("[1]")).unwrap_err(),
            "&&: the left operand must be a JSON array text, got an INTEGER value",
        ),
        (
            operators::json_arrow(&t("{"), &t("a"), false).unwrap_err(),
            "->: malformed JSON: unexpected end of JSON at byte 1",
        ),
        (
            operators::json_arrow2(&t("{}"), &t("$[x]"), false).unwrap_err(),
            "->>: bad JSON path '$[x]': expected $, $.key, $.\"key\", $[n] or $[#-n] steps",
        ),
    ];
    for (error, message) in messages {
        assert_eq!(error.to_string(), message);
    }
    assert_eq!(
        err("json_extract", &[t("{}"), t("a.b")]),
        "json_extract: path must start with '$', got 'a.b'"
    );
    assert_eq!(
        err("json_extract", &[t("{\"a\":1,\"a\":2}"), t("$")]),
        "json_extract: malformed JSON: duplicate key 'a' in object at byte 0"
    );
    assert_eq!(
        err("json_keys", &[t("[1]")]),
        "json_keys: expected a JSON object, got a JSON array"
    );
    assert_eq!(
        err("uuid_blob", &[t("non-uuid")]),
        "uuid_blob: not a UUID: 'non-uuid'"
    );
    assert_eq!(
        err("st_astext", &[t("zz")]),
        "st_astext: invalid geometry: not hex-encoded WKB: 'zz'"
    );
    assert_eq!(
        err("st_astext", &[t("0101000000")]),
        "st_astext: invalid geometry: truncated at byte 5 of 5"
    );
    assert_eq!(
        err("st_asgeojson", &[t("010800000000000000")]),
        "st_asgeojson: unsupported geometry type 8; supported are Point, LineString, Polygon, MultiPoint, MultiLineString, MultiPolygon and GeometryCollection"
    );
    assert_eq!(
        err("st_x", &[t("01020000000000ffff")]),
        "st_x: invalid geometry: count 4294901760 exceeds the remaining 0 bytes"
    );
    assert_eq!(err("upper", &[]), "upper() takes 1 argument, got 0");
    assert_eq!(
        err("substring", &[t("a")]),
        "substring() takes 2 or 3 arguments, got 1"
    );
    assert_eq!(
        err("json_array_length", &[]),
        "json_array_length() takes 1 or 2 arguments, got 0"
    );
    assert_eq!(
        err("datetime", &[]),
        "datetime() takes at least 1 argument, got 0"
    );
    assert_eq!(err("nope", &[]), "unknown function 'nope'");
    assert_eq!(
        EvalError::MalformedJson {
            function: "x",
            message: "m".into()
        }
        .to_string(),
        "x: malformed JSON: m"
    );
}

#[test]
fn functions_resolve_by_name_once() {
    assert_eq!(Function::from_name("SUBSTR"), Some(Function::Substring));
    assert_eq!(
        Function::from_name("St_AsGeoJSON"),
        Some(Function::StAsGeoJson)
    );
    assert_eq!(Function::from_name("json_each"), None);
    assert_eq!(Function::from_name("coalesce"), None);
    for function in Function::ALL {
        assert_eq!(Function::from_name(function.name()), Some(function));
        let json = serde_json::to_string(&function).unwrap();
        assert_eq!(json, format!("\"{}\"", function.name()));
        assert_eq!(serde_json::from_str::<Function>(&json).unwrap(), function);
    }
    assert_eq!(Function::Iif.arity(), (3, Some(3)));
    assert_eq!(Function::Datetime.arity(), (1, None));
    assert!(Function::JsonArrayLength.accepts(2));
    assert!(!Function::JsonArrayLength.accepts(3));
    assert!(serde_json::from_str::<Function>("\"coalesce\"").is_err());
}

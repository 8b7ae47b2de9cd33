//! The read functions that need the rules: a user's buckets and checkpoint (for the gateway), and
//! the operators' `user_buckets` and `explain_row`. The plain-SQL read functions are in
//! `sql/api.sql`.
//!
//! Everything here reads the active version at the latest checkpoint its snapshot sees: the applier
//! commits ops, parameter index, bucket checksums and the checkpoint in one transaction, so one
//! statement's snapshot is always consistent.

use std::collections::HashMap;

use ferry_rules::{ParameterRow, RequestParameters, Row, TableRef, Value};
use pgrx::prelude::*;
use pgrx::{JsonB, Spi};
use serde_json::json;

use crate::applier::version;
use crate::errors::{select_opt, FerryError, OrRaise};
use crate::gucs;

/// The active version and its latest checkpoint.
struct Active {
    id: i64,
    op_id: i64,
    lsn: String,
}

fn active() -> Result<Active, FerryError> {
    let row: Option<Vec<String>> = select_opt(
        "SELECT ARRAY[id::text, COALESCE(last_checkpoint, 0)::text, last_checkpoint_lsn::text] \
         FROM ferry.sync_rules WHERE state = 'active'",
        &[],
    )?;
    match row.as_deref() {
        Some([id, op_id, lsn]) => Ok(Active {
            id: id.parse().unwrap_or_default(),
            op_id: op_id.parse().unwrap_or_default(),
            lsn: lsn.clone(),
        }),
        _ => Err(FerryError::NoActiveVersion),
    }
}

/// A resolved bucket.
struct UserBucket {
    bucket: String,
    definition: String,
    priority: u8,
}

/// The buckets of a user (static and dynamic, looked up in the parameter index).
fn resolve_buckets(
    version: i64,
    claims: &serde_json::Value,
    parameters: &serde_json::Value,
) -> Result<Vec<UserBucket>, FerryError> {
    if !claims.is_object() {
        return Err(FerryError::InvalidArgument(
            "claims must be a JSON object (the verified JWT payload)".into(),
        ));
    }
    if claims.get("sub").is_none_or(serde_json::Value::is_null) {
        return Err(FerryError::InvalidArgument(
            "claims have no 'sub': the user id is required".into(),
        ));
    }
    let plan = version::plan(version)?;
    let request = RequestParameters::new(claims, parameters);
    let v = u64::try_from(version).ok();
    let resolution = plan.resolve_request(&request, v);
    let keys: Vec<String> = resolution.lookups.iter().map(|l| l.key()).collect();
    let mut looked_up: HashMap<String, Vec<ParameterRow>> = HashMap::new();
    let limit = gucs::max_parameter_results();
    if !keys.is_empty() {
        let mut total = 0usize;
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT lookup::text, bucket_parameters FROM ferry.parameter_index \
                 WHERE version = $1 AND lookup = ANY($2)",
                None,
                &[version.into(), keys.clone().into()],
            )?;
            for row in rows {
                let key: String = row.get(1)?.unwrap_or_default();
                let json: String = row.get(2)?.unwrap_or_default();
                let parsed = ParameterRow::rows_from_json(&json).map_err(|e| {
                    FerryError::Internal(format!("stored parameter rows of {key}: {e}"))
                })?;
                total += parsed.len();
                if total > limit {
                    return Err(FerryError::TooManyParameterResults {
                        count: total,
                        limit,
                    });
                }
                looked_up.entry(key).or_default().extend(parsed);
            }
            Ok::<_, FerryError>(())
        })?;
    }
    let dynamic = plan.dynamic_buckets(&request, &resolution, &looked_up, v);
    let mut out: Vec<UserBucket> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for b in resolution.static_buckets.into_iter().chain(dynamic.buckets) {
        match index.get(&b.bucket) {
            Some(&i) => out[i].priority = out[i].priority.min(b.priority),
            None => {
                index.insert(b.bucket.clone(), out.len());
                out.push(UserBucket {
                    bucket: b.bucket,
                    definition: b.definition,
                    priority: b.priority,
                });
            }
        }
    }
    Ok(out)
}

/// The user id as the write-checkpoint key uses it: `sub` as text.
fn user_id_text(claims: &serde_json::Value) -> String {
    match claims.get("sub") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Everything the first `checkpoint` line of a stream needs (see `sql/API.md`).
#[pg_extern(stable)]
fn checkpoint_for(
    claims: JsonB,
    parameters: default!(Option<JsonB>, "NULL"),
    client_id: default!(Option<&str>, "NULL"),
) -> JsonB {
    checkpoint_json(
        &claims.0,
        parameters.map(|p| p.0).unwrap_or(serde_json::Value::Null),
        client_id,
    )
    .map(JsonB)
    .or_raise()
}

fn checkpoint_json(
    claims: &serde_json::Value,
    parameters: serde_json::Value,
    client_id: Option<&str>,
) -> Result<serde_json::Value, FerryError> {
    let active = active()?;
    let definitions: Vec<serde_json::Value> = version::plan(active.id)?
        .definitions()
        .map(|(name, priority)| json!({"name": name, "priority": priority}))
        .collect();
    let buckets = resolve_buckets(active.id, claims, &parameters)?;
    let names: Vec<String> = buckets.iter().map(|b| b.bucket.clone()).collect();
    let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
    let mut write_checkpoint: Option<i64> = None;
    let key = match client_id {
        Some(c) => format!("{}/{c}", user_id_text(claims)),
        None => user_id_text(claims),
    };
    Spi::connect(|client| {
        if !names.is_empty() {
            let rows = client.select(
                "SELECT bucket::text, checksum, count FROM ferry.bucket_state \
                 WHERE version = $1 AND bucket = ANY($2)",
                None,
                &[active.id.into(), names.into()],
            )?;
            for row in rows {
                sums.insert(
                    row.get::<String>(1)?.unwrap_or_default(),
                    (
                        row.get::<i64>(2)?.unwrap_or_default(),
                        row.get::<i64>(3)?.unwrap_or_default(),
                    ),
                );
            }
        }
        let rows = client.select(
            "SELECT checkpoint FROM ferry.write_checkpoints WHERE key = $1 AND lsn <= $2::pg_lsn",
            None,
            &[key.as_str().into(), active.lsn.as_str().into()],
        )?;
        for row in rows {
            write_checkpoint = row.get::<i64>(1)?;
        }
        Ok::<_, FerryError>(())
    })?;
    let buckets: Vec<serde_json::Value> = buckets
        .into_iter()
        .map(|b| {
            let (checksum, count) = sums.get(&b.bucket).copied().unwrap_or((0, 0));
            json!({
                "bucket": b.bucket,
                "definition": b.definition,
                "priority": b.priority,
                "checksum": checksum,
                "count": count,
            })
        })
        .collect();
    Ok(json!({
        "version": active.id,
        "op_id": active.op_id,
        "lsn": active.lsn,
        "write_checkpoint": write_checkpoint,
        "definitions": definitions,
        "buckets": buckets,
    }))
}

/// The buckets a user with these claims and client parameters syncs now.
#[pg_extern(stable)]
fn user_buckets(
    claims: JsonB,
    parameters: default!(Option<JsonB>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(bucket, String),
        name!(definition, String),
        name!(priority, i32),
    ),
> {
    let active = active().or_raise();
    let buckets = resolve_buckets(
        active.id,
        &claims.0,
        &parameters.map(|p| p.0).unwrap_or(serde_json::Value::Null),
    )
    .or_raise();
    TableIterator::new(
        buckets
            .into_iter()
            .map(|b| (b.bucket, b.definition, i32::from(b.priority))),
    )
}

/// Converts a JSON value of `explain_row`'s argument to a SQLite value.
fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// What the active version's rules make of a row of `source` (a JSON object of column values).
/// Called through `ferry.explain_row(regclass, jsonb)` (sql/api.sql).
#[pg_extern(stable, name = "_explain_row")]
fn explain_row(source: pg_sys::Oid, row: JsonB) -> JsonB {
    explain(source, &row.0).map(JsonB).or_raise()
}

fn explain(source: pg_sys::Oid, row: &serde_json::Value) -> Result<serde_json::Value, FerryError> {
    let active = active()?;
    let plan = version::plan(active.id)?;
    let qualified: Option<Vec<String>> = select_opt(
        "SELECT ARRAY[n.nspname::text, c.relname::text] FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
        &[source.into()],
    )?;
    let Some([schema, name]) = qualified.and_then(|q| <[String; 2]>::try_from(q).ok()) else {
        return Err(FerryError::UndefinedTable(format!("with OID {source:?}")));
    };
    let table = TableRef::new(schema, name);
    let serde_json::Value::Object(object) = row else {
        return Err(FerryError::InvalidArgument(
            "row must be a JSON object of column values".into(),
        ));
    };
    let row = Row::new(
        object
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    );
    let v = u64::try_from(active.id).ok();
    let rows = plan.evaluate_row(&table, &row, v);
    let params = plan.evaluate_parameter_row(&table, &row);
    Ok(json!({
        "table": format!("{}.{}", table.schema, table.name),
        "synced": plan.reads_table(&table),
        "buckets": rows.outputs.iter().map(|o| json!({
            "bucket": o.bucket,
            "object_type": o.object_type,
            "object_id": o.object_id,
            "data": o.data,
            "checksum": o.checksum,
        })).collect::<Vec<_>>(),
        "lookups": params.lookups.iter().map(|l| json!({
            "lookup": l.lookup.key(),
            "rows": serde_json::from_str::<serde_json::Value>(&l.rows_json()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "errors": rows.errors.iter().map(|e| e.to_string())
            .chain(params.errors.iter().map(|e| e.to_string())).collect::<Vec<_>>(),
    }))
}

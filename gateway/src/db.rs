//! Postgres access: the connection pool and one typed wrapper per function of the extension's
//! SQL API (`sql/API.md`). The only module with SQL text; the gateway reads no table directly.
//!
//! Every call takes a pooled connection for the one statement (or one transaction, for the write
//! endpoint) and gives it back at once, so a stream never holds a connection between batches.
//! Errors are sorted by the SQLSTATEs sql/API.md documents into [`DbError`]: the read
//! functions' standard codes (`55000`, `54000`, `22023`, `42704`), the write endpoint's
//! refusals ([`DbError::from_upload`]), and "unavailable" for anything that is not an answer
//! from the database. The `LISTEN`
//! connection is not pooled: [`Db::connect_listener`] opens it for [`crate::checkpoint_watch`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ferry_protocol::{BucketPriority, Checksum};
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, PgLsn};
use tokio_postgres::NoTls;

use crate::config::Config;

/// A WAL position, comparable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;

    /// Parses Postgres' `XXXXXXXX/XXXXXXXX` form.
    fn from_str(s: &str) -> Result<Lsn, String> {
        let (hi, lo) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid LSN {s:?}"))?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| format!("invalid LSN {s:?}"))?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| format!("invalid LSN {s:?}"))?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<PgLsn> for Lsn {
    fn from(value: PgLsn) -> Lsn {
        Lsn(u64::from(value))
    }
}

/// A database call that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection, a broken connection, a timeout: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// `55000`: no sync rules version is active.
    #[error("no active sync rules version")]
    NoActiveVersion,
    /// `54000`: parameter queries returned too many rows.
    #[error("{0}")]
    TooManyParameterResults(String),
    /// `22023` from a read function, `FY005` from the write endpoint: an argument the extension
    /// refused.
    #[error("{0}")]
    InvalidArgument(String),
    /// `42704`: the version does not exist (any more).
    #[error("sync rules version not found")]
    VersionNotFound,
    /// A write refused for good: constraint, type, unknown table or column (classes 22, 23, 42).
    #[error("{0}")]
    WriteRejected(String),
    /// A write refused by row-level security or privileges (`42501`).
    #[error("{0}")]
    WriteForbidden(String),
    /// Any other error, or a result of an unexpected shape.
    #[error("{0}")]
    Other(String),
}

/// Errors every call shares: the extension missing, the connection lost, the server going away
/// or overloaded, a transaction to retry. `None` for an answer about the call itself.
fn common_error(db: &tokio_postgres::error::DbError) -> Option<DbError> {
    let code = db.code();
    let message = db.message();
    if *code == SqlState::UNDEFINED_FUNCTION || *code == SqlState::INVALID_SCHEMA_NAME {
        return Some(DbError::Unavailable(format!(
            "the ferry extension is not installed or too old: {message}"
        )));
    }
    let class = &code.code()[..2];
    // 08 connection, 57 operator intervention (shutdown, cancel), 53 insufficient resources,
    // 40 transaction rollback (serialization failure, deadlock): all worth a retry.
    if matches!(class, "08" | "57" | "53" | "40") {
        return Some(DbError::Unavailable(message.to_owned()));
    }
    None
}

impl From<tokio_postgres::Error> for DbError {
    /// Sorts an error of a read function or a write checkpoint by the SQLSTATEs of
    /// sql/API.md. The write endpoint's errors are sorted by [`DbError::from_upload`].
    fn from(e: tokio_postgres::Error) -> DbError {
        let Some(db) = e.as_db_error() else {
            return DbError::Unavailable(e.to_string());
        };
        if let Some(common) = common_error(db) {
            return common;
        }
        let message = db.message().to_owned();
        match *db.code() {
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE => DbError::NoActiveVersion,
            SqlState::PROGRAM_LIMIT_EXCEEDED => DbError::TooManyParameterResults(message),
            SqlState::INVALID_PARAMETER_VALUE => DbError::InvalidArgument(message),
            SqlState::UNDEFINED_OBJECT => DbError::VersionNotFound,
            _ => DbError::Other(format!("{}: {message}", db.code().code())),
        }
    }
}

impl DbError {
    /// Sorts an error of the write endpoint's transaction by the SQLSTATEs of sql/API.md
    /// ("Write endpoint"): `FY005` malformed upload, `42501` refused by RLS or privileges,
    /// other `22xxx`/`23xxx`/`42xxx` refused for good (value, constraint, unknown table or
    /// column).
    pub fn from_upload(e: tokio_postgres::Error) -> DbError {
        let Some(db) = e.as_db_error() else {
            return DbError::Unavailable(e.to_string());
        };
        if let Some(common) = common_error(db) {
            return common;
        }
        let message = db.message().to_owned();
        let code = db.code().code();
        match code {
            "FY005" => DbError::InvalidArgument(message),
            "42501" => DbError::WriteForbidden(message),
            // `SET LOCAL ROLE` of a role that does not exist: the server's setup, not the upload.
            "42704" => DbError::Other(format!("{code}: {message}")),
            _ if code.starts_with("22") || code.starts_with("23") || code.starts_with("42") => {
                let detail = db
                    .detail()
                    .filter(|d| !d.trim().is_empty())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                DbError::WriteRejected(format!("{message}{detail}"))
            }
            _ => DbError::Other(format!("{code}: {message}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> DbError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => DbError::from(e),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

fn decode_error(what: &str, e: impl fmt::Display) -> DbError {
    DbError::Other(format!("unexpected result of {what}: {e}"))
}

/// The newest checkpoint of the active version (`ferry.latest_checkpoint()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestCheckpoint {
    /// The active version.
    pub version: i64,
    /// The checkpoint's op id.
    pub op_id: i64,
    /// Its source position.
    pub lsn: Lsn,
    /// When it was committed.
    pub created_at: SystemTime,
}

/// One bucket of [`ResolvedCheckpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResolvedBucket {
    /// The bucket id.
    pub bucket: String,
    /// Its bucket definition (or stream) name.
    pub definition: String,
    /// Its priority.
    pub priority: BucketPriority,
    /// Its checksum at the checkpoint.
    #[serde(deserialize_with = "checksum_from_bigint")]
    pub checksum: Checksum,
    /// Its op count at the checkpoint.
    pub count: u64,
}

fn checksum_from_bigint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Checksum, D::Error> {
    let value = i64::deserialize(d)?;
    Checksum::from_wire(value).map_err(serde::de::Error::custom)
}

/// What `ferry.checkpoint_for(claims, parameters, client_id)` answers: a user's buckets at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResolvedCheckpoint {
    /// The active version.
    pub version: i64,
    /// The checkpoint's op id.
    pub op_id: i64,
    /// Its source position.
    pub lsn: Lsn,
    /// The user's visible write checkpoint.
    #[serde(default)]
    pub write_checkpoint: Option<i64>,
    /// The user's buckets.
    pub buckets: Vec<ResolvedBucket>,
    /// The write-checkpoint key of this user and client (`ferry.write_checkpoint_key`).
    #[serde(skip)]
    pub write_checkpoint_key: String,
}

/// A bucket's state in a change record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BucketState {
    /// The bucket id.
    pub bucket: String,
    /// Its checksum at the record's checkpoint.
    #[serde(deserialize_with = "checksum_from_bigint")]
    pub checksum: Checksum,
    /// Its op count at the record's checkpoint.
    pub count: u64,
}

/// One row of `ferry.checkpoint_changes(version, after_lsn)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    /// The checkpoint's op id.
    pub op_id: i64,
    /// Its source position.
    pub lsn: Lsn,
    /// When it was committed.
    pub created_at: SystemTime,
    /// Buckets that received ops, with their state at the checkpoint.
    pub buckets: Vec<BucketState>,
    /// Whether dynamic buckets must be re-resolved.
    pub lookups_changed: bool,
    /// Write checkpoints that became visible: key → value.
    pub write_checkpoints: HashMap<String, i64>,
}

/// One row of `ferry.bucket_data(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRow {
    /// The bucket id.
    pub bucket: String,
    /// The op id.
    pub op_id: i64,
    /// `PUT`, `REMOVE`, `MOVE` or `CLEAR`.
    pub op: String,
    /// Output table (PUT/REMOVE).
    pub object_type: Option<String>,
    /// Row id (PUT/REMOVE).
    pub object_id: Option<String>,
    /// Source-row discriminator (PUT/REMOVE).
    pub subkey: Option<String>,
    /// Row JSON (PUT).
    pub data: Option<String>,
    /// The op's checksum.
    pub checksum: i64,
    /// Set on compacted ops: the op id it was moved to.
    pub target_op: Option<i64>,
}

impl OpRow {
    /// Approximate size in memory and on the wire.
    pub fn approx_bytes(&self) -> usize {
        64 + self.bucket.len()
            + self.object_type.as_ref().map_or(0, String::len)
            + self.object_id.as_ref().map_or(0, String::len)
            + self.subkey.as_ref().map_or(0, String::len)
            + self.data.as_ref().map_or(0, String::len)
    }
}

/// The pool and the connection settings.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    pg_config: tokio_postgres::Config,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// A pool for `config.postgres` (connections are opened lazily).
    pub fn new(config: &Config) -> Result<Db, DbError> {
        let pg_config: tokio_postgres::Config =
            config
                .postgres
                .url
                .expose()
                .parse()
                .map_err(|e: tokio_postgres::Error| {
                    DbError::Other(format!(
                        "postgres.url is not a valid connection string: {e}"
                    ))
                })?;
        let mut pg_config_with_name = pg_config.clone();
        pg_config_with_name.application_name("ferry-gateway");
        let manager = Manager::from_config(
            pg_config_with_name.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = config.connect_timeout();
        let pool = Pool::builder(manager)
            .max_size(config.postgres.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| DbError::Other(format!("cannot build the connection pool: {e}")))?;
        Ok(Db {
            pool,
            pg_config: pg_config_with_name,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        Ok(self.pool.get().await?)
    }

    /// Opens the dedicated `LISTEN` connection. The caller must drive the returned connection.
    pub async fn connect_listener(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        DbError,
    > {
        let mut config = self.pg_config.clone();
        config.application_name("ferry-gateway-listener");
        config.connect_timeout(Duration::from_secs(10));
        Ok(config.connect(NoTls).await?)
    }

    /// The SQL that subscribes to checkpoint notifications (run on the listener connection).
    pub const LISTEN_SQL: &'static str = "LISTEN ferry_checkpoint";
    /// The notification channel.
    pub const CHANNEL: &'static str = "ferry_checkpoint";

    /// `ferry.latest_checkpoint()`, on the given client (the listener's) or a pooled one.
    pub async fn latest_checkpoint_on(
        client: &tokio_postgres::Client,
    ) -> Result<Option<LatestCheckpoint>, DbError> {
        let row = client
            .query_opt(
                "SELECT version, op_id, lsn, created_at FROM ferry.latest_checkpoint()",
                &[],
            )
            .await?;
        row.map(|row| {
            Ok(LatestCheckpoint {
                version: row.try_get(0)?,
                op_id: row.try_get(1)?,
                lsn: Lsn::from(row.try_get::<_, PgLsn>(2)?),
                created_at: row.try_get(3)?,
            })
        })
        .transpose()
        .map_err(|e: tokio_postgres::Error| decode_error("ferry.latest_checkpoint()", e))
    }

    /// `ferry.checkpoint_changes(version, after_lsn)`, on the given client.
    pub async fn checkpoint_changes_on(
        client: &tokio_postgres::Client,
        version: i64,
        after: Lsn,
    ) -> Result<Vec<ChangeRow>, DbError> {
        let rows = client
            .query(
                "SELECT op_id, lsn, created_at, buckets, lookups_changed, write_checkpoints \
                 FROM ferry.checkpoint_changes($1, $2)",
                &[&version, &PgLsn::from(after.0)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let what = "ferry.checkpoint_changes()";
                let buckets: Json<Vec<BucketState>> =
                    row.try_get(3).map_err(|e| decode_error(what, e))?;
                let write_checkpoints: Option<Json<HashMap<String, i64>>> =
                    row.try_get(5).map_err(|e| decode_error(what, e))?;
                Ok(ChangeRow {
                    op_id: row.try_get(0).map_err(|e| decode_error(what, e))?,
                    lsn: Lsn::from(
                        row.try_get::<_, PgLsn>(1)
                            .map_err(|e| decode_error(what, e))?,
                    ),
                    created_at: row.try_get(2).map_err(|e| decode_error(what, e))?,
                    buckets: buckets.0,
                    lookups_changed: row.try_get(4).map_err(|e| decode_error(what, e))?,
                    write_checkpoints: write_checkpoints.map(|j| j.0).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// `ferry.checkpoint_for(claims, parameters, client_id)` and
    /// `ferry.write_checkpoint_key(sub, client_id)`, in one statement. `claims` is the token's
    /// payload as it is (the sync rules read it as `request.jwt()`); the client id goes in its
    /// own argument.
    pub async fn checkpoint_for(
        &self,
        claims: &Value,
        parameters: &Value,
        user_id: &str,
        client_id: Option<&str>,
    ) -> Result<ResolvedCheckpoint, DbError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT ferry.checkpoint_for($1::jsonb, $2::jsonb, $3::text), \
                        ferry.write_checkpoint_key($4::text, $3::text)",
                &[&Json(claims), &Json(parameters), &client_id, &user_id],
            )
            .await?;
        drop(client);
        let what = "ferry.checkpoint_for()";
        let value: Json<Value> = row.try_get(0).map_err(|e| decode_error(what, e))?;
        let key: String = row.try_get(1).map_err(|e| decode_error(what, e))?;
        let mut resolved: ResolvedCheckpoint =
            serde_json::from_value(value.0).map_err(|e| decode_error(what, e))?;
        resolved.write_checkpoint_key = key;
        Ok(resolved)
    }

    /// `ferry.bucket_data(buckets, afters, upto, max_ops)`: ops with `afters[i] < op_id <= upto`,
    /// by bucket in the given order, then op id; at most `max_ops` rows.
    pub async fn bucket_data(
        &self,
        buckets: &[String],
        afters: &[i64],
        upto: i64,
        max_ops: i32,
    ) -> Result<Vec<OpRow>, DbError> {
        let client = self.client().await?;
        Db::bucket_data_on(&client, buckets, afters, upto, max_ops).await
    }

    /// [`Db::bucket_data`] on a given connection (the listener's).
    pub async fn bucket_data_on(
        client: &tokio_postgres::Client,
        buckets: &[String],
        afters: &[i64],
        upto: i64,
        max_ops: i32,
    ) -> Result<Vec<OpRow>, DbError> {
        let rows = client
            .query(
                "SELECT bucket, op_id, op, object_type, object_id, subkey, data, checksum, target_op \
                 FROM ferry.bucket_data($1::text[], $2::bigint[], $3, $4)",
                &[&buckets, &afters, &upto, &max_ops],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OpRow {
                    bucket: row.try_get(0)?,
                    op_id: row.try_get(1)?,
                    op: row.try_get(2)?,
                    object_type: row.try_get(3)?,
                    object_id: row.try_get(4)?,
                    subkey: row.try_get(5)?,
                    data: row.try_get(6)?,
                    checksum: row.try_get(7)?,
                    target_op: row.try_get(8)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| decode_error("ferry.bucket_data()", e))
    }

    /// `ferry.create_write_checkpoint(user_id, client_id)`.
    pub async fn create_write_checkpoint(
        &self,
        user_id: &str,
        client_id: Option<&str>,
    ) -> Result<i64, DbError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT ferry.create_write_checkpoint($1, $2)",
                &[&user_id, &client_id],
            )
            .await?;
        row.try_get(0)
            .map_err(|e| decode_error("ferry.create_write_checkpoint()", e))
    }

    /// `ferry.request_checkpoint(user_id, client_id, request_id)`.
    pub async fn request_checkpoint(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        request_id: i64,
    ) -> Result<i64, DbError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT ferry.request_checkpoint($1, $2, $3)",
                &[&user_id, &client_id, &request_id],
            )
            .await?;
        row.try_get(0)
            .map_err(|e| decode_error("ferry.request_checkpoint()", e))
    }

    /// Whether Postgres answers and the extension is installed (readiness).
    pub async fn check_ready(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        client
            .query_one("SELECT count(*) FROM ferry.latest_checkpoint()", &[])
            .await?;
        Ok(())
    }

    /// The write endpoint: in one transaction, as `role` with the claims set for RLS policies
    /// (`request.jwt.claims`, `request.jwt.claim.sub`, `ferry.claims`), calls
    /// `ferry.apply_upload(user_id, client_id, transaction_id, entries, tables)`. Returns
    /// whether the upload was applied now (`false`: it had been applied before).
    pub async fn apply_upload(&self, upload: &UploadCall<'_>) -> Result<bool, DbError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(DbError::from_upload)?;
        // The role name is validated by the config ([a-z_][a-z0-9_]*) and quoted here.
        tx.batch_execute(&format!("SET LOCAL ROLE \"{}\"", upload.role))
            .await
            .map_err(DbError::from_upload)?;
        let claims = serde_json::to_string(upload.claims)
            .map_err(|e| DbError::Other(format!("claims are not serializable: {e}")))?;
        tx.execute(
            "SELECT set_config('request.jwt.claims', $1, true), \
                    set_config('ferry.claims', $1, true), \
                    set_config('request.jwt.claim.sub', $2, true)",
            &[&claims, &upload.user_id],
        )
        .await
        .map_err(DbError::from_upload)?;
        let row = tx
            .query_one(
                "SELECT ferry.apply_upload($1, $2, $3, $4::jsonb, $5::jsonb)",
                &[
                    &upload.user_id,
                    &upload.client_id,
                    &upload.transaction_id,
                    &Json(upload.entries),
                    &Json(upload.tables),
                ],
            )
            .await
            .map_err(DbError::from_upload)?;
        let applied: bool = row
            .try_get(0)
            .map_err(|e| decode_error("ferry.apply_upload()", e))?;
        tx.commit().await.map_err(DbError::from_upload)?;
        Ok(applied)
    }
}

/// The arguments of [`Db::apply_upload`].
#[derive(Debug)]
pub struct UploadCall<'a> {
    /// The role to write as (validated identifier).
    pub role: &'a str,
    /// The verified JWT payload.
    pub claims: &'a Value,
    /// The user (`sub`).
    pub user_id: &'a str,
    /// The client instance.
    pub client_id: &'a str,
    /// The client's transaction id.
    pub transaction_id: i64,
    /// The CRUD entries as JSON (an array of `CrudEntry`).
    pub entries: &'a Value,
    /// Synced table name → source table.
    pub tables: &'a Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_parses_and_orders_like_postgres() {
        let a: Lsn = "0/16B3748".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "0/16B3748");
        assert_eq!(b.0, 1 << 32);
        assert!("16B3748".parse::<Lsn>().is_err());
    }

    #[test]
    fn checkpoint_for_answer_deserializes() {
        let json = serde_json::json!({"version": 3, "op_id": 1240, "lsn": "0/16B3748",
            "write_checkpoint": 7,
            "buckets": [{"bucket": "3#user_lists[\"u1\"]", "definition": "user_lists", "priority": 1,
                         "checksum": 2914882035u32, "count": 12}]});
        let resolved: ResolvedCheckpoint = serde_json::from_value(json).unwrap();
        assert_eq!(resolved.version, 3);
        assert_eq!(resolved.write_checkpoint, Some(7));
        assert_eq!(resolved.buckets[0].checksum, Checksum(2_914_882_035));
        assert_eq!(resolved.buckets[0].priority.get(), 1);
        let none: ResolvedCheckpoint = serde_json::from_value(serde_json::json!(
            {"version": 1, "op_id": 0, "lsn": "0/0", "write_checkpoint": null, "buckets": []}))
        .unwrap();
        assert_eq!(none.write_checkpoint, None);
    }
}

//! ferry's errors and their SQLSTATEs (documented in `sql/API.md`).
//!
//! A bare `Result::Err` from a `#[pg_extern]` raises the generic 22000; ferry maps each error to a
//! deliberate SQLSTATE instead, with a message that says what and where.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

/// An error a ferry SQL function reports to its caller.
#[derive(Debug, thiserror::Error)]
pub enum FerryError {
    /// The sync rules do not validate.
    #[error("invalid sync rules:\n{0}")]
    InvalidRules(String),
    /// No version is active yet.
    #[error("no sync rules version is active yet: deploy rules with ferry.deploy_rules() and let the applier activate them (see ferry.status())")]
    NoActiveVersion,
    /// Too many parameter query results for one request.
    #[error("too many parameter query results: {count} (the limit, ferry.max_parameter_results, is {limit})")]
    TooManyParameterResults {
        /// How many were found (at least).
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A table the rules read does not exist.
    #[error("table {0} does not exist")]
    UndefinedTable(String),
    /// A table cannot be replicated.
    #[error("table {table} cannot be synced: {reason}")]
    TableNotReplicable {
        /// The table.
        table: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A malformed argument.
    #[error("{0}")]
    InvalidArgument(String),
    /// An unknown version.
    #[error("sync rules version {0} does not exist")]
    UnknownVersion(i64),
    /// Anything else that went wrong in ferry itself.
    #[error("{0}")]
    Internal(String),
}

impl FerryError {
    /// The SQLSTATE reported for this error.
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            FerryError::InvalidRules(_) => ERRCODE_INVALID_OBJECT_DEFINITION,
            FerryError::NoActiveVersion => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            FerryError::TooManyParameterResults { .. } => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            FerryError::UndefinedTable(_) => ERRCODE_UNDEFINED_TABLE,
            FerryError::TableNotReplicable { .. } => ERRCODE_INVALID_TABLE_DEFINITION,
            FerryError::InvalidArgument(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            FerryError::UnknownVersion(_) => ERRCODE_UNDEFINED_OBJECT,
            FerryError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    /// Raises this error as a Postgres ERROR with its SQLSTATE. Never returns.
    pub fn raise(self) -> ! {
        ErrorReport::new(self.sqlstate(), self.to_string(), "ferry")
            .report(pgrx::PgLogLevel::ERROR);
        unreachable!("an ERROR does not return")
    }
}

impl From<pgrx::spi::SpiError> for FerryError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        FerryError::Internal(format!("SPI: {e}"))
    }
}

/// Unwraps a result or raises its error.
pub trait OrRaise<T> {
    /// The value, or the error raised as a Postgres ERROR.
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, FerryError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.raise(),
        }
    }
}

/// Runs a query expected to return at most one row of one column: `None` for no row or NULL.
pub fn select_opt<T: pgrx::FromDatum + pgrx::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> Result<Option<T>, FerryError> {
    pgrx::Spi::connect(|client| {
        let table = client.select(query, Some(1), args)?;
        if table.is_empty() {
            return Ok(None);
        }
        Ok(table.first().get_one::<T>()?)
    })
}

/// Runs a `SELECT` for its side effects (slot, origin and settings functions) without marking the
/// transaction as writing: pgrx's `Spi::run` assigns a transaction id first, which would forbid
/// creating a slot in the same step and make every idle step write a commit record.
pub fn select_void(query: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> Result<(), FerryError> {
    pgrx::Spi::connect(|client| {
        client.select(query, None, args)?;
        Ok(())
    })
}

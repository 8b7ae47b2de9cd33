//! ferry-rules: the sync rules language (PROTOCOL.md §1), compiled and evaluated.
//!
//! - Deploy: [`compile`](fn@compile) a YAML document into a [`Plan`] — or get [`RulesErrors`],
//!   every problem with its line, column, definition, query and a hint — then store it with
//!   [`Plan::to_json`] and load it with [`Plan::from_json`]. [`Plan::source_tables`] lists what
//!   to replicate.
//! - Replicate: [`Plan::evaluate_row`] gives a source row's bucket memberships (row JSON and
//!   checksum included); [`Plan::evaluate_parameter_row`] its parameter lookups
//!   ([`ParameterLookup::key`] → [`ParameterRow`]s).
//! - Serve: [`RequestParameters`] from the JWT claims and client parameters;
//!   [`Plan::resolve_request`] gives the static buckets and the lookups to read;
//!   [`Plan::dynamic_buckets`] the buckets behind the rows found. [`Plan::definitions`] names and
//!   prioritises the checkpoint line's streams.
//! - Values: [`Value`] with SQLite semantics, and the modules below for operators, casts,
//!   functions, row JSON, bucket ids, checksums and Postgres conversions.
//!
//! Nothing here panics on bad input; sizes and nesting are capped ([`limits`]).
#![forbid(unsafe_code)]

pub mod value;

// The value layer: SQLite semantics over `Value`, conversions, JSON, ids and checksums.
pub mod bucket_id;
pub mod cast;
pub mod checksum;
pub mod datetime;
pub mod eval_error;
pub mod functions;
pub mod json_path;
pub mod operators;
pub mod pg_convert;
pub mod row_json;

// The language half: YAML + SQL → validated plan.
mod compile;
mod compile_data;
mod compile_expr;
mod compile_parameter;
mod dialect;
mod document;
pub mod error;
mod expr;
mod filter;
pub mod limits;
mod plan;
mod source_map;
mod sql_parse;
mod sql_shape;
mod table_ref;
mod yaml;

// Evaluation: rows → buckets and lookups, requests → buckets.
mod eval_parameters;
mod eval_row;
mod lookup;
mod request;
mod resolve;
mod row;

pub use value::Value;

pub use bucket_id::{bucket_id, parse_bucket_id};
pub use cast::CastType;
pub use eval_error::EvalError;
pub use functions::{Function, FunctionOptions};
pub use operators::{BinaryOp, UnaryOp};
pub use pg_convert::{PgType, Precision, ValueOptions};
pub use row_json::{bucket_parameters_json, row_json};

pub use compile::{compile, Compiled};
pub use error::{
    Diagnostic, PlanLoadError, Position, QueryKind, QueryRef, RuleError, RuleWarning, RulesErrors,
};
pub use eval_parameters::{EvaluatedLookup, ParameterEvaluation};
pub use eval_row::{BucketOutput, EvaluationError, RowError, RowEvaluation};
pub use lookup::{ParameterLookup, ParameterRow, ParameterRowError};
pub use plan::{Plan, RulesConfig, DEFAULT_PRIORITY, PLAN_FORMAT};
pub use request::RequestParameters;
pub use resolve::{BucketDescription, DynamicBuckets, RequestResolution};
pub use row::Row;
pub use table_ref::{TableRef, DEFAULT_SCHEMA};

//! The gateway's configuration: one YAML file plus `FERRY_*` environment overrides, read into
//! [`Config`] and checked before anything starts.
//!
//! Every setting has a default except the Postgres URL and the JWT keys and audiences. An
//! environment variable overrides the setting at the same path: `FERRY_POSTGRES_URL` is
//! `postgres.url`, `FERRY_AUTH_AUDIENCES` (comma-separated) is `auth.audiences`; the full list is
//! [`ENV_OVERRIDES`]. Errors say which setting is wrong and, for the file, where (line:column).
//! Secrets (the Postgres URL, inline keys) never appear in `Debug` output or logs.
//!
//! What the settings do is implemented elsewhere: keys in [`crate::auth`], limits in
//! [`crate::stream`] and [`crate::app`], the write endpoint in [`crate::routes::write_endpoint`].

mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (default `0.0.0.0:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The Postgres database with the ferry extension.
    pub postgres: PostgresConfig,
    /// Client authentication (JWT).
    pub auth: AuthConfig,
    /// Limits per process and per connection.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The built-in write endpoint (off by default).
    #[serde(default)]
    pub write: WriteConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// How to reach Postgres.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq-style URL or key=value string, e.g.
    /// `postgres://ferry_gateway:secret@db:5432/app`. Log in as a role allowed to execute
    /// ferry's functions (`ferry_gateway`); plain TCP (put TLS in front or use a private network).
    pub url: Secret,
    /// Pooled connections for the streams' reads and the write checkpoints (default 16). One
    /// more connection per process is used for `LISTEN`.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long to wait for a connection (default 10 s).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

/// JWT settings (PROTOCOL.md §3.6). At least one key source and one audience are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted `aud` values: a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// Maximum `exp - iat` in seconds (default 86400, one day).
    #[serde(default = "default_max_lifetime_secs")]
    pub max_lifetime_secs: u64,
    /// Clock tolerance for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// An inline JWKS: `{"keys": [...]}` (HMAC secrets as `kty: oct` keys).
    #[serde(default)]
    pub jwks: Option<SecretJson>,
    /// A file holding a JWKS, read at start.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A URL serving a JWKS (`http://` or `https://`), fetched at start, cached, refreshed every
    /// `jwks_refresh_secs` and when a token names an unknown `kid` (at most once per
    /// `jwks_min_refresh_secs`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Cache lifetime of the JWKS URL's keys (default 300 s).
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// Minimum time between two fetches of the JWKS URL (default 30 s).
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
}

/// Limits (PROTOCOL.md §3.10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open sync streams per process; more are refused with 429 `PSYNC_S2304` (default 1000).
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// Buckets per connection; more end the request with `PSYNC_S2305` (default 1000). The
    /// extension limits parameter query results itself (`ferry.max_parameter_results`).
    #[serde(default = "default_max_buckets")]
    pub max_buckets_per_connection: usize,
    /// Ops read per query while streaming data (default 1000).
    #[serde(default = "default_batch_ops")]
    pub batch_ops: u32,
    /// Approximate maximum size of one `data` line in bytes (default 1 MiB).
    #[serde(default = "default_chunk_bytes")]
    pub chunk_bytes: usize,
    /// Seconds between `token_expires_in` keepalives (default 20; randomized ±10%).
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// The ops of a new checkpoint are read once per process and shared by all streams when the
    /// checkpoint has at most this many (default 2000); bigger checkpoints are read per stream.
    #[serde(default = "default_shared_ops")]
    pub shared_ops_per_checkpoint: u32,
}

/// The built-in write endpoint, `POST /api/crud`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConfig {
    /// Serve the endpoint (default false). Meant for apps without their own backend, demos and
    /// tests: authorization is whatever the tables' row-level security policies allow.
    #[serde(default)]
    pub enabled: bool,
    /// The Postgres role the writes run as; it must not bypass RLS (default `ferry_writer`).
    #[serde(default = "default_write_role")]
    pub role: String,
    /// Synced table name (the CRUD entry's `type`) → source table (`schema.table`). Tables not
    /// listed are not writable.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tables: BTreeMap<String, String>,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `ferry_gateway=debug,info` (default `info`; the
    /// `RUST_LOG` variable wins when set).
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A string that is never printed: `Debug` shows `"<redacted>"`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// A JSON value holding secrets (an inline JWKS with HMAC keys): `Debug` shows `<redacted>`.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretJson(pub Value);

impl fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted JSON>")
    }
}

/// A mapping written with only comments under its key is YAML `null`: read it as empty.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_pool_size() -> usize {
    16
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_max_lifetime_secs() -> u64 {
    86_400
}
fn default_leeway_secs() -> u64 {
    60
}
fn default_jwks_refresh_secs() -> u64 {
    300
}
fn default_jwks_min_refresh_secs() -> u64 {
    30
}
fn default_max_streams() -> usize {
    1000
}
fn default_max_buckets() -> usize {
    1000
}
fn default_batch_ops() -> u32 {
    1000
}
fn default_chunk_bytes() -> usize {
    1024 * 1024
}
fn default_keepalive_secs() -> u64 {
    20
}
fn default_shared_ops() -> u32 {
    2000
}
fn default_write_role() -> String {
    "ferry_writer".into()
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_streams: default_max_streams(),
            max_buckets_per_connection: default_max_buckets(),
            batch_ops: default_batch_ops(),
            chunk_bytes: default_chunk_bytes(),
            keepalive_secs: default_keepalive_secs(),
            shared_ops_per_checkpoint: default_shared_ops(),
        }
    }
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            enabled: false,
            role: default_write_role(),
            tables: BTreeMap::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_log_level(),
        }
    }
}

impl AuthConfig {
    /// Settings with the given audiences and inline JWKS, everything else default.
    pub fn with_inline_jwks(audiences: Vec<String>, jwks: Value) -> AuthConfig {
        AuthConfig {
            audiences,
            max_lifetime_secs: default_max_lifetime_secs(),
            leeway_secs: default_leeway_secs(),
            jwks: Some(SecretJson(jwks)),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_secs: default_jwks_refresh_secs(),
            jwks_min_refresh_secs: default_jwks_min_refresh_secs(),
        }
    }
}

impl Config {
    /// A configuration with defaults for everything but the database and the keys: what a test
    /// starting a gateway needs. `listen` is `127.0.0.1:0`.
    pub fn new(postgres_url: impl Into<String>, auth: AuthConfig) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            postgres: PostgresConfig {
                url: Secret::new(postgres_url),
                pool_size: default_pool_size(),
                connect_timeout_secs: default_connect_timeout_secs(),
            },
            auth,
            limits: LimitsConfig::default(),
            write: WriteConfig::default(),
            log: LogConfig::default(),
        }
    }

    /// Reads `path` (if given) and applies the `FERRY_*` variables of `env`, then validates.
    ///
    /// Pass `std::env::vars()` as `env` in production; tests pass their own pairs.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, source) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "<no config file>".to_owned()),
        };
        Config::from_yaml_with_env(&text, &source, env)
    }

    /// Parses YAML text (no environment overrides) and validates.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_with_env(text, "<config>", std::iter::empty())
    }

    /// Parses YAML text, applies the `FERRY_*` variables of `env`, and validates. `source` names
    /// the file in error messages.
    pub fn from_yaml_with_env(
        text: &str,
        source: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut doc = yaml::parse(text).map_err(|e| ConfigError::Syntax {
            source_name: source.to_owned(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        if !doc.value.is_object() {
            return Err(ConfigError::Invalid {
                setting: ".".into(),
                location: location(source, &doc.positions, "."),
                message: "the config file must be a mapping of settings".into(),
            });
        }
        let mut overridden = Vec::new();
        for (name, value) in env {
            if let Some(spec) = ENV_OVERRIDES.iter().find(|spec| spec.env == name) {
                apply_override(&mut doc.value, spec, &value)?;
                overridden.push(spec.path.join("."));
            }
        }
        let config: Config = serde_path_to_error::deserialize(&doc.value).map_err(|e| {
            let setting = e.path().to_string();
            let location = if overridden.iter().any(|p| setting.starts_with(p.as_str())) {
                Some("environment".to_owned())
            } else {
                location(source, &doc.positions, &setting)
                    .or_else(|| location(source, &doc.positions, parent(&setting)))
            };
            ConfigError::Invalid {
                setting,
                location,
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid {
            setting: setting.to_owned(),
            location: None,
            message,
        };
        if self.postgres.url.expose().trim().is_empty() {
            return Err(invalid("postgres.url", "must not be empty".into()));
        }
        if self.postgres.pool_size == 0 {
            return Err(invalid("postgres.pool_size", "must be at least 1".into()));
        }
        if self.auth.audiences.is_empty() || self.auth.audiences.iter().any(|a| a.is_empty()) {
            return Err(invalid(
                "auth.audiences",
                "list at least one audience; tokens must carry one of them in `aud`".into(),
            ));
        }
        if self.auth.jwks.is_none() && self.auth.jwks_file.is_none() && self.auth.jwks_url.is_none()
        {
            return Err(invalid(
                "auth",
                "no JWT keys: set `auth.jwks` (inline JWKS), `auth.jwks_file` or `auth.jwks_url`"
                    .into(),
            ));
        }
        if let Some(url) = &self.auth.jwks_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "auth.jwks_url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if self.auth.max_lifetime_secs == 0 {
            return Err(invalid("auth.max_lifetime_secs", "must be positive".into()));
        }
        let limits = &self.limits;
        for (name, value) in [
            ("limits.max_streams", limits.max_streams),
            (
                "limits.max_buckets_per_connection",
                limits.max_buckets_per_connection,
            ),
            ("limits.batch_ops", limits.batch_ops as usize),
            ("limits.chunk_bytes", limits.chunk_bytes),
            ("limits.keepalive_secs", limits.keepalive_secs as usize),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1".into()));
            }
        }
        if !is_identifier(&self.write.role) {
            return Err(invalid(
                "write.role",
                format!(
                    "{:?} is not a plain lower-case Postgres role name ([a-z_][a-z0-9_]*)",
                    self.write.role
                ),
            ));
        }
        for (synced, source) in &self.write.tables {
            if synced.is_empty() || !is_qualified_name(source) {
                return Err(invalid(
                    &format!("write.tables.{synced}"),
                    format!(
                        "{source:?} is not a table name: write `schema.table` or `table` with \
                         lower-case letters, digits and underscores"
                    ),
                ));
            }
        }
        if self.write.enabled && self.write.tables.is_empty() {
            return Err(invalid(
                "write.tables",
                "the write endpoint is enabled but no table is writable: map synced table names \
                 to source tables"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The pool's connection timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.postgres.connect_timeout_secs)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_qualified_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| is_identifier(p))
}

fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => ".",
    }
}

fn location(
    source: &str,
    positions: &std::collections::HashMap<String, (usize, usize)>,
    path: &str,
) -> Option<String> {
    positions
        .get(path)
        .map(|(line, column)| format!("{source}:{line}:{column}"))
}

/// What an environment variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as is.
    String,
    /// A decimal integer.
    Integer,
    /// `true`/`false`/`1`/`0`.
    Bool,
    /// Comma-separated strings.
    List,
    /// A JSON document.
    Json,
}

/// One supported environment override.
#[derive(Debug, Clone, Copy)]
pub struct EnvOverride {
    /// The variable's name.
    pub env: &'static str,
    /// The setting it replaces.
    pub path: &'static [&'static str],
    /// How its value is read.
    pub kind: EnvKind,
}

/// Every `FERRY_*` variable the gateway reads, and the setting each one overrides.
pub const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride {
        env: "FERRY_LISTEN",
        path: &["listen"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_POSTGRES_URL",
        path: &["postgres", "url"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_POSTGRES_POOL_SIZE",
        path: &["postgres", "pool_size"],
        kind: EnvKind::Integer,
    },
    EnvOverride {
        env: "FERRY_AUTH_AUDIENCES",
        path: &["auth", "audiences"],
        kind: EnvKind::List,
    },
    EnvOverride {
        env: "FERRY_AUTH_MAX_LIFETIME_SECS",
        path: &["auth", "max_lifetime_secs"],
        kind: EnvKind::Integer,
    },
    EnvOverride {
        env: "FERRY_AUTH_LEEWAY_SECS",
        path: &["auth", "leeway_secs"],
        kind: EnvKind::Integer,
    },
    EnvOverride {
        env: "FERRY_AUTH_JWKS",
        path: &["auth", "jwks"],
        kind: EnvKind::Json,
    },
    EnvOverride {
        env: "FERRY_AUTH_JWKS_FILE",
        path: &["auth", "jwks_file"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_AUTH_JWKS_URL",
        path: &["auth", "jwks_url"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_LIMITS_MAX_STREAMS",
        path: &["limits", "max_streams"],
        kind: EnvKind::Integer,
    },
    EnvOverride {
        env: "FERRY_LIMITS_MAX_BUCKETS_PER_CONNECTION",
        path: &["limits", "max_buckets_per_connection"],
        kind: EnvKind::Integer,
    },
    EnvOverride {
        env: "FERRY_WRITE_ENABLED",
        path: &["write", "enabled"],
        kind: EnvKind::Bool,
    },
    EnvOverride {
        env: "FERRY_WRITE_ROLE",
        path: &["write", "role"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_WRITE_TABLES",
        path: &["write", "tables"],
        kind: EnvKind::Json,
    },
    EnvOverride {
        env: "FERRY_LOG_FORMAT",
        path: &["log", "format"],
        kind: EnvKind::String,
    },
    EnvOverride {
        env: "FERRY_LOG_LEVEL",
        path: &["log", "level"],
        kind: EnvKind::String,
    },
];

fn apply_override(doc: &mut Value, spec: &EnvOverride, raw: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Env {
        variable: spec.env.to_owned(),
        message,
    };
    let value = match spec.kind {
        EnvKind::String => Value::String(raw.to_owned()),
        EnvKind::Integer => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| bad(format!("{raw:?} is not a non-negative integer")))?,
        EnvKind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad(format!("{raw:?} is not true or false"))),
        },
        EnvKind::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        // Never echo the value: it may hold keys.
        EnvKind::Json => serde_json::from_str(raw).map_err(|e| {
            bad(format!(
                "not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?,
    };
    let mut node = doc;
    for (i, key) in spec.path.iter().enumerate() {
        let object = match node {
            Value::Object(map) => map,
            _ => {
                return Err(bad(format!(
                    "cannot set it: `{}` in the config file is not a mapping",
                    spec.path[..i].join(".")
                )))
            }
        };
        if i + 1 == spec.path.len() {
            object.insert((*key).to_owned(), value);
            return Ok(());
        }
        node = object
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not valid YAML (or uses aliases/tags).
    #[error("{source_name}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A setting has a wrong value or is missing.
    #[error("{}setting `{setting}`: {message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Invalid {
        /// The setting's path, e.g. `auth.audiences`.
        setting: String,
        /// `file:line:column` or `environment`, when known.
        location: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An environment override could not be read.
    #[error("environment variable {variable}: {message}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
postgres:
  url: postgres://ferry_gateway:pw@db/app
auth:
  audiences: [ferry]
  jwks: {"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let config = Config::from_yaml_str(MINIMAL).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.postgres.pool_size, 16);
        assert_eq!(config.auth.max_lifetime_secs, 86_400);
        assert_eq!(config.auth.leeway_secs, 60);
        assert_eq!(config.limits.max_buckets_per_connection, 1000);
        assert!(!config.write.enabled);
        assert_eq!(config.write.role, "ferry_writer");
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_yaml_str(MINIMAL).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("pw@db"), "{debug}");
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
    }

    #[test]
    fn env_overrides_replace_file_settings() {
        let config = Config::from_yaml_with_env(
            MINIMAL,
            "gateway.yaml",
            env(&[
                ("FERRY_POSTGRES_URL", "postgres://other/db"),
                ("FERRY_AUTH_AUDIENCES", "a, b"),
                ("FERRY_LIMITS_MAX_STREAMS", "7"),
                ("FERRY_WRITE_ENABLED", "true"),
                ("FERRY_WRITE_TABLES", r#"{"todos": "public.todos"}"#),
                ("FERRY_LISTEN", "127.0.0.1:9999"),
                ("FERRY_LOG_FORMAT", "json"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.postgres.url.expose(), "postgres://other/db");
        assert_eq!(config.auth.audiences, ["a", "b"]);
        assert_eq!(config.limits.max_streams, 7);
        assert!(config.write.enabled);
        assert_eq!(config.write.tables["todos"], "public.todos");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn env_alone_is_a_complete_config() {
        let config = Config::load(
            None,
            env(&[
                ("FERRY_POSTGRES_URL", "postgres://db/app"),
                ("FERRY_AUTH_AUDIENCES", "ferry"),
                ("FERRY_AUTH_JWKS_URL", "https://example.invalid/jwks.json"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.auth.jwks_url.as_deref(),
            Some("https://example.invalid/jwks.json")
        );
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err =
            Config::from_yaml_with_env(MINIMAL, "f", env(&[("FERRY_LIMITS_MAX_STREAMS", "many")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("FERRY_LIMITS_MAX_STREAMS"), "{err}");
        let err = Config::from_yaml_with_env(MINIMAL, "f", env(&[("FERRY_AUTH_JWKS", "{oops")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FERRY_AUTH_JWKS: not valid JSON"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_setting_and_position() {
        let text = "postgres:\n  url: x\n  pool_size: lots\nauth:\n  audiences: [a]\n  jwks_url: http://k\n";
        let err = Config::from_yaml_with_env(text, "gateway.yaml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("gateway.yaml:3:14: setting `postgres.pool_size`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_setting_is_refused() {
        let text = format!("{MINIMAL}limits:\n  max_stream: 3\n");
        let err = Config::from_yaml_str(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `max_stream`"), "{err}");
        assert!(
            err.contains("max_streams"),
            "suggests the known names: {err}"
        );
    }

    #[test]
    fn missing_keys_and_audiences_are_explained() {
        let err = Config::from_yaml_str("postgres: {url: x}\nauth: {audiences: [a]}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no JWT keys"), "{err}");
        let err = Config::from_yaml_str(
            "postgres: {url: x}\nauth: {audiences: [], jwks_url: http://x}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("auth.audiences"), "{err}");
        let err = Config::from_yaml_str("auth: {audiences: [a], jwks_url: http://x}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `postgres`"), "{err}");
    }

    #[test]
    fn write_endpoint_settings_are_checked() {
        let text = format!("{MINIMAL}write:\n  enabled: true\n");
        let err = Config::from_yaml_str(&text).unwrap_err().to_string();
        assert!(err.contains("no table is writable"), "{err}");
        let text = format!("{MINIMAL}write:\n  tables:\n    todos: \"public.todos; drop\"\n");
        let err = Config::from_yaml_str(&text).unwrap_err().to_string();
        assert!(err.contains("write.tables.todos"), "{err}");
        let text = format!("{MINIMAL}write:\n  role: \"Robert'); --\"\n");
        assert!(Config::from_yaml_str(&text).is_err());
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::from_yaml_with_env(
            include_str!("../gateway.example.yaml"),
            "gateway.example.yaml",
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(config.auth.audiences, ["my-app"]);
        assert!(config.write.tables.is_empty());
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let err = Config::from_yaml_with_env("postgres: [", "g.yaml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g.yaml:"), "{err}");
    }
}

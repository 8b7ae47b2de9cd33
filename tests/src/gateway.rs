//! A real gateway for a test database: [`TestGateway`] starts `ferry-gateway` in-process on
//! `127.0.0.1:0`, connected to a [`TestDb`] as a member of the extension's `ferry_gateway` role
//! (as in production), with one test HS256 key and the write endpoint on, and waits until it is
//! ready; [`token`] and friends mint tokens it accepts. [`config_for`] is that configuration for
//! any connection string (the benchmark runs it in a process of its own).
//!
//! What the tests then send (raw HTTP, a ferry client) is up to them; this module holds no
//! protocol logic.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferry_gateway::config::AuthConfig;
use ferry_gateway::{Config, RunningGateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::database::TestDb;
use crate::wait::wait_until;

/// The audience the test gateway accepts (tokens carry it in `aud`).
pub const AUDIENCE: &str = "ferry-tests";
/// The `kid` of the test key.
pub const KID: &str = "ferry-tests-hs256";
/// The test HS256 secret. Test-only: never use a fixed secret anywhere else.
pub const SECRET: &[u8] = b"ferry-tests-only-hs256-secret-32b!";

/// The role the test gateway logs in as: a member of the extension's `ferry_gateway` role, which
/// may only call ferry's gateway functions (and switch to `ferry_writer` for uploads).
pub const LOGIN_ROLE: &str = "ferry_tests_gateway";

/// How long [`TestGateway::start`] waits for the gateway to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The JWKS of the test key: one `oct` key for HS256 with kid [`KID`].
pub fn jwks() -> Value {
    json!({"keys": [{
        "kty": "oct",
        "kid": KID,
        "alg": "HS256",
        "k": URL_SAFE_NO_PAD.encode(SECRET),
    }]})
}

/// Seconds since 1970.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Valid claims for user `sub`: issued now, expiring in `lifetime_secs`, with the test audience.
pub fn claims(sub: &str, lifetime_secs: i64) -> Value {
    let now = unix_now();
    json!({"sub": sub, "iat": now, "exp": now + lifetime_secs, "aud": AUDIENCE})
}

/// Signs any claims with the test key (HS256, kid [`KID`]).
pub fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(SECRET))
        .expect("HS256 signing of a JSON object cannot fail")
}

/// A token for user `sub`, valid for an hour.
pub fn token(sub: &str) -> String {
    sign(&claims(sub, 3600))
}

/// A token for user `sub` that expires in `secs` seconds.
pub fn token_expiring_in(sub: &str, secs: i64) -> String {
    sign(&claims(sub, secs))
}

/// A gateway running in this process against one test database. Dropping it shuts it down too
/// (its streams end); [`TestGateway::shutdown`] also waits for that.
pub struct TestGateway {
    running: RunningGateway,
}

impl std::fmt::Debug for TestGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestGateway")
            .field("addr", &self.addr())
            .finish()
    }
}

impl TestGateway {
    /// The gateway's configuration for `db`: [`config_for`] of [`conn_string`]`(db)`.
    pub fn config(db: &TestDb) -> Config {
        config_for(&conn_string(db))
    }

    /// Starts a gateway for `db` with [`TestGateway::config`] and waits until it is ready.
    pub async fn start(db: &TestDb) -> anyhow::Result<TestGateway> {
        TestGateway::start_with(db, |_| {}).await
    }

    /// Like [`TestGateway::start`], with `adjust` changing the configuration first.
    pub async fn start_with(
        db: &TestDb,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestGateway> {
        create_login_role(db).await?;
        let mut config = TestGateway::config(db);
        adjust(&mut config);
        let running = ferry_gateway::start(config)
            .await
            .context("starting the gateway")?;
        let gateway = TestGateway { running };
        wait_ready(gateway.addr()).await?;
        Ok(gateway)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.running.local_addr()
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Ends every stream and stops the server (bounded wait).
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// The libpq key=value connection string the test gateway uses for `db`: [`LOGIN_ROLE`] over
/// TCP (tokio-postgres reads this form as well as URLs).
pub fn conn_string(db: &TestDb) -> String {
    format!(
        "host=127.0.0.1 port={} user={LOGIN_ROLE} dbname={} application_name=ferry-tests-gateway",
        db.cluster().port(),
        db.name()
    )
}

/// The test gateway's configuration for the database at `conn_string` (see [`conn_string`]):
/// the test key and audience, the write endpoint on (no writable tables yet: set
/// `write.tables`), listening on `127.0.0.1:0`, everything else default. The one definition used
/// by [`TestGateway`] and by the benchmark's gateway process.
pub fn config_for(conn_string: &str) -> Config {
    let auth = AuthConfig::with_inline_jwks(vec![AUDIENCE.to_owned()], jwks());
    let mut config = Config::new(conn_string, auth);
    config.write.enabled = true;
    config
}

/// Creates [`LOGIN_ROLE`] unless it exists. Roles are cluster-wide and tests create them in
/// parallel: the loser of a race takes the winner's role.
pub async fn create_login_role(db: &TestDb) -> anyhow::Result<()> {
    db.exec(&format!(
        "DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{LOGIN_ROLE}') THEN
                BEGIN
                    CREATE ROLE {LOGIN_ROLE} LOGIN IN ROLE ferry_gateway;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
        END $$"
    ))
    .await
    .context("creating the gateway's login role")
}

/// Waits (up to 20 s) until the gateway at `addr` answers `GET /probes/readiness` with 200.
pub async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    wait_until("the gateway to be ready", READY_TIMEOUT, || async move {
        Ok((readiness_status(addr).await? == 200).then_some(()))
    })
    .await
}

/// The status code of `GET /probes/readiness`.
pub async fn readiness_status(addr: SocketAddr) -> anyhow::Result<u16> {
    Ok(get(addr, "/probes/readiness").await?.0)
}

/// `GET <path>` as a bare HTTP/1.0 request (no client needed): the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    Ok((status, body))
}

//! JWKS sources: a file, and a URL served by a tiny local HTTP server on 127.0.0.1 — fetched at
//! start, cached, re-fetched on an unknown `kid`, never more often than the minimum interval.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use ferry_gateway::auth::Authenticator;
use ferry_gateway::config::AuthConfig;
use ferry_protocol::ErrorCode;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

#[derive(Clone)]
struct JwksServer {
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_jwks(State(server): State<JwksServer>) -> Json<Value> {
    server.hits.fetch_add(1, Ordering::SeqCst);
    Json(server.keys.lock().unwrap().clone())
}

/// Starts a JWKS server on 127.0.0.1:0; returns it and its URL.
async fn jwks_server(keys: Value) -> (JwksServer, String) {
    let server = JwksServer {
        keys: Arc::new(Mutex::new(keys)),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new()
        .route("/jwks.json", get(serve_jwks))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (server, format!("http://{addr}/jwks.json"))
}

fn url_config(url: &str, min_refresh_secs: u64) -> AuthConfig {
    AuthConfig {
        audiences: vec![AUDIENCE.into()],
        max_lifetime_secs: 86_400,
        leeway_secs: 60,
        jwks: None,
        jwks_file: None,
        jwks_url: Some(url.to_owned()),
        jwks_refresh_secs: 3600,
        jwks_min_refresh_secs: min_refresh_secs,
    }
}

#[tokio::test]
async fn jwks_url_keys_are_fetched_once_and_cached() {
    let (server, url) = jwks_server(json!({"keys": [public_jwk("rsa", "r1")]})).await;
    let auth = Authenticator::from_config(&url_config(&url, 0)).unwrap();
    auth.prefetch().await;
    let key = encoding_key(Algorithm::RS256);
    for _ in 0..3 {
        let token = sign_with(Algorithm::RS256, Some("r1"), &claims(), &key);
        assert_eq!(auth.verify(&token).await.unwrap().sub, "u1");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "keys are cached");
}

#[tokio::test]
async fn unknown_kid_refreshes_the_jwks_url() {
    let (server, url) = jwks_server(json!({"keys": [public_jwk("rsa", "r1")]})).await;
    let auth = Authenticator::from_config(&url_config(&url, 0)).unwrap();
    auth.prefetch().await;
    // The issuer rotates: a new key r2 appears.
    *server.keys.lock().unwrap() =
        json!({"keys": [public_jwk("rsa", "r1"), public_jwk("ec256", "r2")]});
    let token = sign_with(
        Algorithm::ES256,
        Some("r2"),
        &claims(),
        &encoding_key(Algorithm::ES256),
    );
    assert_eq!(auth.verify(&token).await.unwrap().sub, "u1");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn refreshes_on_unknown_kid_are_rate_limited() {
    let (server, url) = jwks_server(json!({"keys": [public_jwk("rsa", "r1")]})).await;
    let auth = Authenticator::from_config(&url_config(&url, 3600)).unwrap();
    auth.prefetch().await;
    let key = encoding_key(Algorithm::RS256);
    for i in 0..5 {
        let token = sign_with(
            Algorithm::RS256,
            Some(&format!("unknown-{i}")),
            &claims(),
            &key,
        );
        let e = auth.verify(&token).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthError);
        assert!(e.unknown_kid);
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "no fetch within the minimum interval"
    );
    assert_eq!(auth.remote().unwrap().fetch_count(), 1);
}

#[tokio::test]
async fn unusable_remote_keys_are_skipped_not_fatal() {
    let (_server, url) = jwks_server(json!({"keys": [
        public_jwk("ec521", "p521"), {"kty": "weird"}, public_jwk("ed25519", "ed")]}))
    .await;
    let auth = Authenticator::from_config(&url_config(&url, 0)).unwrap();
    let token = sign_with(
        Algorithm::EdDSA,
        Some("ed"),
        &claims(),
        &encoding_key(Algorithm::EdDSA),
    );
    assert_eq!(auth.verify(&token).await.unwrap().sub, "u1");
}

#[tokio::test]
async fn unreachable_jwks_url_refuses_tokens_without_crashing() {
    // Port 1 on loopback: connection refused at once.
    let auth = Authenticator::from_config(&url_config("http://127.0.0.1:1/jwks.json", 0)).unwrap();
    auth.prefetch().await;
    let token = sign(Algorithm::RS256, &claims());
    let e = auth.verify(&token).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthError);
}

#[tokio::test]
async fn jwks_file_keys_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks().to_string()).unwrap();
    let config = AuthConfig {
        jwks: None,
        jwks_file: Some(path),
        ..AuthConfig::with_inline_jwks(vec![AUDIENCE.into()], json!({"keys": []}))
    };
    let auth = Authenticator::from_config(&config).unwrap();
    auth.verify(&sign(Algorithm::EdDSA, &claims()))
        .await
        .unwrap();
    auth.verify(&sign(Algorithm::HS384, &claims()))
        .await
        .unwrap();
}

#[tokio::test]
async fn broken_jwks_file_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, "{not json").unwrap();
    let config = AuthConfig {
        jwks: None,
        jwks_file: Some(path.clone()),
        ..AuthConfig::with_inline_jwks(vec![AUDIENCE.into()], json!({"keys": []}))
    };
    let err = Authenticator::from_config(&config).unwrap_err().to_string();
    assert!(
        err.contains("jwks.json") && err.contains("not valid JSON"),
        "{err}"
    );
    let missing = AuthConfig {
        jwks_file: Some(dir.path().join("missing.json")),
        ..config
    };
    assert!(Authenticator::from_config(&missing).is_err());
}

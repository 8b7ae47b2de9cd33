//! `GET /metrics`: the Prometheus text exposition of [`crate::metrics`].

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// Renders the process's metrics.
pub async fn metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::global().render(),
    )
}
